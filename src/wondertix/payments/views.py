"""Provider webhooks. Thin: verify the signature, hand the event to payments.services."""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from wondertix.payments import services

log = logging.getLogger(__name__)


def _refuse(code: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@csrf_exempt  # Stripe cannot send a CSRF token; the signature authenticates the request.
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        log.error("stripe webhook received but STRIPE_WEBHOOK_SECRET is not set")
        return _refuse("webhook_not_configured", "This endpoint has no webhook secret configured.", status=503)
    try:
        payload = request.body.decode("utf-8")
        event = stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature"), secret)
    except stripe.SignatureVerificationError:
        log.warning("stripe webhook with a bad signature refused")
        return _refuse("invalid_signature", "The Stripe-Signature header does not match this payload.")
    except ValueError:  # not UTF-8 or not JSON
        return _refuse("invalid_payload", "The payload is not a JSON Stripe event.")
    try:
        outcome = services.handle_stripe_event(event.to_dict())
    except services.RefundFailed as exc:
        # Not processed: Stripe redelivers, and the refund is retried with the same key.
        log.error("automatic refund failed; the event will be redelivered", extra={"error": str(exc)})
        return _refuse("refund_failed", "The automatic refund failed; please redeliver.", status=500)
    return JsonResponse({"received": True, "outcome": outcome})
