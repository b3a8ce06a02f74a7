"""Stripe, through the official `stripe` library: Checkout Sessions to pay, Refunds to refund.

Stripe is a redirect-based provider: the patron pays on Stripe's hosted page and the order
becomes paid when Stripe's signed webhook says so (see wondertix.payments.services). So this
provider is not `synchronous`, and `charge` — the in-process card charge of the one-call API
and the box office — is refused.

Every call passes the secret key explicitly (no global `stripe.api_key`) and an idempotency
key derived from our own ids, so a retried request never creates a second session or refund.
Tests serve recorded Stripe responses through `stripe.default_http_client`; there is no
network in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from wondertix.payments.providers.base import (
    ChargeResult,
    PaymentDetails,
    ProviderUnavailable,
    RefundResult,
)

log = logging.getLogger(__name__)


class StripeUnavailable(ProviderUnavailable):
    """Stripe could not be reached or refused the request; the message is safe to show."""


@dataclass(frozen=True)
class HostedCheckout:
    session_id: str
    url: str
    expires_at: datetime


def _key() -> str:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeUnavailable("Online payment is not configured. Please contact the box office.")
    return str(settings.STRIPE_SECRET_KEY)


def _safe(exc: stripe.StripeError) -> str:
    # Stripe's user_message is written for people; never echo raw bodies (they may hold ids).
    return getattr(exc, "user_message", None) or "The payment service refused the request."


class StripeProvider:
    name = "stripe"
    synchronous = False
    # Stripe's smallest charge in USD (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts).
    minimum_charge_cents = 50

    def charge(self, *, amount_cents: int, details: PaymentDetails, description: str, idempotency_key: str) -> ChargeResult:
        return ChargeResult(
            False,
            code="payment_method_unsupported",
            message="Card payments are taken on Stripe's secure checkout page; please check out on the storefront.",
        )

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        """Refund `amount_cents` of a payment. `reference` is the PaymentIntent id (pi_…) we
        stored when the payment succeeded (a Charge id, ch_…, works too)."""
        if amount_cents <= 0:
            return RefundResult(False, message="A refund must be a positive amount.")
        target = {"charge": reference} if reference.startswith("ch_") else {"payment_intent": reference}
        try:
            refund = stripe.Refund.create(
                api_key=_key(),
                amount=amount_cents,
                idempotency_key=idempotency_key,
                metadata={"wondertix_refund": idempotency_key[:200]},
                **target,  # type: ignore[arg-type]
            )
        except StripeUnavailable as exc:
            return RefundResult(False, message=str(exc))
        except stripe.StripeError as exc:
            if getattr(exc, "code", None) == "charge_already_refunded":
                # Our earlier attempt went through (its idempotency key had expired): done.
                return RefundResult(True, reference="", message="Stripe had already refunded this payment.")
            log.warning("stripe refund refused", extra={"stripe_code": getattr(exc, "code", None), "http_status": exc.http_status})
            # No answer, too many requests, or Stripe's own error: the outcome is not known.
            unknown = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (exc.http_status or 0) >= 500
            return RefundResult(False, message=_safe(exc), unknown=unknown)
        if refund.status in ("succeeded", "pending"):
            # Card refunds may stay "pending" for a while; Stripe completes them on its side.
            return RefundResult(True, reference=refund.id)
        return RefundResult(False, reference=refund.id, message=f"Stripe could not refund this payment (status {refund.status}).")

    def create_checkout(
        self,
        *,
        order_token: str,
        order_reference: str,
        amount_cents: int,
        description: str,
        buyer_email: str,
        success_url: str,
        cancel_url: str,
        expires_at: datetime,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> HostedCheckout:
        """A Stripe Checkout Session for one pending order, for its exact total.

        One line for the whole order: the breakdown (tickets, fees, discount, donation) was shown
        on our checkout page, and a single amount guarantees Stripe charges exactly our total.
        """
        # `metadata` adds what the payment is for when it is not the order itself (an
        # exchange's price difference): the webhook routes on it.
        metadata = {"order_token": order_token, "order_reference": order_reference} | (metadata or {})
        prefill = {"customer_email": buyer_email} if buyer_email else {}
        try:
            session = stripe.checkout.Session.create(
                api_key=_key(),
                idempotency_key=idempotency_key,
                mode="payment",
                client_reference_id=order_token,
                line_items=[
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": settings.CURRENCY.lower(),
                            "unit_amount": amount_cents,
                            "product_data": {"name": f"{settings.THEATER_NAME} — order {order_reference}", "description": description[:500]},
                        },
                    }
                ],
                # Cards only: they confirm at once; delayed methods would hold seats for days.
                allowed_payment_method_types=["card"],
                metadata=metadata,
                payment_intent_data={"metadata": metadata, "description": f"Order {order_reference}"},
                success_url=success_url,
                cancel_url=cancel_url,
                expires_at=int(expires_at.timestamp()),
                **prefill,  # type: ignore[arg-type]
            )
        except stripe.StripeError as exc:
            log.warning("stripe checkout session refused", extra={"stripe_code": getattr(exc, "code", None), "http_status": exc.http_status})
            raise StripeUnavailable(
                "The payment service could not be reached. Your seats are still held; please try again in a minute."
            ) from exc
        return HostedCheckout(
            session_id=session.id,
            url=session.url or "",
            expires_at=datetime.fromtimestamp(session.expires_at, tz=UTC),
        )

    def expire_checkout(self, session_id: str) -> str:
        """End an open session so it can no longer be paid. Returns the session's status
        afterwards: "expired", or "complete" when the patron paid before we could end it."""
        try:
            session = stripe.checkout.Session.expire(session_id, api_key=_key())
        except stripe.InvalidRequestError:
            # Only open sessions can be expired: look at what it is instead.
            session = self.retrieve_checkout(session_id)
        except stripe.StripeError as exc:
            raise StripeUnavailable("The payment service could not be reached. Please try again in a minute.") from exc
        return str(session.status)

    def retrieve_checkout(self, session_id: str) -> Any:
        try:
            return stripe.checkout.Session.retrieve(session_id, api_key=_key())
        except stripe.StripeError as exc:
            raise StripeUnavailable("The payment service could not be reached. Please try again in a minute.") from exc
