"""Refunds: money back through the original payment (or cash), seats back on sale.

Like a Stripe sale (sales/pending.py), a refund is never sent to the payment provider while
a row lock is held: a slow provider would stall every sale of the performance.

1. One short transaction locks the order, validates every item and writes the refund
   PENDING, with its refund Payment rows and the provider idempotency key each is sent with.
   A refused request raises SaleError before anything is written (no audit entry either).
2. The provider is called outside any transaction (refund_settlement.settle).
3. A second short transaction marks it succeeded (seats back on sale, audit entry) or, when
   the provider refused, failed (everything step 1 did is undone).

Every refund request carries an idempotency key stored with the Refund row in step 1;
repeating the request returns the first refund, and resumes it if it was left pending (a
crash, a timeout): the provider gets the same key again, so it refunds once.
`refund_settlement.reconcile_refunds` does the same for refunds nobody retried.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.contrib.auth.models import User
from django.db.models import F, Sum

from wondertix.idempotency import find_by_key, run_once
from wondertix.money import format_cents
from wondertix.patrons.models import Donation, Subscription
from wondertix.payments.models import Payment
from wondertix.sales import errors
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange, Refund, RefundItem, RefundSource
from wondertix.sales.refund_settlement import order_status_after_refund, send_refund, settle
from wondertix.sales.services import request_fingerprint

REFUNDABLE_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED)
SOLD_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED)
METHODS = (Refund.ORIGINAL, Refund.CASH)


@dataclass(frozen=True)
class TicketRefund:
    ticket_id: int
    # None: the ticket's face value left (+ its fee when include_fees). A smaller amount keeps
    # the rest (e.g. a cancellation charge); the seat is returned either way.
    amount_cents: int | None = None


@dataclass(frozen=True)
class DonationRefund:
    donation_id: int
    amount_cents: int | None = None  # None: all that is left of the gift


@dataclass
class RefundRequest:
    tickets: list[TicketRefund] = field(default_factory=list)
    donations: list[DonationRefund] = field(default_factory=list)
    subscriptions: list[int] = field(default_factory=list)
    include_fees: bool = False
    method: str = Refund.ORIGINAL
    reason: str = ""

    def fingerprint(self, order_id: int) -> str:
        data = asdict(self)
        data["order"] = order_id
        data["tickets"] = sorted(data["tickets"], key=lambda t: t["ticket_id"])
        data["donations"] = sorted(data["donations"], key=lambda d: d["donation_id"])
        data["subscriptions"] = sorted(data["subscriptions"])
        return request_fingerprint(data)


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class TicketLeft:
    face_cents: int
    fee_cents: int


def ticket_refundable(tickets: list[Ticket]) -> dict[int, TicketLeft]:
    """What can still be refunded of each ticket (face value and fee), after earlier refunds
    (pending ones included: they may go through; refused ones not: nothing went out)."""
    done = {
        row["ticket_id"]: (row["face"] or 0, row["fee"] or 0)
        for row in RefundItem.objects.filter(ticket__in=[t.pk for t in tickets]).exclude(refund__status=Refund.FAILED)
        .values("ticket_id")
        .annotate(face=Sum("amount_cents"), fee=Sum("fee_cents"))
    }
    out = {}
    for t in tickets:
        face_done, fee_done = done.get(t.pk, (0, 0))
        if t.status == Ticket.EXCHANGED or t.status == Ticket.CANCELED:
            out[t.pk] = TicketLeft(0, 0)
        else:
            out[t.pk] = TicketLeft(max(0, t.price_cents - t.discount_cents - face_done), max(0, t.fee_cents - fee_done))
    return out


def refundable_cents(order: Order) -> int:
    return order.total_cents - order.refunded_cents


def charges_left(order: Order) -> list[tuple[Payment, int]]:
    """Each successful charge of the order with how much of it has not been refunded yet (a
    refund still pending with the provider counts: it may go through)."""
    charges = list(order.payments.filter(kind=Payment.CHARGE, status=Payment.SUCCEEDED).order_by("created_at", "id"))
    refunded = {
        row["charge_id"]: row["n"]
        for row in RefundSource.objects.filter(charge__in=charges, payment__status__in=(Payment.PENDING, Payment.SUCCEEDED))
        .values("charge_id")
        .annotate(n=Sum("payment__amount_cents"))
    }
    return [(c, c.amount_cents - refunded.get(c.pk, 0)) for c in charges]


# ---------------------------------------------------------------------------- money out


def plan_payments(
    order: Order, amount_cents: int, *, method: str, key: str, refund: Refund | None = None, exchange: Exchange | None = None
) -> list[Payment]:
    """Write the PENDING refund Payment rows that will send `amount_cents` back to the buyer.

    `original` goes back to the order's charges (oldest first, never more than a charge took:
    a pending refund already counts against its charge); `cash` is paid out at the window.
    Each payment's RefundSource keeps the provider idempotency key it is sent with, so a retry
    sends the same key. Runs inside the caller's transaction, under the order's lock.
    """
    if amount_cents <= 0:
        return []
    if method not in METHODS:
        raise errors.invalid("invalid_method", "Choose how to refund: original payment or cash.", field="method")
    if method == Refund.CASH:
        payment = Payment.objects.create(order=order, kind=Payment.REFUND, provider="cash", amount_cents=amount_cents, status=Payment.PENDING)
        RefundSource.objects.create(payment=payment, charge=None, refund=refund, exchange=exchange, provider_key=key)
        return [payment]
    plan = [(charge, left_on_charge) for charge, left_on_charge in charges_left(order) if left_on_charge > 0]
    if sum(n for _, n in plan) < amount_cents:
        raise errors.invalid(
            "refund_exceeds_paid",
            f"Only {format_cents(sum(n for _, n in plan))} was paid on this order's card or cash charges; "
            f"refund the rest in cash if it is owed.",
        )
    payments: list[Payment] = []
    left = amount_cents
    for charge, available in plan:
        if left == 0:
            break
        part = min(available, left)
        payment = Payment.objects.create(order=order, kind=Payment.REFUND, provider=charge.provider, amount_cents=part, status=Payment.PENDING)
        RefundSource.objects.create(payment=payment, charge=charge, refund=refund, exchange=exchange, provider_key=f"{key}:{charge.pk}")
        payments.append(payment)
        left -= part
    return payments


def pay_back(order: Order, amount_cents: int, *, method: str, key: str) -> list[Payment]:
    """Plan the refund payments and pay them out at once, inside the caller's transaction.
    Only for cash at the window (an exchange's difference paid back in cash): a card refund is
    never sent under a lock — refunds and exchanges write it pending and send it after the
    commit (refund_settlement.settle, exchanges.settle_exchange)."""
    payments = plan_payments(order, amount_cents, method=method, key=key)
    for payment in payments:
        result = send_refund(payment)
        if not result.ok:
            raise errors.payment_failed("refund_failed", result.message or "The payment provider refused the refund. Nothing was changed.")
        Payment.objects.filter(pk=payment.pk).update(status=Payment.SUCCEEDED, reference=result.reference)
        payment.status, payment.reference = Payment.SUCCEEDED, result.reference
    return payments


# ---------------------------------------------------------------------------- the use case


def _check_key(key: str) -> str:
    key = (key or "").strip()
    if not key or len(key) > 100:
        raise errors.invalid("invalid_idempotency_key", "A refund request needs an idempotency key of 1 to 100 characters.")
    return key


def _existing(key: str, fingerprint: str) -> Refund | None:
    return find_by_key(Refund.objects, key, fingerprint, message="This refund key was already used for a different refund.")


def _amount(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.invalid("invalid_amount", f"The amount for {what} must be zero or more cents.", field="amount_cents")
    return value


def refund_order(
    order_id: int, request: RefundRequest, *, idempotency_key: str, actor: User | None = None, canceled_performance_id: int | None = None
) -> Refund:
    """Refund tickets, donations and/or subscriptions of one order. See the module docstring.

    `canceled_performance_id`: the refund is part of canceling that performance (the buyer is
    told of the cancellation instead of getting a plain refund email); see sales.cancellation."""
    key = _check_key(idempotency_key)
    fingerprint = request.fingerprint(order_id)
    if request.method not in METHODS:
        raise errors.invalid("invalid_method", "Choose how to refund: original payment or cash.", field="method")
    if len(request.reason) > 300:
        raise errors.invalid("invalid_reason", "Please keep the reason under 300 characters.", field="reason")
    refund, _ = run_once(
        lambda: _existing(key, fingerprint),
        lambda: _refund_locked(order_id, request, key=key, fingerprint=fingerprint, actor=actor, canceled_performance_id=canceled_performance_id),
    )
    # The provider is called here, after the pending refund committed and outside every lock;
    # a repeat of the request (same key) resumes a refund left pending.
    return settle(refund)


def _refund_locked(
    order_id: int, request: RefundRequest, *, key: str, fingerprint: str, actor: User | None, canceled_performance_id: int | None = None
) -> Refund:
    """Lock the order, validate, and write the refund PENDING (see refund_settlement)."""
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise errors.not_found("order_not_found", "That order does not exist.")
    # A concurrent repeat of this request waited for the order lock: it finds the first refund.
    existing = _existing(key, fingerprint)
    if existing is not None:
        return existing
    if order.status == Order.REFUNDED:
        raise errors.conflict("already_refunded", f"Order {order.reference} has already been refunded in full.")
    if order.status not in REFUNDABLE_STATUSES:
        raise errors.invalid("order_not_paid", f"Order {order.reference} is {order.get_status_display().lower()}; only paid orders can be refunded.")
    if not (request.tickets or request.donations or request.subscriptions):
        raise errors.invalid("nothing_to_refund", "Choose at least one ticket, donation or subscription to refund.")

    items: list[RefundItem] = []
    seats: dict[int, list[Ticket]] = defaultdict(list)

    # Tickets.
    ids = [t.ticket_id for t in request.tickets]
    if len(set(ids)) != len(ids):
        raise errors.invalid("duplicate_ticket", "Each ticket can be listed only once in a refund.")
    tickets = {t.pk: t for t in Ticket.objects.filter(order=order, pk__in=ids).select_related("price_type")}
    if len(tickets) != len(ids):
        raise errors.invalid("ticket_not_in_order", f"Some of those tickets are not part of order {order.reference}.")
    left = ticket_refundable(list(tickets.values()))
    for line in request.tickets:
        ticket = tickets[line.ticket_id]
        if ticket.status == Ticket.EXCHANGED:
            raise errors.invalid("ticket_exchanged", f"Ticket {ticket.code} was exchanged; refund the ticket it was exchanged for.")
        if ticket.status == Ticket.CANCELED:
            raise errors.invalid("ticket_canceled", f"Ticket {ticket.code} was canceled and cannot be refunded.")
        tl = left[ticket.pk]
        custom = _amount(line.amount_cents, f"ticket {ticket.code}")
        most = tl.face_cents + (tl.fee_cents if request.include_fees else 0)
        if custom is None:
            face, fee = tl.face_cents, (tl.fee_cents if request.include_fees else 0)
        else:
            if custom > most:
                raise errors.invalid(
                    "refund_exceeds_paid",
                    f"Ticket {ticket.code}: at most {format_cents(most)} can be refunded"
                    f"{'' if request.include_fees else ' (fees not included)'}; {format_cents(custom)} was asked.",
                    field="amount_cents",
                )
            face = min(custom, tl.face_cents)
            fee = custom - face
        returns_seat = ticket.status == Ticket.VALID
        if not returns_seat and face + fee == 0:
            raise errors.conflict("ticket_already_refunded", f"Ticket {ticket.code} has already been refunded.")
        items.append(RefundItem(ticket=ticket, amount_cents=face, fee_cents=fee, seat_returned=returns_seat))
        if returns_seat:
            seats[ticket.performance_id].append(ticket)

    # Donations.
    d_ids = [d.donation_id for d in request.donations]
    if len(set(d_ids)) != len(d_ids):
        raise errors.invalid("duplicate_donation", "Each donation can be listed only once in a refund.")
    donations = {d.pk: d for d in Donation.objects.select_for_update().filter(order=order, pk__in=d_ids)}
    if len(donations) != len(d_ids):
        raise errors.invalid("donation_not_in_order", f"That donation is not part of order {order.reference}.")
    for dline in request.donations:
        donation = donations[dline.donation_id]
        d_left = donation.amount_cents - donation.refunded_cents
        custom = _amount(dline.amount_cents, "the donation")
        amount = d_left if custom is None else custom
        if d_left == 0:
            raise errors.conflict("donation_already_refunded", f"The {format_cents(donation.amount_cents)} donation has already been refunded.")
        if amount > d_left:
            raise errors.invalid(
                "refund_exceeds_paid",
                f"Only {format_cents(d_left)} of the {format_cents(donation.amount_cents)} donation can still be refunded; {format_cents(amount)} was asked.",
                field="amount_cents",
            )
        if amount == 0:
            raise errors.invalid("invalid_amount", "A donation refund must be more than $0.00.", field="amount_cents")
        items.append(RefundItem(donation=donation, amount_cents=amount))

    # Subscriptions (only while none of their tickets were redeemed).
    subs = {s.pk: s for s in Subscription.objects.select_for_update().filter(order=order, pk__in=request.subscriptions)}
    if len(subs) != len(set(request.subscriptions)) or len(request.subscriptions) != len(set(request.subscriptions)):
        raise errors.invalid("subscription_not_in_order", f"That subscription is not part of order {order.reference}.")
    for sub in subs.values():
        if sub.status != Subscription.ACTIVE:
            raise errors.conflict("subscription_already_refunded", "That subscription has already been refunded.")
        if sub.redemptions.exists():
            raise errors.conflict(
                "subscription_in_use",
                "Tickets have already been redeemed from this subscription; refund or keep those tickets, not the subscription.",
            )
        items.append(RefundItem(subscription=sub, amount_cents=sub.price_cents))

    tickets_cents = sum(i.amount_cents for i in items if i.ticket is not None)
    fees_cents = sum(i.fee_cents for i in items)
    donations_cents = sum(i.amount_cents for i in items if i.donation is not None)
    subs_cents = sum(i.amount_cents for i in items if i.subscription is not None)
    total = tickets_cents + fees_cents + donations_cents + subs_cents
    if total > refundable_cents(order):
        raise errors.invalid(
            "refund_exceeds_paid",
            f"Only {format_cents(refundable_cents(order))} of order {order.reference} can still be refunded; {format_cents(total)} was asked.",
        )

    before = {"status": order.status, "refunded_cents": order.refunded_cents, "total_cents": order.total_cents}
    refund = Refund.objects.create(
        order=order, idempotency_key=key, request_fingerprint=fingerprint, method=request.method,
        amount_cents=total, tickets_cents=tickets_cents, fees_cents=fees_cents, donations_cents=donations_cents,
        subscriptions_cents=subs_cents, reason=request.reason.strip(), created_by=actor, status=Refund.PENDING,
        before={**before, "subscriptions": {str(s.pk): s.remaining for s in subs.values()}},
        canceled_performance_id=canceled_performance_id,
    )
    for item in items:
        item.refund = refund
    RefundItem.objects.bulk_create(items)
    plan_payments(order, total, method=request.method, key=f"refund:{key}", refund=refund)
    # While pending, what is being refunded cannot be refunded, exchanged, admitted or
    # redeemed again: the tickets are marked refunded and the amount counts against the order.
    # The seats stay sold until the money has gone out (refund_settlement), so a refused
    # refund gives the tickets back without their seats ever having been sold twice.
    returned = [t.pk for ts in seats.values() for t in ts]
    if returned:
        Ticket.objects.filter(pk__in=returned).update(status=Ticket.REFUNDED)
    for item in items:
        if item.donation is not None:
            Donation.objects.filter(pk=item.donation.pk).update(refunded_cents=F("refunded_cents") + item.amount_cents)
        if item.subscription is not None:
            Subscription.objects.filter(pk=item.subscription.pk).update(status=Subscription.REFUNDED, remaining=0)
    order.refunded_cents += total
    order.status = order_status_after_refund(order)
    order.save(update_fields=["refunded_cents", "status"])
    return refund
