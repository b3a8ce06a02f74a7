"""Money is integer cents; counts and ids are whole numbers. One strict parser for each.

Every form field, view and API schema that reads an amount or a number from a person goes
through `parse_amount` / `parse_int`. They accept only ASCII digits in the plain forms a
person types ("25", "25.50", "$1,250.00"; "3") and refuse, with a message a person can act on,
everything else: exponent notation (`9e999997` would make `Decimal` work for tens of seconds),
NaN and Infinity, unicode digits ("²" passes `str.isdigit()` and breaks `int()`; Arabic-Indic
digits pass `int()`), signs, absurd lengths, and values above a documented cap. They look at
a bounded number of characters with one regular expression without backtracking, so any input
is answered in microseconds. Nothing here touches float or Decimal.
"""

from __future__ import annotations

import re

#: The largest amount a person may type anywhere (a price, a donation, a refund): $1,000,000.00.
MAX_AMOUNT_CENTS = 100_000_000
#: The largest whole number a form accepts: the top of a PostgreSQL `integer` column.
MAX_INT = 2**31 - 1
#: Database ids are 64-bit; a larger number is a wrong id, not a server error.
MAX_ID = 2**63 - 1

# Longer than any amount below the cap, even written "$1,000,000.00" with spaces around.
_MAX_AMOUNT_TEXT = 20
_MAX_INT_TEXT = 20
_AMOUNT = re.compile(r"\$?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)?(?:\.(?P<frac>\d*))?", re.ASCII)
_EXPONENT = re.compile(r"\$?[\d.,]*[eE][+-]?\d*", re.ASCII)
_INT = re.compile(r"(?P<sign>-)?(?P<digits>\d+)", re.ASCII)


def format_cents(cents: int, currency_symbol: str = "$") -> str:
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(int(cents)), 100)
    return f"{sign}{currency_symbol}{dollars:,}.{rest:02d}"


def _shown(text: str) -> str:
    """The text as typed, shortened so an error message never repeats a huge input."""
    text = text.strip()
    return text if len(text) <= 20 else text[:17] + "…"


def parse_amount(text: str | None, *, max_cents: int = MAX_AMOUNT_CENTS) -> int:
    """'12', '12.5', '$12.50', '1,250' -> cents. Raises ValueError with a readable message."""
    raw = text if isinstance(text, str) else ""
    cleaned = raw.strip()
    if not cleaned:
        raise ValueError("Enter an amount, like 25 or 25.50.")
    if len(cleaned) > _MAX_AMOUNT_TEXT:
        raise ValueError(f"“{_shown(raw)}” is too long to be an amount of money.")
    match = _AMOUNT.fullmatch(cleaned)
    if match is None or not (match["whole"] or match["frac"]):
        if cleaned.lstrip("$").startswith("-"):
            raise ValueError("Amounts cannot be negative.")
        if _EXPONENT.fullmatch(cleaned):
            raise ValueError(f"“{_shown(raw)}” is not an amount of money; write it in plain digits, like 25.50.")
        raise ValueError(f"“{_shown(raw)}” is not an amount of money; write it like 25 or 25.50.")
    frac = match["frac"] or ""
    if len(frac) > 2:
        raise ValueError("Amounts have at most two decimal places.")
    cents = int((match["whole"] or "0").replace(",", "")) * 100 + int(frac.ljust(2, "0"))
    if cents > max_cents:
        raise ValueError(f"Amounts above {format_cents(max_cents)} are not accepted.")
    return cents


def parse_int(text: str | None, *, minimum: int = 0, maximum: int = MAX_INT, what: str = "a whole number") -> int:
    """'3' -> 3: ASCII digits only, a '-' only where `minimum` allows negatives, within bounds."""
    raw = text if isinstance(text, str) else ""
    cleaned = raw.strip()
    if not cleaned:
        raise ValueError(f"Enter {what}.")
    match = _INT.fullmatch(cleaned) if len(cleaned) <= _MAX_INT_TEXT else None
    if match is None:
        raise ValueError(f"“{_shown(raw)}” is not {what}; use the digits 0–9 only.")
    if match["sign"] and minimum >= 0:
        raise ValueError(f"“{_shown(raw)}” cannot be negative.")
    value = int(cleaned)
    if value < minimum:
        raise ValueError(f"Enter at least {minimum}.")
    if value > maximum:
        raise ValueError(f"Enter at most {maximum:,}.")
    return value


def parse_count(text: str | None, *, maximum: int = MAX_INT, what: str = "a number of tickets") -> int:
    """A quantity: empty means none (0); otherwise `parse_int` from 0 to `maximum`."""
    if not (text or "").strip():
        return 0
    return parse_int(text, minimum=0, maximum=maximum, what=what)


def parse_id(text: str | None) -> int | None:
    """A database id from a form or query string, or None when it cannot be one."""
    try:
        return parse_int(text, minimum=1, maximum=MAX_ID)
    except ValueError:
        return None
