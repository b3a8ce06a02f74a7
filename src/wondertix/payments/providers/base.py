"""The one interface every payment provider implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PaymentDetails:
    """What the patron gave us to pay with. Card data never reaches a log or the database."""

    card_number: str = ""
    exp_month: int | None = None
    exp_year: int | None = None
    cvc: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # keep card numbers out of tracebacks and logs
        return f"PaymentDetails(card=…{self.card_number[-4:] if self.card_number else ''})"


@dataclass(frozen=True)
class ChargeResult:
    ok: bool
    reference: str = ""
    # Human message for the patron when not ok, and a stable code.
    message: str = ""
    code: str = ""


class ProviderUnavailable(Exception):
    """The provider could not be reached or refused the request. The message is safe to show."""


@dataclass(frozen=True)
class RefundResult:
    ok: bool
    reference: str = ""
    message: str = ""
    # Not ok, but no definite answer either (a timeout, a provider outage): the refund may
    # have gone through. Ask again with the same idempotency key; never treat it as refused.
    unknown: bool = False


class PaymentProvider(Protocol):
    name: str
    # Providers that charge synchronously inside checkout (test, cash, comp). Redirect-based
    # providers (stripe) leave the order pending until their confirmation arrives.
    synchronous: bool

    def charge(self, *, amount_cents: int, details: PaymentDetails, description: str, idempotency_key: str) -> ChargeResult: ...

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> RefundResult: ...
