"""Sending a pending refund to the payment provider, and finishing it.

A Refund is written PENDING by sales/refunds.py under the order's lock. Everything here
happens after that transaction committed:

- `settle` calls the provider for each pending refund Payment, outside any transaction and
  lock, with the idempotency key stored on its RefundSource — the same key every time, so a
  retry after a crash, a timeout or a commit that failed gets the provider's first refund back
  instead of a second one;
- then one short transaction finishes it: every payment went out → SUCCEEDED (the seats go
  back on sale, a redeemed subscription gets its redemptions back, the audit entry is
  written); the provider refused and nothing went out → FAILED, and what the pending step did
  is undone (tickets valid again, the amount no longer counted against the order);
- `reconcile_refunds` settles refunds left pending by a crash (run by `reconcile_payments`).

Locks are taken in the order every use case takes them: order, subscription, performances.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from wondertix.ops import audit
from wondertix.patrons.models import Donation, Redemption, Subscription
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import ProviderUnavailable, RefundResult
from wondertix.payments.registry import get_provider
from wondertix.sales import change_emails, errors, inventory
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Refund, RefundSource

log = logging.getLogger(__name__)

# A refund younger than this may still be in the hands of the request that started it.
RECONCILE_AFTER = timedelta(minutes=2)

STILL_PENDING = (
    "The payment provider did not answer, so this refund is still pending. "
    "Try again with the same form (it refunds only once); it is also completed automatically."
)


def order_status_after_refund(order: Order) -> str:
    valid_left = order.tickets.filter(status=Ticket.VALID).exists()
    if order.refunded_cents >= order.total_cents and not valid_left:
        return Order.REFUNDED
    if order.refunded_cents > 0 or order.tickets.filter(status=Ticket.REFUNDED).exists():
        return Order.PARTIALLY_REFUNDED
    return Order.PAID


def send_refund(payment: Payment) -> RefundResult:
    """Ask the provider to send one pending refund Payment, with its stored key."""
    source = RefundSource.objects.select_related("charge").get(payment=payment)
    reference = source.charge.reference if source.charge is not None else f"order-{payment.order_id}"
    return get_provider(payment.provider).refund(reference=reference, amount_cents=payment.amount_cents, idempotency_key=source.provider_key)


def send_pending_refunds(payments: QuerySet[Payment]) -> dict[int, RefundResult | None]:
    """Send pending refund Payments (of a refund, or of an exchange's difference) in order,
    each with its stored key; None where the provider gave no answer (unreachable, or an
    answer that is not one): that refund may have gone out, so it stays pending and is asked
    again later. Nothing more goes out after the first one not answered yes."""
    results: dict[int, RefundResult | None] = {}
    for payment in payments.order_by("pk"):
        try:
            result: RefundResult | None = send_refund(payment)
        except ProviderUnavailable as exc:
            log.warning("refund provider unreachable", extra={"payment_id": payment.pk, "error": str(exc)})
            result = None
        if result is not None and result.unknown:
            result = None
        results[payment.pk] = result
        if result is None or not result.ok:
            break
    return results


def settle(refund: Refund) -> Refund:
    """Send what is still pending of `refund` to the provider, then finish it.

    Returns the refund when it succeeded. Raises SaleError when the provider refused it
    (402 `refund_failed`, the refund is failed and undone) or could not be reached (409
    `refund_pending`, the refund stays pending: retry with the same key).
    """
    if refund.status == Refund.SUCCEEDED:
        return refund
    if refund.status == Refund.FAILED:
        raise _refused(refund)
    results = send_pending_refunds(Payment.objects.filter(refund_source__refund=refund, status=Payment.PENDING))
    refund = finish(refund.pk, results)
    if refund.status == Refund.SUCCEEDED:
        return refund
    if refund.status == Refund.FAILED:
        raise _refused(refund)
    raise errors.conflict("refund_pending", refund.message or STILL_PENDING)


def _refused(refund: Refund) -> errors.SaleError:
    return errors.payment_failed("refund_failed", refund.message or "The payment provider refused the refund. Nothing was refunded.")


def finish(refund_id: int, results: dict[int, RefundResult | None]) -> Refund:
    """Record the provider's answers (payment id → result; None: no answer) and finish the
    refund if they settle it. One short transaction; a refund already finished is returned
    unchanged, so concurrent retries finish it once."""
    with transaction.atomic():
        refund = Refund.objects.select_related("order").get(pk=refund_id)
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != Refund.PENDING:
            return refund
        for payment_id, result in results.items():
            if result is not None and result.ok:
                Payment.objects.filter(pk=payment_id, status=Payment.PENDING).update(status=Payment.SUCCEEDED, reference=result.reference[:120])
        payments = Payment.objects.filter(refund_source__refund=refund)
        refusal = next((r for r in results.values() if r is not None and not r.ok), None)
        if refusal is not None:
            message = (refusal.message or "The payment provider refused the refund.")[:300]
            if payments.filter(status=Payment.SUCCEEDED).exists():
                # Part went out: keep it pending (and counted) until the rest is settled.
                refund.message = f"Part of this refund was sent; the rest was refused: {message}"[:300]
                refund.save(update_fields=["message"])
                log.error("refund partly sent", extra={"refund_id": refund.pk})
            else:
                _fail(refund, order, message)
        elif not payments.filter(status=Payment.PENDING).exists():
            _complete(refund, order)
        return refund


def _complete(refund: Refund, order: Order) -> None:
    """The money went out: seats back on sale, redemptions back, the refund succeeded."""
    items = list(refund.items.select_related("ticket"))
    seats: dict[int, int] = defaultdict(int)
    for item in items:
        if item.ticket is not None and item.seat_returned:
            seats[item.ticket.performance_id] += 1
    if seats:
        redeemed_from = _lock_redeemed_subscription(order)
        performances = inventory.lock_performances(seats)
        inventory.add_sold(performances, {perf_id: -n for perf_id, n in seats.items()})
        if redeemed_from is not None:
            _credit_subscription(redeemed_from, sum(seats.values()))
    refund.status = Refund.SUCCEEDED
    refund.message = ""
    refund.save(update_fields=["status", "message"])
    audit.record(
        "order.refunded",
        actor=refund.created_by,
        obj=order,
        before={k: v for k, v in refund.before.items() if k != "subscriptions"},
        after={
            "status": order.status,
            "refunded_cents": order.refunded_cents,
            "refund_id": refund.pk,
            "amount_cents": refund.amount_cents,
            "method": refund.method,
            "tickets": sorted(i.ticket.code for i in items if i.ticket is not None and i.seat_returned),
            "donations": sorted(i.donation_id for i in items if i.donation_id is not None),
            "subscriptions": sorted(i.subscription_id for i in items if i.subscription_id is not None),
            "reason": refund.reason,
        },
    )
    change_emails.queue_refund_email(refund, order)  # the buyer is told, once, with the refund


def _fail(refund: Refund, order: Order, message: str) -> None:
    """Nothing went out: undo the pending step, so the tickets and money are as before."""
    items = list(refund.items.all())
    ticket_ids = [i.ticket_id for i in items if i.ticket_id is not None and i.seat_returned]
    if ticket_ids:
        Ticket.objects.filter(pk__in=ticket_ids, status=Ticket.REFUNDED).update(status=Ticket.VALID)
    remaining = refund.before.get("subscriptions", {})
    for item in items:
        if item.donation_id is not None:
            Donation.objects.filter(pk=item.donation_id).update(refunded_cents=F("refunded_cents") - item.amount_cents)
        if item.subscription_id is not None:
            Subscription.objects.filter(pk=item.subscription_id).update(status=Subscription.ACTIVE, remaining=remaining.get(str(item.subscription_id), 0))
    Payment.objects.filter(refund_source__refund=refund, status=Payment.PENDING).update(status=Payment.FAILED, message=message)
    before = {"status": order.status, "refunded_cents": order.refunded_cents}
    order.refunded_cents -= refund.amount_cents
    order.status = order_status_after_refund(order)
    order.save(update_fields=["refunded_cents", "status"])
    refund.status = Refund.FAILED
    refund.message = message
    refund.save(update_fields=["status", "message"])
    audit.record(
        "order.refund_failed",
        actor=refund.created_by,
        obj=order,
        before=before,
        after={"status": order.status, "refunded_cents": order.refunded_cents, "refund_id": refund.pk, "amount_cents": refund.amount_cents, "message": message},
    )


def _lock_redeemed_subscription(order: Order) -> Subscription | None:
    """The subscription this order's tickets were redeemed from (row-locked), if any."""
    redemption = Redemption.objects.filter(order=order).first()
    if redemption is None:
        return None
    return Subscription.objects.select_for_update().get(pk=redemption.subscription_id)


def _credit_subscription(sub: Subscription, seats: int) -> None:
    """Refunding tickets redeemed from a subscription gives the redemptions back to it."""
    if sub.status == Subscription.ACTIVE:
        sub.remaining = min(sub.tickets_included, sub.remaining + seats)
        sub.save(update_fields=["remaining"])


def reconcile_refunds(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Settle refunds left pending (a crash or a timeout between the provider and the commit,
    a provider that did not answer): send them again with the same keys and finish them.
    Safe at any time, also concurrently with a clerk's retry."""
    now = now or timezone.now()
    stale = Refund.objects.filter(status=Refund.PENDING, created_at__lt=now - RECONCILE_AFTER).order_by("created_at", "pk")[:limit]
    outcomes: Counter[str] = Counter()
    for refund in stale:
        try:
            settle(refund)
        except errors.SaleError as exc:
            outcomes[exc.code] += 1
            continue
        outcomes["refund_succeeded"] += 1
    if outcomes:
        log.info("pending refunds reconciled", extra={"outcomes": dict(outcomes)})
    return dict(outcomes)
