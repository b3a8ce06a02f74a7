"""Taking money at the box-office window: cash, or a card through the environment's provider."""

from __future__ import annotations

from django.conf import settings

from wondertix.payments.providers.base import ChargeResult, PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors

METHODS = ("cash", "card")


def charge_at_window(
    *, amount_cents: int, method: str, card: PaymentDetails | None, description: str, idempotency_key: str
) -> tuple[str, ChargeResult]:
    """Charge `amount_cents`; returns (provider name, result). Raises a SaleError (nothing
    charged) when a card cannot be taken here or was declined."""
    if method == "cash":
        provider = get_provider("cash")
        details = PaymentDetails()
    else:
        provider = get_provider(settings.PAYMENT_PROVIDER)
        if not provider.synchronous:
            # Cards are taken on a reader (payments.terminal); every window page routes there.
            raise errors.invalid("card_on_reader", "Card payments here are taken on the card reader.", field="method")
        if card is None or not card.card_number:
            raise errors.invalid("card_required", "Enter the card number.", field="card_number")
        details = card
    result = provider.charge(
        amount_cents=amount_cents, details=details, description=description, idempotency_key=idempotency_key
    )
    if not result.ok:
        raise errors.payment_failed(result.code or "payment_declined", result.message)
    return provider.name, result
