"""A window sale paid with a card on a reader (Stripe Terminal).

The same records as an online Stripe sale (wondertix.sales.pending): the seats are held (a
box-office hold), the order is PENDING with its ticket-by-ticket prices in a CheckoutSession,
and the processor's confirmation completes it exactly once with `pending.complete_payment`
(tickets issued under the performance lock, the Payment with the PaymentIntent id that
refunds use). Until then nothing is sold: a declined card leaves the order pending for
another card, and canceling gives the seats back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.idempotency import find_by_key, run_once
from wondertix.ops import audit
from wondertix.payments import terminal
from wondertix.payments.models import CheckoutSession, TerminalPayment
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, pricing, services
from wondertix.sales.models import HoldLine, Order

if TYPE_CHECKING:
    from wondertix.boxoffice.pos import PosSale


def start_reader_sale(
    sale: PosSale, lines: list[services.LineRequest], overrides: dict[int, int], buyer: services.Buyer, *, reason: str, actor: User
) -> Order:
    """Hold the seats, write the pending order and send its total to the reader. The same
    idempotency key returns the same order (and resends it to the reader if that failed)."""
    if not sale.reader_id:
        raise errors.invalid("reader_required", "Choose the card reader.", field="reader")
    key = sale.idempotency_key or None
    fingerprint = services.request_fingerprint({
        "lines": sorted((line.performance_id, line.price_type_id, line.quantity, line.unit_price_cents) for line in lines),
        "email": buyer.email, "overrides": {str(k): v for k, v in sorted(overrides.items())}, "reader": sale.reader_id,
    })

    def find() -> Order | None:
        return find_by_key(Order.objects, key, fingerprint, message="This sale was already submitted with different details.")

    def create() -> Order:
        now = timezone.now()
        hold = services.create_hold(lines, minutes=terminal.MINUTES + 10, actor=actor, reason="card payment at the window", staff=True)
        totals = pricing.Totals()
        for hl in HoldLine.objects.filter(hold=hold).select_related("price_type").order_by("pk"):
            price = overrides.get(hl.price_type_id, hl.unit_price_cents)
            # The window charges no online booking fee (as services.sell with staff=True).
            totals.tickets.extend(pricing.PricedTicket(hl.performance_id, hl.price_type, price, 0) for _ in range(hl.quantity))
        totals.subtotal_cents = sum(t.price_cents for t in totals.tickets)
        if totals.total_cents <= 0:
            raise errors.invalid("nothing_to_charge", "There is nothing to charge on the card: sell it as a comp or cash.", field="payment_method")
        provider = get_provider()
        order = services.create_order(
            services.CheckoutDetails(buyer=buyer), totals, discount=None, hold=hold, status=Order.PENDING,
            channel=Order.BOX_OFFICE, idempotency_key=key, request_fingerprint=fingerprint, created_by=actor,
        )
        CheckoutSession.objects.create(
            order=order, provider=provider.name, expires_at=now + timedelta(minutes=terminal.MINUTES),
            priced={"tickets": [
                {"performance_id": t.performance_id, "price_type_id": t.price_type.pk, "price_cents": t.price_cents, "fee_cents": 0, "discount_cents": 0}
                for t in totals.tickets
            ], "donation": {}},
        )
        terminal.create(order, sale.reader_id, amount_cents=order.total_cents, actor=actor)
        audit.record("pos.sale", actor=actor, obj=order, after={
            "payment_method": "card", "reader": sale.reader_id, "status": order.status,
            "performance_id": sale.performance_id, "quantities": {str(k): v for k, v in sale.quantities.items() if v},
            "price_overrides": {str(k): v for k, v in overrides.items()}, "reason": reason[:200], "total_cents": order.total_cents,
        })
        return order

    order, created = run_once(find, create)
    tp = order.terminal_payments.first()
    if order.status == Order.PENDING and tp is not None and tp.status == TerminalPayment.WAITING and (created or not tp.payment_intent):
        terminal.send(tp)
    return order
