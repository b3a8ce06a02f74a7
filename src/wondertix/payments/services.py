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
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction

from wondertix.payments.models import WebhookEvent
from wondertix.payments.registry import get_provider
from wondertix.sales import pending

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


def _fulfil(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    order = pending.complete_payment(**facts)
    return "ignored_not_ours" if order is None else "order_paid"


def _expired(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    order = pending.cancel_payment(order_token=facts["order_token"], session_id=facts["session_id"], reason="the payment page expired unpaid")
    return "order_canceled" if order is not None else "nothing_to_do"


def _failed(session: dict[str, Any]) -> str:
    facts = _session_facts(session)
    order = pending.cancel_payment(order_token=facts["order_token"], session_id=facts["session_id"], reason="the payment failed")
    return "order_canceled" if order is not None else "nothing_to_do"


HANDLERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "checkout.session.completed": _completed,
    "checkout.session.async_payment_succeeded": _fulfil,
    "checkout.session.async_payment_failed": _failed,
    "checkout.session.expired": _expired,
    # payment_intent.payment_failed is not a handler on purpose: on Stripe Checkout a declined
    # card does not end the session, the patron may try another card until it expires.
}


def handle_stripe_event(event: dict[str, Any]) -> str:
    """Apply one verified Stripe event. Returns what happened (for the response and logs)."""
    event_id, event_type = str(event.get("id", "")), str(event.get("type", ""))
    handler = HANDLERS.get(event_type)
    if handler is None or not event_id:
        return "ignored"
    if _seen(event_id):
        return "duplicate"
    session = event.get("data", {}).get("object", {}) or {}
    try:
        with transaction.atomic():
            if not _claim(event_id, event_type):
                return "duplicate"
            outcome = handler(session)
    except pending.NeedsRefund as need:
        return _refund_and_record(event_id, event_type, session, need.reason)
    log.info("stripe event processed", extra={"event_id": event_id, "event_type": event_type, "outcome": outcome})
    return outcome


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
    return "refunded"
