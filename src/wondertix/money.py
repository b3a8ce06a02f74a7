"""Money is integer cents. These helpers format and parse it without ever touching float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_cents(cents: int, currency_symbol: str = "$") -> str:
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{currency_symbol}{dollars:,}.{rest:02d}"


def parse_amount(text: str) -> int:
    """'12', '12.5', '$12.50' -> 1250 cents. Raises ValueError with a readable message."""
    cleaned = (text or "").strip().replace("$", "").replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"“{text}” is not an amount of money.") from None
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("Amounts have at most two decimal places.")
    if value < 0:
        raise ValueError("Amounts cannot be negative.")
    return int(value * 100)
