"""Stripe Terminal, server-driven: card readers at the box-office window.

A window card payment is a PaymentIntent for `card_present`, handed to a reader
(`Reader.process_payment_intent`); the patron taps, inserts or swipes; Stripe confirms with
the `payment_intent.succeeded` webhook (or the clerk's page asks). Readers are registered to a
Terminal location in the Stripe dashboard; WonderTix lists the account's online readers.

Every call passes the secret key explicitly and, where Stripe accepts one, an idempotency key
derived from our own ids. Card data never passes through WonderTix: the reader talks to
Stripe. Tests serve recorded responses (no network), as for Checkout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings

from wondertix.payments.providers.stripe import StripeUnavailable, _key

log = logging.getLogger(__name__)

UNREACHABLE = "The card service could not be reached. Please try again in a minute, or take cash."


@dataclass(frozen=True)
class ReaderState:
    """What the clerk sees: the reader's current action on our payment."""

    reader_id: str
    label: str
    online: bool
    # in_progress | succeeded | failed | "" (idle, or busy with another payment)
    action: str
    payment_intent: str
    failure_message: str


@dataclass(frozen=True)
class Reader:
    id: str
    label: str
    online: bool


def _refused(what: str, exc: stripe.StripeError) -> StripeUnavailable:
    log.warning("stripe terminal request refused", extra={"request": what, "stripe_code": getattr(exc, "code", None), "http_status": exc.http_status})
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (exc.http_status or 0) >= 500:
        return StripeUnavailable(UNREACHABLE)
    # Stripe's message is written for people (a reader offline or busy); never raw bodies.
    message = getattr(exc, "user_message", None) or UNREACHABLE
    return StripeUnavailable(message)


def list_readers() -> list[Reader]:
    """The account's readers (of the configured location, when one is set)."""
    params: dict[str, Any] = {"limit": 20}
    if settings.STRIPE_TERMINAL_LOCATION:
        params["location"] = settings.STRIPE_TERMINAL_LOCATION
    try:
        found = stripe.terminal.Reader.list(api_key=_key(), **params)
    except stripe.StripeError as exc:
        raise _refused("list_readers", exc) from exc
    return [Reader(r.id, str(getattr(r, "label", None) or r.id), getattr(r, "status", "") == "online") for r in found.data]


def create_payment(*, amount_cents: int, description: str, metadata: dict[str, str], idempotency_key: str) -> str:
    """A card_present PaymentIntent for the exact amount; returns its id (pi_…)."""
    try:
        intent = stripe.PaymentIntent.create(
            api_key=_key(),
            idempotency_key=idempotency_key,
            amount=amount_cents,
            currency=settings.CURRENCY.lower(),
            allowed_payment_method_types=["card_present"],
            capture_method="automatic",
            description=description[:500],
            metadata=metadata,
        )
    except stripe.StripeError as exc:
        raise _refused("create_payment", exc) from exc
    return str(intent.id)


def process_on_reader(reader_id: str, payment_intent: str) -> ReaderState:
    """Hand the payment to the reader: it asks the patron for their card."""
    try:
        reader = stripe.terminal.Reader.process_payment_intent(reader_id, api_key=_key(), payment_intent=payment_intent)
    except stripe.StripeError as exc:
        raise _refused("process_payment_intent", exc) from exc
    return _state(reader)


def reader_state(reader_id: str) -> ReaderState:
    try:
        reader = stripe.terminal.Reader.retrieve(reader_id, api_key=_key())
    except stripe.StripeError as exc:
        raise _refused("retrieve_reader", exc) from exc
    return _state(reader)


def retrieve_payment(payment_intent: str) -> dict[str, Any]:
    try:
        return stripe.PaymentIntent.retrieve(payment_intent, api_key=_key()).to_dict()
    except stripe.StripeError as exc:
        raise _refused("retrieve_payment", exc) from exc


def cancel_payment(reader_id: str, payment_intent: str) -> dict[str, Any]:
    """Stop the reader and cancel the PaymentIntent. Returns the PaymentIntent as it ends up:
    `canceled`, or `succeeded` when the card went through before the cancel reached Stripe."""
    try:
        stripe.terminal.Reader.cancel_action(reader_id, api_key=_key())
    except stripe.StripeError:
        pass  # the reader was idle already, or offline: the PaymentIntent decides
    try:
        return stripe.PaymentIntent.cancel(payment_intent, api_key=_key()).to_dict()
    except stripe.InvalidRequestError:
        return retrieve_payment(payment_intent)  # already succeeded (or canceled)
    except stripe.StripeError as exc:
        raise _refused("cancel_payment", exc) from exc


def present_test_card(reader_id: str, card_number: str) -> ReaderState:
    """Stripe's simulated reader (test mode only): present a test card to the reader."""
    if not str(settings.STRIPE_SECRET_KEY).startswith("sk_test_"):
        raise StripeUnavailable("Test cards can only be presented to a simulated reader in test mode.")
    try:
        reader = stripe.terminal.Reader.TestHelpers.present_payment_method(  # type: ignore[call-arg]
            reader_id, api_key=_key(), type="card_present", card_present={"number": card_number}
        )
    except stripe.StripeError as exc:
        raise _refused("present_payment_method", exc) from exc
    return _state(reader)


def test_mode() -> bool:
    return str(settings.STRIPE_SECRET_KEY).startswith("sk_test_")


def _state(found: Any) -> ReaderState:
    reader: dict[str, Any] = found.to_dict()
    action = reader.get("action") or {}
    processed = (action.get("process_payment_intent") or {}) if action else {}
    return ReaderState(
        reader_id=str(reader.get("id") or ""),
        label=str(reader.get("label") or reader.get("id") or ""),
        online=reader.get("status") == "online",
        action=str(action.get("status") or "") if action else "",
        payment_intent=str(processed.get("payment_intent") or ""),
        failure_message=str(action.get("failure_message") or "") if action else "",
    )
