"""Card payments on a reader at the window (Stripe Terminal, server-driven), end to end.

What is paid is always already written and pending: a window sale's PENDING order (its seats
held, its prices in its CheckoutSession — the online path's own records), or the pending
charge of an exchange's price difference. This module hands the amount to a reader and
follows it; the confirmation goes through the same exactly-once webhook path as Checkout
(payments.services: `payment_intent.succeeded` completes the order with
`pending.complete_payment`, or finishes the exchange), and the clerk's page may confirm it
first by asking Stripe (`refresh`) — the event id or `poll:<pi>` is claimed in the same
transaction as the effect, and completing an already accounted payment is a no-op.

A declined card changes nothing: the order stays pending, nothing is sold, and the clerk
retries (another card) or cancels (the seats go back on sale; an exchange is undone).
Provider calls never happen inside a transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from wondertix.payments.models import TerminalPayment
from wondertix.payments.providers import stripe_terminal as readers
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.sales import errors
from wondertix.sales.models import Order

log = logging.getLogger(__name__)

FLOW = "terminal"
# How long a window card payment may wait on the reader before its seats go back on sale.
MINUTES = 15
# The webhook confirms a reader payment; the clerk's page confirms it itself only when Stripe
# has reported it succeeded for this long without the webhook arriving.
WEBHOOK_GRACE = timedelta(seconds=10)


def _metadata(tp: TerminalPayment) -> dict[str, str]:
    data = {"wondertix_flow": FLOW, "order_token": tp.order.token, "order_reference": tp.order.reference, "terminal_payment": str(tp.pk)}
    if tp.exchange_id:
        data["exchange_id"] = str(tp.exchange_id)
    return data


def create(order: Order, reader_id: str, *, amount_cents: int, actor: User | None, exchange: Any = None) -> TerminalPayment:
    """Record a reader payment for `amount_cents` (in the caller's transaction)."""
    if not reader_id:
        raise errors.invalid("reader_required", "Choose the card reader.", field="reader")
    if amount_cents <= 0:
        raise errors.invalid("nothing_to_charge", "There is nothing to charge on the card: take it as cash or a comp.")
    return TerminalPayment.objects.create(order=order, exchange=exchange, reader_id=reader_id, amount_cents=amount_cents, created_by=actor)


def start_for_order(order: Order, reader_id: str, *, actor: User | None) -> TerminalPayment:
    """Pay a pending order (a gift or a subscription at the window) on a reader: the same
    reader payment again if one is under way (a double click), else a new one."""
    tp = order.terminal_payments.exclude(status=TerminalPayment.CANCELED).first()
    if tp is None:
        with transaction.atomic():
            tp = create(order, reader_id, amount_cents=order.total_cents, actor=actor)
        return send(tp)
    return tp if tp.payment_intent else send(tp)


def send(tp: TerminalPayment) -> TerminalPayment:
    """Create the PaymentIntent (once: the key is derived from this row) and hand it to the
    reader. Outside any transaction. Stripe unreachable or the reader busy/offline: the row
    keeps a message and the clerk retries."""
    if tp.status in (TerminalPayment.SUCCEEDED, TerminalPayment.CANCELED):
        return tp
    try:
        if not tp.payment_intent:
            what = f"exchange on order {tp.order.reference}" if tp.exchange_id else f"order {tp.order.reference}"
            intent = readers.create_payment(
                amount_cents=tp.amount_cents, description=f"{settings.THEATER_NAME} {what}", metadata=_metadata(tp),
                idempotency_key=f"wondertix-terminal-{tp.pk}-{tp.order.token}",
            )
            TerminalPayment.objects.filter(pk=tp.pk).update(payment_intent=intent)
            tp.payment_intent = intent
        readers.process_on_reader(tp.reader_id, tp.payment_intent)
    except ProviderUnavailable as exc:
        TerminalPayment.objects.filter(pk=tp.pk).update(message=str(exc)[:300])
        tp.message = str(exc)[:300]
        return tp
    TerminalPayment.objects.filter(pk=tp.pk, status__in=(TerminalPayment.WAITING, TerminalPayment.DECLINED)).update(
        status=TerminalPayment.WAITING, message=""
    )
    tp.refresh_from_db()
    return tp


def refresh(tp: TerminalPayment) -> tuple[TerminalPayment, readers.ReaderState | None]:
    """Ask Stripe how the payment is going (the clerk's page polls this). A payment Stripe has
    reported succeeded for WEBHOOK_GRACE without its webhook is confirmed here, exactly as the
    webhook would (a late webhook then changes nothing)."""
    if tp.status != TerminalPayment.WAITING or not tp.payment_intent:
        return tp, None
    try:
        intent = readers.retrieve_payment(tp.payment_intent)
        state = readers.reader_state(tp.reader_id)
    except ProviderUnavailable:
        return tp, None
    if intent.get("status") == "succeeded":
        now = timezone.now()
        if tp.succeeded_seen_at is None:
            TerminalPayment.objects.filter(pk=tp.pk, succeeded_seen_at__isnull=True).update(succeeded_seen_at=now)
        elif now - tp.succeeded_seen_at >= WEBHOOK_GRACE:
            from wondertix.payments import services

            services.apply_event(f"poll:{tp.payment_intent}", "poll.payment_intent.succeeded", intent, succeeded)
    elif state.payment_intent == tp.payment_intent and state.action == "failed":
        TerminalPayment.objects.filter(pk=tp.pk, status=TerminalPayment.WAITING).update(
            status=TerminalPayment.DECLINED, message=(state.failure_message or "The card was declined.")[:300]
        )
    tp.refresh_from_db()
    return tp, state


def cancel(tp: TerminalPayment) -> TerminalPayment:
    """The clerk cancels: stop the reader, cancel the payment, give back what was held. If the
    card went through in the meantime, the payment is confirmed instead."""
    if tp.status in (TerminalPayment.SUCCEEDED, TerminalPayment.CANCELED):
        return tp
    if tp.payment_intent:
        try:
            intent = readers.cancel_payment(tp.reader_id, tp.payment_intent)
        except ProviderUnavailable as exc:
            raise errors.SaleError("payment_unavailable", str(exc), status=503) from exc
        if intent.get("status") == "succeeded":
            from wondertix.payments import services

            services.apply_event(f"poll:{tp.payment_intent}", "poll.payment_intent.succeeded", intent, succeeded)
            tp.refresh_from_db()
            return tp
    with transaction.atomic():
        locked = TerminalPayment.objects.select_for_update().get(pk=tp.pk)
        if locked.status in (TerminalPayment.SUCCEEDED, TerminalPayment.CANCELED):
            return locked
        _give_back(locked, "the card payment was canceled at the window")
    tp.refresh_from_db()
    return tp


def present_test_card(tp: TerminalPayment, card_number: str) -> TerminalPayment:
    """Test mode: present one of Stripe's test cards to a simulated reader."""
    try:
        readers.present_test_card(tp.reader_id, card_number)
    except ProviderUnavailable as exc:
        raise errors.invalid("test_card_refused", str(exc)) from exc
    return tp


def _give_back(tp: TerminalPayment, reason: str) -> None:
    """Inside a transaction: the payment will not happen; undo what waited for it."""
    from wondertix.sales import exchanges, pending

    TerminalPayment.objects.filter(pk=tp.pk).update(status=TerminalPayment.CANCELED, message=reason[:300])
    if tp.exchange_id:
        exchanges.finish_card_payment(tp.exchange_id, ok=False, message=f"The price difference was not paid: {reason}.")
    else:
        pending.cancel_payment(order_token=tp.order.token, session_id="", reason=reason)


# ---------------------------------------------------------------------------- confirmations (webhook or poll)


def _ours(intent: dict[str, Any]) -> TerminalPayment | None:
    metadata = intent.get("metadata") or {}
    if metadata.get("wondertix_flow") != FLOW:
        return None  # a Checkout payment (checkout.session.* settles it) or another system's
    return TerminalPayment.objects.select_for_update().filter(payment_intent=str(intent.get("id") or "")).select_related("order").first()


def succeeded(intent: dict[str, Any]) -> str:
    """`payment_intent.succeeded` for a reader payment, in the event's transaction."""
    from wondertix.sales import exchanges, pending

    tp = _ours(intent)
    if tp is None:
        return "ignored_not_ours"
    amount = int(intent.get("amount_received") or intent.get("amount") or 0)
    if tp.exchange_id:
        exchange = exchanges.finish_card_payment(tp.exchange_id, ok=True, reference=tp.payment_intent)
        if exchange.status == exchange.FAILED:
            raise pending.NeedsRefund("the exchange was canceled before the card payment arrived")
        outcome = "exchange_paid"
    else:
        order = pending.complete_payment(
            order_token=tp.order.token, session_id=tp.payment_intent, payment_reference=tp.payment_intent,
            amount_cents=amount, currency=str(intent.get("currency") or ""),
        )
        outcome = "order_paid" if order is not None and order.status == Order.PAID else "already_refunded"
    TerminalPayment.objects.filter(pk=tp.pk).update(status=TerminalPayment.SUCCEEDED, message="")
    return outcome


def failed(intent: dict[str, Any]) -> str:
    """`payment_intent.payment_failed`: the card was declined. Nothing is sold; the clerk can
    present another card or cancel."""
    tp = _ours(intent)
    if tp is None:
        return "ignored_not_ours"
    error = intent.get("last_payment_error") or {}
    TerminalPayment.objects.filter(pk=tp.pk, status=TerminalPayment.WAITING).update(
        status=TerminalPayment.DECLINED, message=str(error.get("message") or "The card was declined.")[:300]
    )
    return "card_declined"


def reconcile(*, limit: int = 100) -> dict[str, int]:
    """Reader payments nobody finished (the clerk walked away, the webhook was lost): after
    MINUTES + 5, ask Stripe once more and either confirm them or cancel them."""
    from collections import Counter

    cutoff = timezone.now() - timedelta(minutes=MINUTES + 5)
    stale = TerminalPayment.objects.filter(status__in=(TerminalPayment.WAITING, TerminalPayment.DECLINED), created_at__lt=cutoff).select_related("order")
    outcomes: Counter[str] = Counter()
    for tp in stale.order_by("created_at")[:limit]:
        try:
            done = cancel(tp)
        except errors.SaleError:
            outcomes["terminal_unreachable"] += 1
            continue
        outcomes[f"terminal_{done.status}"] += 1
    return dict(outcomes)
