"""Orders paid on a hosted payment page (Stripe Checkout): pending until the provider confirms.

The patron's hold keeps the seats while they pay: `start_payment` stretches it past the
payment page's own expiry, so a patron paying at the last second still has their seats.
When the provider's signed webhook confirms the payment, `complete_payment` issues the
tickets under the same lock / re-check / write rules as the sale path
(wondertix.sales.services); if the seats are gone by then (the hold expired and they were
sold), the payment is refunded instead (`NeedsRefund`). An expired or failed payment
cancels the order and gives the seats back (`cancel_payment`).

Discount codes with a usage limit are reserved when the payment starts (so the amount the
patron is charged cannot be invalidated by someone else using the last redemption) and
released again if the payment does not happen.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PriceType, Seat, SeatCategory
from wondertix.ops import audit, metrics
from wondertix.patrons.models import Donation
from wondertix.payments.models import CheckoutSession, Payment
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, inventory, pricing, seats, services
from wondertix.sales.models import DiscountCode, Hold, HoldLine, Order, SeatClaim, Ticket
from wondertix.sales.services import CheckoutDetails, LineRequest

log = logging.getLogger(__name__)

# Stripe accepts a Checkout Session lifetime of 30 minutes to 24 hours, counted from when it
# receives the request: one minute more leaves room for the trip there and clock skew.
SESSION_MINUTES = 31
STRIPE_MINIMUM_AHEAD = timedelta(minutes=30, seconds=30)
# The hold outlives the payment page by this much: a payment confirmed at the page's last
# second still finds its seats held while the webhook travels.
HOLD_MARGIN = timedelta(minutes=10)


class NeedsRefund(Exception):
    """The money arrived but the order cannot be fulfilled: refund it, then record why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _fingerprint(hold_token: str, details: CheckoutDetails) -> str:
    b = details.buyer
    return services.request_fingerprint(
        {
            "hold": hold_token,
            "name": [b.first_name, b.last_name],
            "email": b.email,
            "phone": b.phone,
            "accommodation": b.accommodation,
            "newsletter": b.newsletter,
            "donation": [details.donation_cents, details.donation_anonymous, details.donation_comment.strip()],
            "discount": details.discount_code.strip().upper(),
        }
    )


def _payment_unavailable(message: str) -> errors.SaleError:
    return errors.SaleError("payment_unavailable", message, status=503)


# ---------------------------------------------------------------------------- starting


