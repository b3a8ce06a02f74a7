"""Canceling a performance: one staff action takes it off sale, refunds every buyer, frees the
seats and tells each buyer (one email each, with their refund).

1. `catalog.staff.cancel_performance` — one short transaction under the performance's row
   lock: status canceled, so nothing more is sold online or at the window.
2. Each buyer's order is refunded on its own through the one refund path
   (`refunds.refund_order`: pending under the order lock, the provider called outside every
   lock, then finished; the seats go back when the money is back). Each refund carries a key
   made from the performance, the order and its tickets, and `canceled_performance`, so its
   completion queues the cancellation email (ops.outbox) instead of a plain refund email.
   Before that, exchanges into the performance still waiting for their payment are settled:
   one whose difference is a charge is undone (the patron keeps the tickets they had; a
   payment that arrives anyway is refunded to the card, as for any undone exchange), one whose
   difference is a refund is sent on, so its new tickets are valid and refunded with the rest.
3. Running the action again (after an error, an interrupted request or a double click) first
   finishes refunds this cancellation left pending, then refunds only what is still valid:
   nothing is refunded or emailed twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.catalog import staff as catalog_staff
from wondertix.catalog.models import Performance
from wondertix.ops import audit
from wondertix.sales import errors
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange, Refund
from wondertix.sales.refund_settlement import settle
from wondertix.sales.refunds import (
    REFUNDABLE_STATUSES,
    RefundRequest,
    TicketRefund,
    refund_order,
    ticket_refundable,
)


@dataclass
class CancelPlan:
    """What canceling will do, for the confirmation page (read only)."""

    orders: int
    tickets: int
    refund_cents: int
    without_email: int
    pending_refunds: int
    pending_exchanges: int = 0


@dataclass
class RefundAllResult:
    refunded_orders: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    amount_cents: int = 0
    tickets: int = 0


def _valid_by_order(perf: Performance) -> dict[int, list[Ticket]]:
    by_order: dict[int, list[Ticket]] = defaultdict(list)
    for ticket in Ticket.objects.filter(performance=perf, status=Ticket.VALID, order__status__in=REFUNDABLE_STATUSES).order_by("pk"):
        by_order[ticket.order_id].append(ticket)
    return by_order


def plan(performance_id: int) -> CancelPlan:
    perf = Performance.objects.get(pk=performance_id)
    by_order = _valid_by_order(perf)
    tickets = [t for ts in by_order.values() for t in ts]
    left = ticket_refundable(tickets)
    no_email = Order.objects.filter(pk__in=list(by_order), buyer_email="").count()
    return CancelPlan(
        orders=len(by_order), tickets=len(tickets),
        refund_cents=sum(left[t.pk].face_cents + left[t.pk].fee_cents for t in tickets),
        without_email=no_email,
        pending_refunds=Refund.objects.filter(canceled_performance=perf, status=Refund.PENDING).count(),
        pending_exchanges=Exchange.objects.filter(to_performance=perf, status=Exchange.PENDING).count(),
    )


def cancel_and_refund(performance_id: int, reason: str, *, method: str = Refund.ORIGINAL, actor: User | None = None) -> RefundAllResult:
    """The staff action: cancel (unless already canceled), then refund every buyer."""
    perf = Performance.objects.filter(pk=performance_id).first()
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    if method not in (Refund.ORIGINAL, Refund.CASH):
        raise errors.invalid("invalid_method", "Choose how to refund: original payment or cash.", field="method")
    if perf.status != Performance.CANCELED:
        catalog_staff.cancel_performance(performance_id, reason, actor=actor)
    return refund_performance_buyers(performance_id, method=method, actor=actor, reason=reason)


def _settle_exchanges_into(perf: Performance, result: RefundAllResult) -> None:
    """Exchanges into the canceled performance still waiting for their payment (step 2)."""
    from wondertix.sales import exchanges

    for exchange in Exchange.objects.filter(to_performance=perf, status=Exchange.PENDING).order_by("pk"):
        try:
            if exchange.charge_id is not None:
                exchanges.finish_card_payment(exchange.pk, ok=False, message="The performance was canceled before the price difference was paid.")
            else:
                exchanges.settle_exchange(exchange)
        except errors.SaleError as exc:
            # Refused by the provider: undone, nothing of it is on this performance any more.
            if Exchange.objects.filter(pk=exchange.pk, status=Exchange.PENDING).exists():
                result.failed[exchange.order_id] = exc.message


def refund_performance_buyers(performance_id: int, *, method: str = Refund.ORIGINAL, actor: User | None = None, reason: str = "") -> RefundAllResult:
    """Refund every buyer of a canceled performance in full (tickets and their fees).

    Each order is its own refund with a key derived from the performance, the order and its
    tickets, so running this again only picks up what is still unrefunded, and a failure on
    one order (a provider outage) leaves the others refunded.
    """
    perf = Performance.objects.filter(pk=performance_id).select_related("event").first()
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    if perf.status != Performance.CANCELED:
        raise errors.invalid("performance_not_canceled", "Cancel the performance first; then its buyers can be refunded.")
    result = RefundAllResult()
    # An earlier run that was interrupted between a refund's pending step and the provider.
    for refund in Refund.objects.filter(canceled_performance=perf, status=Refund.PENDING).order_by("pk"):
        try:
            settle(refund)
        except errors.SaleError as exc:
            result.failed[refund.order_id] = exc.message
            continue
        result.refunded_orders.append(refund.order_id)
        result.amount_cents += refund.amount_cents
        result.tickets += refund.items.filter(ticket__isnull=False).count()
    _settle_exchanges_into(perf, result)
    why = (reason.strip() or f"Performance canceled: {perf}")[:300]
    for order_id, tickets in sorted(_valid_by_order(perf).items()):
        ticket_ids = [t.pk for t in tickets]
        digest = hashlib.sha256(",".join(map(str, ticket_ids)).encode()).hexdigest()[:16]
        key = f"cancel:{perf.pk}:{order_id}:{digest}"
        # A refund the provider refused was undone (the tickets are valid again): the next run
        # is a new try with a new key; the same run twice computes the same key (refunds once).
        refused = Refund.objects.filter(idempotency_key__startswith=key, status=Refund.FAILED).count()
        key = f"{key}:retry{refused}" if refused else key
        request = RefundRequest(tickets=[TicketRefund(t) for t in ticket_ids], include_fees=True, method=method, reason=why)
        try:
            refund = refund_order(order_id, request, idempotency_key=key, actor=actor,
                                  canceled_performance_id=perf.pk)
        except errors.SaleError as exc:
            result.failed[order_id] = exc.message
            continue
        result.refunded_orders.append(order_id)
        result.amount_cents += refund.amount_cents
        result.tickets += len(ticket_ids)
    audit.record(
        "performance.buyers_refunded",
        actor=actor,
        obj=perf,
        after={"orders": result.refunded_orders, "failed": {str(k): v for k, v in result.failed.items()}, "amount_cents": result.amount_cents,
               "tickets": result.tickets, "at": timezone.now().isoformat()},
    )
    return result
