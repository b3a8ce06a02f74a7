"""An in-process simulated card processor for dev, stg and tests.

Card numbers behave like a card network's test cards: 4242 4242 4242 4242 succeeds,
4000 0000 0000 0002 is declined, 4000 0000 0000 9995 has insufficient funds. Any other
number that passes the Luhn check succeeds; one that fails it is refused as invalid.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from django.conf import settings

from wondertix.payments import simulated
from wondertix.payments.providers.base import ChargeResult, PaymentDetails, RefundResult

DECLINED = {
    "4000000000000002": ("card_declined", "Your card was declined. Please use a different card."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds. Please use a different card."),
}


def luhn_ok(number: str) -> bool:
    if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def normalize_card(number: str) -> str:
    return "".join(ch for ch in (number or "") if ch in "0123456789")  # never '²' or '٣'


class TestCardProvider:
    name = "test"
    synchronous = True

    def charge(self, *, amount_cents: int, details: PaymentDetails, description: str, idempotency_key: str) -> ChargeResult:
        if simulated.refused_on_real_data():
            # The last line of defence: whatever let this process serve, a simulated card
            # never pays for a real order.
            return ChargeResult(
                False, code="simulated_payments_refused",
                message="Card payments are not available right now; nothing was charged. Please try again later or call the box office.",
            )
        number = normalize_card(details.card_number)
        if not number:
            return ChargeResult(False, message="Please enter a card number to pay for this order.", code="card_required")
        if not luhn_ok(number):
            return ChargeResult(False, message="That card number is not valid. Please check it and try again.", code="invalid_card")
        if number in DECLINED:
            code, message = DECLINED[number]
            return ChargeResult(False, message=message, code="payment_declined")
        digest = hashlib.sha256(f"{idempotency_key}:{amount_cents}".encode()).hexdigest()[:20]
        return ChargeResult(True, reference=f"test_ch_{digest}")

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        _wait_at_gate(amount_cents)
        digest = hashlib.sha256(f"{idempotency_key}:{reference}:{amount_cents}".encode()).hexdigest()[:20]
        return RefundResult(True, reference=f"test_re_{digest}")


# The longest a gated refund waits: below gunicorn's worker timeout, so a forgotten gate file
# only slows a test down.
GATE_SECONDS = 30.0


def _wait_at_gate(amount_cents: int) -> None:
    """A slow card network on demand, for tests (WONDERTIX_TEST_PROVIDER_GATE, DEBUG only).

    While `<gate>/refund-<amount_cents>` exists a refund of that amount waits inside the
    provider call (after creating `<gate>/refund-<amount_cents>.entered`), until the file is
    removed or GATE_SECONDS pass.
    """
    gate_dir = settings.WONDERTIX_TEST_PROVIDER_GATE if settings.DEBUG else ""
    if not gate_dir:
        return
    gate = Path(gate_dir) / f"refund-{amount_cents}"
    if not gate.exists():
        return
    gate.with_suffix(".entered").touch()
    deadline = time.monotonic() + GATE_SECONDS
    while gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


class CashProvider:
    """Money taken at the box office window: always succeeds, refunds are paid out in cash."""

    name = "cash"
    synchronous = True

    def charge(self, *, amount_cents: int, details: PaymentDetails, description: str, idempotency_key: str) -> ChargeResult:
        return ChargeResult(True, reference=f"cash_{idempotency_key[:24]}")

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        return RefundResult(True, reference=f"cash_re_{idempotency_key[:24]}")