def start_payment(
    hold_token: str,
    details: CheckoutDetails,
    *,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> tuple[Order, str]:
    """Create a PENDING order for the hold and a hosted payment page for it.

    Returns the order and the page's URL to send the patron to. Calling it again for the
    same hold with the same details returns the same order and page (a double click, a
    retry after a timeout); with different details the earlier page is ended first.
    Raises SaleError (nothing written) for everything checkout refuses.
    """
    provider = get_provider()
    if provider.synchronous or not hasattr(provider, "create_checkout"):
        raise errors.invalid(
            "payment_method_unsupported",
            f"Payments here are taken at checkout ({provider.name}), not on a hosted payment page.",
        )
    details.buyer.clean()
    pricing.validate_donation(details.donation_cents)
    if details.discount_code.strip():
        pricing.find_discount(details.discount_code)  # a typo must not end a page that works
    hold = services.get_hold(hold_token)
    if hold.consumed_at is not None:
        raise errors.conflict("cart_already_checked_out", "This cart has already been checked out. Check your email for the tickets.")
    fingerprint = _fingerprint(hold_token, details)

    existing = _pending_order_for(hold)
    if existing is not None and existing.request_fingerprint != fingerprint:
        _replace(existing, provider)
        existing = None
    try:
        order = existing or _create_pending(hold, details, fingerprint, provider.name, getattr(provider, "minimum_charge_cents", 1))
    except _NothingToPay:
        # A free order needs no payment page: the sale path issues it at once (it charges
        # nothing when the total is zero). The key makes a resubmit return the same order.
        order = services.checkout(hold_token, details, idempotency_key=f"web-{hold_token}")
        return order, f"{settings.SITE_URL.rstrip('/')}/orders/{order.token}/"
    url = _open_page(order, provider, success_url=success_url, cancel_url=cancel_url)
    return order, url


class _NothingToPay(Exception):
    """The order's total is zero (rolls back the pending order before it is written)."""


def _pending_order_for(hold: Hold) -> Order | None:
    return (
        Order.objects.filter(hold=hold, status=Order.PENDING, checkout_session__isnull=False)
        .select_related("checkout_session")
        .order_by("-pk")
        .first()
    )


def _replace(order: Order, provider: Any) -> None:
    """End the earlier payment page of this cart (the patron changed their details)."""
    session = order.checkout_session
    if session.session_id and session.status == CheckoutSession.OPEN:
        try:
            status = provider.expire_checkout(session.session_id)
        except ProviderUnavailable as exc:
            raise _payment_unavailable(str(exc)) from exc
        if status == "complete":
            raise errors.conflict(
                "cart_already_checked_out",
                "We have received the payment for this cart; your tickets will appear on the order page in a moment.",
            )
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == Order.PENDING:
            _cancel(locked, "replaced by a new checkout of the same cart", release_hold=False)


def _price(lines: list[LineRequest], price_types: dict[int, PriceType], performances: dict[int, Performance]) -> pricing.Totals:
    """The hold's prices (fixed when the seats were held) and today's fees, as the sale path does."""
    totals = pricing.Totals()
    sold_as = performance_prices.effective_types(((line.performance_id, line.price_type_id) for line in lines), price_types, performances)
    for line in lines:
        pt = sold_as[(line.performance_id, line.price_type_id)]
        price = line.unit_price_cents if line.unit_price_cents is not None else pt.price_cents
        for _ in range(line.quantity):
            totals.tickets.append(pricing.PricedTicket(line.performance_id, pt, price, pt.fee_cents))
    totals.subtotal_cents = sum(t.price_cents for t in totals.tickets)
    totals.fees_cents = sum(t.fee_cents for t in totals.tickets)
    return totals


def _create_pending(hold: Hold, details: CheckoutDetails, fingerprint: str, provider_name: str, minimum_cents: int = 1) -> Order:
    now = timezone.now()
    donation = pricing.validate_donation(details.donation_cents)
    discount = pricing.find_discount(details.discount_code) if details.discount_code.strip() else None
    with transaction.atomic():
        # Chosen seats stay claimed by the hold while the patron pays; the order remembers
        # which seat each ticket is for, and the webhook turns the claims into the tickets'.
        held = seats.hold_seat_ids(hold.pk)
        lines = [
            LineRequest(hl.performance_id, hl.price_type_id, hl.quantity, hl.unit_price_cents, held.get(hl.pk, ()))
            for hl in HoldLine.objects.filter(hold=hold).order_by("pk")
        ]
        if not lines:
            raise errors.conflict("hold_expired", "Your seats were held for a limited time and have been released. Please choose them again.")
        performances = inventory.lock_performances(line.performance_id for line in lines)
        hold = Hold.objects.get(pk=hold.pk)
        if hold.consumed_at is not None:
            raise errors.conflict("cart_already_checked_out", "This cart has already been checked out. Check your email for the tickets.")
        if hold.is_expired(now):
            raise errors.conflict("hold_expired", "Your seats were held for a limited time and have been released. Please choose them again.")
        other = _pending_order_for(hold)
        if other is not None:
            if other.request_fingerprint == fingerprint:
                return other  # the same checkout submitted twice at once
            raise errors.conflict("payment_in_progress", "A payment for this cart is already in progress. Please finish it or try again in a minute.")
        for perf in performances.values():
            services._ensure_on_sale(perf, now, staff=False)
        price_types = services._load_price_types(lines, performances, staff=False)
        demand: dict[tuple[int, int], int] = defaultdict(int)
        for line in lines:
            demand[(line.performance_id, line.price_type_id)] += line.quantity
        inventory.ensure_capacity(performances, dict(demand), price_types, now=now, exclude_hold_id=hold.pk)
        seats.ensure_category_limits(dict(demand), price_types, now=now, exclude_hold_id=hold.pk)

        totals = _price(lines, price_types, performances)
        ticket_seats = [seat for line in lines for seat in (line.seat_ids or (None,) * line.quantity)]
        totals.donation_cents = donation
        if discount is not None:
            discount = DiscountCode.objects.select_for_update().get(pk=discount.pk)
            pricing.apply_discount(discount, totals, now)
            # Reserved now, released if the payment does not happen (see _cancel).
            DiscountCode.objects.filter(pk=discount.pk).update(times_used=F("times_used") + 1)

        if totals.total_cents == 0:
            raise _NothingToPay()
        if totals.total_cents < minimum_cents:
            from wondertix.money import format_cents

            raise errors.invalid(
                "amount_below_minimum",
                f"Online payments must be at least {format_cents(minimum_cents)}. Please add a ticket or a donation.",
            )
        order = services.create_order(
            details, totals, discount=discount, hold=hold,
            status=Order.PENDING, channel=Order.ONLINE, request_fingerprint=fingerprint,
        )
        session_expires = now + timedelta(minutes=SESSION_MINUTES)
        _hold_until(hold, session_expires + HOLD_MARGIN)
        CheckoutSession.objects.create(
            order=order,
            provider=provider_name,
            expires_at=session_expires,
            priced={
                "tickets": [
                    {
                        "performance_id": t.performance_id, "price_type_id": t.price_type.pk, "price_cents": t.price_cents,
                        "fee_cents": t.fee_cents, "discount_cents": t.discount_cents, "seat_id": seat_id,
                    }
                    for t, seat_id in zip(totals.tickets, ticket_seats, strict=True)
                ],
                "donation": {"cents": donation, "anonymous": details.donation_anonymous, "comment": details.donation_comment.strip()[:500]},
            },
        )
        audit.record(
            "order.pending",
            obj=order,
            after={"total_cents": order.total_cents, "tickets": len(totals.tickets), "provider": provider_name, "hold_until": hold.expires_at.isoformat()},
        )
    return order


def _hold_until(hold: Hold, until: Any) -> None:
    """Stretch the hold (and its denormalized lines) so it outlives the payment page."""
    if until > hold.expires_at:
        Hold.objects.filter(pk=hold.pk).update(expires_at=until)
        HoldLine.objects.filter(hold=hold).update(expires_at=until)
        SeatClaim.objects.filter(hold_line__hold_id=hold.pk).update(expires_at=until)
        hold.expires_at = until


def _open_page(order: Order, provider: Any, *, success_url: str | None, cancel_url: str | None) -> str:
    """Ask the provider for the order's payment page, or return the one it already has."""
    session = CheckoutSession.objects.get(order=order)
    now = timezone.now()
    if session.url and session.expires_at > now + timedelta(minutes=1):
        return session.url
    if session.session_id:
        # The page expired unpaid (its webhook is on the way): this order cannot be paid.
        raise errors.conflict("hold_expired", "The time to pay for this cart ran out. Please choose your seats again.")
    if session.expires_at < now + STRIPE_MINIMUM_AHEAD:
        # Stripe wants at least 30 minutes ahead: a retry after a failed attempt asks anew.
        with transaction.atomic():
            session.expires_at = now + timedelta(minutes=SESSION_MINUTES)
            session.save(update_fields=["expires_at"])
            if order.hold_id is not None:
                _hold_until(Hold.objects.get(pk=order.hold_id), session.expires_at + HOLD_MARGIN)
    base = settings.SITE_URL.rstrip("/")
    try:
        page = provider.create_checkout(
            order_token=order.token,
            order_reference=order.reference,
            amount_cents=order.total_cents,
            description=_describe(session.priced),
            buyer_email=order.buyer_email,
            success_url=success_url or f"{base}/orders/{order.token}/",
            cancel_url=cancel_url or f"{base}/cart/",
            expires_at=session.expires_at,
            # Derived from the order (and the page's expiry, which a retry may move): a retried
            # request returns the same session instead of opening a second one.
            idempotency_key=f"wondertix-checkout-{order.token}-{int(session.expires_at.timestamp())}",
        )
    except ProviderUnavailable as exc:
        log.warning("payment page not created", extra={"order": order.pk})
        raise _payment_unavailable(str(exc) or "The payment service could not be reached.") from exc
    CheckoutSession.objects.filter(pk=session.pk).update(session_id=page.session_id, url=page.url, expires_at=page.expires_at)
    return page.url


open_page = _open_page


def _describe(priced: dict) -> str:
    counts: dict[int, int] = defaultdict(int)
    for t in priced.get("tickets", []):
        counts[t["price_type_id"]] += 1
    names = dict(PriceType.objects.filter(pk__in=counts).values_list("pk", "name"))
    parts = [f"{n} × {names.get(pk, 'ticket')}" for pk, n in counts.items()]
    if priced.get("donation", {}).get("cents"):
        parts.append("donation")
    if priced.get("subscription"):
        parts.append(str(priced["subscription"].get("name") or "subscription"))
    return ", ".join(parts) or "Order"


# ---------------------------------------------------------------------------- outcomes


def complete_payment(*, order_token: str, session_id: str, payment_reference: str, amount_cents: int, currency: str) -> Order | None:
    """The provider confirmed the payment: issue the tickets. Runs in the caller's transaction
    (the one that records the webhook event). Raises NeedsRefund when the order cannot be
    fulfilled; returns None when the order is not ours (another system on the same account)."""
    order = Order.objects.select_for_update().filter(token=order_token).first()
    if order is None:
        return None
    session = CheckoutSession.objects.filter(order=order).first()
    if session is None:
        return None
    if payment_reference and order.payments.filter(kind=Payment.CHARGE, reference=payment_reference).exists():
        # This payment was accounted for already (it paid the order, or it was received and
        # refunded): another event about it, or the reconciliation got here first.
        return order
    if order.status == Order.PAID:
        raise NeedsRefund("the order was already paid by another payment")
    if order.status != Order.PENDING:
        raise NeedsRefund("the order was canceled before the payment arrived")
    if amount_cents != order.total_cents or currency.lower() != settings.CURRENCY.lower():
        raise NeedsRefund(f"the amount paid ({amount_cents} {currency}) is not the order total ({order.total_cents} {settings.CURRENCY})")

    now = timezone.now()
    tickets = session.priced.get("tickets", [])
    performances = inventory.lock_performances({t["performance_id"] for t in tickets})
    hold = Hold.objects.filter(pk=order.hold_id).first() if order.hold_id else None
    own_hold = hold is not None and hold.consumed_at is None
    for perf in performances.values():
        if perf.status == Performance.CANCELED:
            raise NeedsRefund("the performance was canceled")
    price_types = PriceType.objects.in_bulk({t["price_type_id"] for t in tickets})
    demand: dict[tuple[int, int], int] = defaultdict(int)
    for t in tickets:
        demand[(t["performance_id"], t["price_type_id"])] += 1
    exclude_hold_id = hold.pk if own_hold and hold else None
    try:
        inventory.ensure_capacity(performances, dict(demand), price_types, now=now, exclude_hold_id=exclude_hold_id)
    except errors.SaleError:
        raise NeedsRefund("the seats were released when the hold expired and have been sold since") from None
    try:
        # The sale path's per-category limits (a standing area's size), under the same lock:
        # a hold that expired gave its places back, and others may have filled the area since.
        seats.ensure_category_limits(dict(demand), price_types, now=now, exclude_hold_id=exclude_hold_id, exclude_order_id=order.pk)
    except errors.SaleError as exc:
        category_id: int = exc.details.get("category_id", 0)
        full = SeatCategory.objects.filter(pk=category_id).values_list("name", flat=True).first() or "its category"
        raise NeedsRefund(f"the places were released when the hold expired and “{full}” has sold up to its limit since") from None

    issued = Ticket.objects.bulk_create(
        Ticket(
            order=order,
            performance_id=t["performance_id"],
            price_type_id=t["price_type_id"],
            price_cents=t["price_cents"],
            fee_cents=t["fee_cents"],
            discount_cents=t["discount_cents"],
            seat_id=t.get("seat_id"),
        )
        for t in tickets
    )
    _claim_seats(issued, now=now, hold_id=hold.pk if hold is not None else None)
    sold: dict[int, int] = defaultdict(int)
    for t in tickets:
        sold[t["performance_id"]] += 1
    inventory.add_sold(performances, sold)
    if hold is not None:
        HoldLine.objects.filter(hold=hold).delete()
        Hold.objects.filter(pk=hold.pk).update(consumed_at=now)
    order.status = Order.PAID
    order.paid_at = now
    order.save(update_fields=["status", "paid_at"])
    Payment.objects.create(order=order, provider=session.provider, reference=payment_reference, amount_cents=amount_cents, status=Payment.SUCCEEDED)
    gift = session.priced.get("donation", {})
    if gift.get("cents"):
        Donation.objects.create(patron=order.patron, order=order, amount_cents=gift["cents"], anonymous=gift.get("anonymous", False), comment=gift.get("comment", ""))
    package = session.priced.get("subscription")
    if package:
        from wondertix.patrons.subscriptions import issue_paid_subscription

        try:
            issue_paid_subscription(order, package, provider=session.provider)
        except errors.SaleError as exc:
            raise NeedsRefund(f"the subscription could not be issued: {exc.message}") from None
    CheckoutSession.objects.filter(pk=session.pk).update(status=CheckoutSession.COMPLETE)
    audit.record(
        "order.paid",
        obj=order,
        actor_label=session.provider,
        after={"total_cents": order.total_cents, "tickets": len(tickets), "channel": order.channel, "provider": session.provider, "session": session_id},
    )
    from wondertix.sales import notifications

    # Sent after the commit, retried by the outbox (a gift's receipt, a subscription's own email).
    notifications.queue_order_confirmation(order)
    channel, count = order.channel, len(tickets)

    def after_commit() -> None:
        metrics.ORDERS.labels("paid").inc()
        metrics.TICKETS_SOLD.labels(channel).inc(count)

    transaction.on_commit(after_commit)
    return order


def _claim_seats(tickets: list[Ticket], *, now: Any, hold_id: int | None) -> None:
    """The chosen seats become the tickets' (under the performance lock taken above). The
    hold's own claims are given up first; if the hold expired and another buyer claimed a
    seat meanwhile, or the seating plan changed it, the payment is refunded instead."""
    wanted = {t.seat_id for t in tickets if t.seat_id is not None}
    if not wanted:
        return
    chosen = seats.ChosenSeats({s.pk: s for s in Seat.objects.filter(pk__in=wanted).select_related("section").order_by()})
    if len(chosen.seats) != len(wanted):
        raise NeedsRefund("a chosen seat was removed from the seating plan while the patron paid")
    try:
        seats.claim_for_order(tickets, chosen, now=now, hold_id=hold_id)
    except errors.SaleError as exc:
        if exc.code == "seat_changed":
            raise NeedsRefund("the seating plan changed the chosen seats while the patron paid") from None
        raise NeedsRefund("the chosen seats were released when the hold expired and have been taken since") from None


def cancel_payment(*, order_token: str, session_id: str, reason: str) -> Order | None:
    """The payment page expired or the payment failed: cancel the order, free the seats."""
    order = Order.objects.select_for_update().filter(token=order_token).first()
    if order is None or order.status != Order.PENDING:
        return None
    session = CheckoutSession.objects.filter(order=order).first()
    if session is None or (session.session_id and session_id and session.session_id != session_id):
        return None  # an earlier page of an order that has a newer one
    _cancel(order, reason, release_hold=True)
    return order


def record_refund(*, order_token: str, payment_reference: str, amount_cents: int, refund_reference: str, reason: str, provider: str) -> Order | None:
    """Money that arrived for an order we could not fulfil was refunded: write it down."""
    order = Order.objects.select_for_update().filter(token=order_token).first()
    if order is None:
        return None
    Payment.objects.bulk_create(
        [
            Payment(order=order, provider=provider, reference=payment_reference, amount_cents=amount_cents, status=Payment.SUCCEEDED, message="Received after the order could not be fulfilled."),
            Payment(order=order, kind=Payment.REFUND, provider=provider, reference=refund_reference, amount_cents=amount_cents, status=Payment.SUCCEEDED, message=f"Refunded automatically: {reason}."[:300]),
        ]
    )
    if order.status == Order.PENDING:
        _cancel(order, f"refunded automatically: {reason}", release_hold=True)
    else:
        audit.record("payment.refunded", obj=order, actor_label=provider, after={"amount_cents": amount_cents, "reason": reason})
    return order


def _cancel(order: Order, reason: str, *, release_hold: bool) -> None:
    before = {"status": order.status}
    order.status = Order.CANCELED
    order.save(update_fields=["status"])
    CheckoutSession.objects.filter(order=order).update(status=CheckoutSession.EXPIRED)
    if order.discount_code_id is not None:
        DiscountCode.objects.filter(pk=order.discount_code_id, times_used__gt=0).update(times_used=F("times_used") - 1)
    if release_hold and order.hold_id is not None:
        hold = Hold.objects.filter(pk=order.hold_id, consumed_at__isnull=True).first()
        if hold is not None:
            HoldLine.objects.filter(hold=hold).delete()
            Hold.objects.filter(pk=hold.pk).update(expires_at=min(hold.expires_at, timezone.now()))
    audit.record("order.canceled", obj=order, actor_label="payments", before=before, after={"status": order.status, "reason": reason})
    transaction.on_commit(lambda: metrics.ORDERS.labels("canceled").inc())
