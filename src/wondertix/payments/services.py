"""Provider webhooks, each processed exactly once.

Exactly once = the event's id is inserted into WebhookEvent (unique per provider) in the SAME
transaction as its effect. A redelivery — sequential or concurrent — either finds the row and
does nothing, or fails the insert and does nothing; a failure rolls both back, so the
provider's retry does the work. A refund (a call to the provider) never happens inside that
transaction: the transaction is rolled back, the refund is made with an idempotency key
derived from the event, and a second transaction records it and the event together.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from wondertix.payments import terminal
from wondertix.payments.models import CheckoutSession, WebhookEvent
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.registry import get_provider
from wondertix.sales import exchange_checkout, pending
from wondertix.sales.models import Order

log = logging.getLogger(__name__)

PROVIDER = "stripe"


class RefundFailed(Exception):
    """The automatic refund did not go through: answer 500 so the provider redelivers."""


def _claim(event_id: str, event_type: str) -> bool:
    """Record the event inside the caller's transaction; False if it was processed before."""
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not poison the outer transaction
            WebhookEvent.objects.create(provider=PROVIDER, event_id=event_id, event_type=event_type)
    except IntegrityError:
        return False
    return True


def _seen(event_id: str) -> bool:
    """A cheap look before taking any lock; the unique insert in _claim is what guarantees."""
    return WebhookEvent.objects.filter(provider=PROVIDER, event_id=event_id).exists()


def _session_facts(session: dict[str, Any]) -> dict[str, Any]:
    metadata = session.get("metadata") or {}
    if session.get("object") == "payment_intent":  # a card-reader payment (payments.terminal)
        return {
            "order_token": metadata.get("order_token") or "",
            "session_id": session.get("id") or "",
            "payment_reference": session.get("id") or "",
            "amount_cents": int(session.get("amount_received") or session.get("amount") or 0),
            "currency": session.get("currency") or "",
        }
    return {
        "order_token": metadata.get("order_token") or session.get("client_reference_id") or "",
        "session_id": session.get("id") or "",
        "payment_reference": session.get("payment_intent") or "",
        "amount_cents": int(session.get("amount_total") or 0),
        "currency": session.get("currency") or "",
    }


def _completed(session: dict[str, Any]) -> str:
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        # Delayed payment methods: checkout.session.async_payment_succeeded/failed follow.
        return "awaiting_payment"
    return _fulfil(session)


def _exchange_id(session: dict[str, Any]) -> str:
    """The exchange a payment page was opened for (its price difference), else ""."""
    if session.get("object") == "payment_intent":
        return ""
    return str((session.get("metadata") or {}).get(exchange_checkout.METADATA_KEY) or "")


