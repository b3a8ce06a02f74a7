"""Why a sale was refused: a stable code for machines, a message for people."""

from __future__ import annotations

from typing import Any


class SaleError(Exception):
    """A refused request. Raised before anything is written, or inside the transaction that
    is then rolled back, so a refusal never leaves a partial write behind."""

    status = 422

    def __init__(self, code: str, message: str, *, status: int | None = None, field: str = "", **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        if status is not None:
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"SaleError({self.code!r}, {self.message!r})"


def sold_out(message: str = "Sorry, there are not enough seats left for this performance.", **details: Any) -> SaleError:
    return SaleError("sold_out", message, status=409, **details)


def invalid(code: str, message: str, field: str = "", **details: Any) -> SaleError:
    return SaleError(code, message, status=422, field=field, **details)


def not_found(code: str, message: str) -> SaleError:
    return SaleError(code, message, status=404)


def conflict(code: str, message: str, **details: Any) -> SaleError:
    return SaleError(code, message, status=409, **details)


def too_many(code: str, message: str, *, retry_after: int, **details: Any) -> SaleError:
    """429: this client asked for too much; `retry_after` seconds is when it may ask again
    (sent as the Retry-After header by the API)."""
    return SaleError(code, message, status=429, retry_after=retry_after, **details)


def payment_failed(code: str, message: str) -> SaleError:
    return SaleError(code, message, status=402)