def _fulfil(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    if exchange_id := _exchange_id(session):
        return exchange_checkout.paid(facts, exchange_id)
    order = pending.complete_payment(**facts)
    if order is None:
        return "ignored_not_ours"
    return "order_paid" if order.status == Order.PAID else "already_refunded"


def _expired(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    if exchange_id := _exchange_id(session):
        return exchange_checkout.ended(facts, exchange_id, "the payment page expired unpaid")
    order = pending.cancel_payment(order_token=facts["order_token"], session_id=facts["session_id"], reason="the payment page expired unpaid")
    return "order_canceled" if order is not None else "nothing_to_do"


def _failed(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    if exchange_id := _exchange_id(session):
        return exchange_checkout.ended(facts, exchange_id, "the payment failed")
    order = pending.cancel_payment(order_token=facts["order_token"], session_id=facts["session_id"], reason="the payment failed")
    return "order_canceled" if order is not None else "nothing_to_do"


HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "checkout.session.completed": _completed,
    "checkout.session.async_payment_succeeded": _fulfil,
    "checkout.session.async_payment_failed": _failed,
    "checkout.session.expired": _expired,
    # Card readers at the window (Stripe Terminal): only payments this system sent to a
    # reader (metadata wondertix_flow=terminal); Checkout's own PaymentIntents are ignored.
    "payment_intent.succeeded": lambda intent: terminal.succeeded(intent),
    "payment_intent.payment_failed": lambda intent: terminal.failed(intent),
    # On Stripe Checkout a declined card does not end the session (the patron may try another
    # card until it expires), so payment_intent.payment_failed ends nothing: for a reader it
    # only shows the clerk the decline.
}


def handle_stripe_event(event: dict[str, Any]) -> str:
    """Apply one verified Stripe event. Returns what happened (for the response and logs)."""
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    handler = HANDLERS.get(event_type)
    if handler is None or not event_id:
        return "ignored"
    session = event.get("data", {}).get("object", {}) or {}
    outcome = _apply(event_id, event_type, session, handler)
    log.info("stripe event processed", extra={"event_id": event_id, "event_type": event_type, "outcome": outcome})
    return outcome


def apply_event(event_id: str, event_type: str, obj: dict[str, Any], handler: Callable[[dict[str, Any]], str]) -> str:
    """Apply `handler` to `obj` exactly once per `event_id` (webhooks, and the reconciliation
    and the clerk's page, which stand in for a webhook with an id of their own)."""
    return _apply(event_id, event_type, obj, handler)


def _apply(event_id: str, event_type: str, session: dict[str, Any], handler: Callable[[dict[str, Any]], str]) -> str:
    if _seen(event_id):
        return "duplicate"
    try:
        with transaction.atomic():
            if not _claim(event_id, event_type):
                return "duplicate"
            return handler(session)
    except pending.NeedsRefund as need:
        return _refund_and_record(event_id, event_type, session, need.reason)


# How long after a payment page expired its webhook is considered lost.
RECONCILE_AFTER = timedelta(minutes=5)


def reconcile_stale_checkouts(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Settle pending orders whose payment page ended without its webhook reaching us (a
    misconfigured endpoint, an outage longer than Stripe's retries): ask Stripe what became of
    each session and apply it exactly as the webhook would. Safe to run at any time and
    concurrently with webhooks: each outcome is recorded once (the session id stands in for
    the event id) and completing an already accounted payment is a no-op."""
    now = now or timezone.now()
    provider: Any = get_provider(PROVIDER)
    stale = (
        CheckoutSession.objects.filter(provider=PROVIDER, status=CheckoutSession.OPEN, order__status=Order.PENDING, expires_at__lt=now - RECONCILE_AFTER)
        .filter(order__terminal_payments__isnull=True)  # reader payments: terminal.reconcile
        .select_related("order")
        .order_by("expires_at")[:limit]
    )
    outcomes: Counter[str] = Counter()
    for checkout in stale:
        if not checkout.session_id:
            # Stripe never answered the creation request: no patron ever saw a page.
            session: dict[str, Any] = {"id": "", "metadata": {"order_token": checkout.order.token}}
            outcomes[_apply(f"reconcile:{checkout.order.token}", "reconcile.expired", session, _expired)] += 1
            continue
        try:
            session = provider.retrieve_checkout(checkout.session_id).to_dict()
        except ProviderUnavailable:
            outcomes["unreachable"] += 1
            continue
        status = session.get("status")
        if status == "complete":
            handler = _completed
        elif status == "expired":
            handler = _expired
        else:
            outcomes["still_open"] += 1
            continue
        outcomes[_apply(f"reconcile:{checkout.session_id}", f"reconcile.{status}", session, handler)] += 1
    _reconcile_exchange_pages(now, provider, outcomes, limit)
    if outcomes:
        log.info("stale checkouts reconciled", extra={"outcomes": dict(outcomes)})
    return dict(outcomes)


def _reconcile_exchange_pages(now: datetime, provider: Any, outcomes: Counter[str], limit: int) -> None:
    """The same for an exchange's price-difference page (sales.exchange_checkout)."""
    for exchange, page in exchange_checkout.stale_pages(now - RECONCILE_AFTER, limit):
        metadata = {"order_token": exchange.order.token, exchange_checkout.METADATA_KEY: str(exchange.pk)}
        if not page.get("session_id"):  # the processor never answered: no patron saw a page
            session: dict[str, Any] = {"id": "", "metadata": metadata}
            outcomes[_apply(f"reconcile:exchange-{exchange.pk}", "reconcile.expired", session, _expired)] += 1
            continue
        try:
            session = provider.retrieve_checkout(page["session_id"]).to_dict()
        except ProviderUnavailable:
            outcomes["unreachable"] += 1
            continue
        status = session.get("status")
        handler = _completed if status == "complete" else _expired if status == "expired" else None
        if handler is None:
            outcomes["still_open"] += 1
            continue
        session["metadata"] = (session.get("metadata") or {}) | metadata
        outcomes[_apply(f"reconcile:{page['session_id']}", f"reconcile.{status}", session, handler)] += 1


def _refund_and_record(event_id: str, event_type: str, session: dict[str, Any], reason: str) -> str:
    facts = _session_facts(session)
    log.warning("refunding a payment that cannot be fulfilled", extra={"event_id": event_id, "reason": reason})
    result = get_provider(PROVIDER).refund(
        reference=facts["payment_reference"],
        amount_cents=facts["amount_cents"],
        # Derived from the event: a redelivery after a crash here returns the same refund.
        idempotency_key=f"wondertix-autorefund-{event_id}",
    )
    if not result.ok:
        raise RefundFailed(result.message or "the refund was refused")
    with transaction.atomic():
        if not _claim(event_id, event_type):
            return "duplicate"
        pending.record_refund(
            order_token=facts["order_token"],
            payment_reference=facts["payment_reference"],
            amount_cents=facts["amount_cents"],
            refund_reference=result.reference,
            reason=reason,
            provider=PROVIDER,
        )
        if exchange_id := _exchange_id(session):
            exchange_checkout.refunded(exchange_id, facts["order_token"])
    return "refunded"
