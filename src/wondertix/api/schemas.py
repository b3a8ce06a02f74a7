"""Request and response shapes of the public API v1."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from ninja import Field, Schema

from wondertix.money import MAX_AMOUNT_CENTS, MAX_ID, MAX_INT

# Every number a client sends is a strict JSON integer (no float, no string, no bool) within
# bounds that fit the database: a huge number or 1.5 is a 422 with a message, never a 500.
# Ranges a person cares about (1 to 20 tickets…) are checked by the services, with their words.
# No NUL characters (PostgreSQL cannot store them) and a sane upper bound on every string.
TEXT = r"^[^\x00]*$"
TOKEN = r"^[A-Za-z0-9_-]{1,64}$"  # noqa: S105 (a pattern, not a secret)
CARD_NUMBER = r"^[0-9 -]*$"  # ASCII digits only: "²" is a digit to str.isdigit() but not to int()


def _id(description: str) -> Any:
    return Field(..., ge=1, le=MAX_ID, strict=True, description=description)


def cents(default: Any, description: str, *, ge: int = 0) -> Any:
    """An amount of money in integer cents, at most MAX_AMOUNT_CENTS ($1,000,000.00)."""
    return Field(default, ge=ge, le=MAX_AMOUNT_CENTS, strict=True, description=description)


def count(default: Any, description: str) -> Any:
    """A whole number that fits an `integer` column; its sensible range is the service's to say."""
    return Field(default, ge=-MAX_INT, le=MAX_INT, strict=True, description=description)


class PriceTypeOut(Schema):
    id: int
    name: str
    description: str
    price_cents: int = Field(..., description="The price at this performance (its own price where staff set one)")
    fee_cents: int = Field(..., description="The online fee per ticket at this performance")
    pay_what_you_can: bool
    min_price_cents: int
    max_price_cents: int
    limit_per_performance: int | None = Field(..., description="Most tickets of this type for this performance (null: no limit)")
    performance_price: bool = Field(False, description="True when this performance overrides the type's price, fee or limit")
    available: int | None = Field(None, description="Seats left for this type (null: no limit of its own)")


class AccessTagOut(Schema):
    code: str = Field(..., description="asl, captioned, audio_described or relaxed (more may be added)")
    label: str


class PerformanceOut(Schema):
    id: int
    event_id: int
    event_title: str
    starts_at: datetime
    on_sale_from: datetime | None
    on_sale_until: datetime | None
    status: str = Field(..., description="on_sale, sold_out, not_on_sale_yet, sales_closed or canceled")
    capacity: int
    available: int
    access: list[AccessTagOut] = Field([], description="Accessibility of this performance (ASL-interpreted, captioned…)")


class PerformanceDetailOut(PerformanceOut):
    price_types: list[PriceTypeOut]


class EventOut(Schema):
    id: int
    slug: str
    title: str
    description: str
    image_url: str
    image_alt: str = Field("", description="Text alternative of the image (for screen readers)")
    season: str | None
    performances: list[PerformanceOut]


class LineIn(Schema):
    performance_id: int = _id("A performance id (GET /performances)")
    price_type_id: int = _id("One of the performance's price types (GET /performances/{id})")
    quantity: int = count(..., "Tickets of this type (1 to the per-order maximum)")
    unit_price_cents: int | None = cents(
        None,
        "Required for pay-what-you-can types; otherwise, if sent, must equal the list price "
        "(a different price is refused with `price_mismatch`)",
    )
    seat_ids: list[Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]] = Field(
        default_factory=list, max_length=20,
        description="Reserved seating: the seats, one per ticket (`quantity` = their number; "
        "GET /performances/{id}/seats). Empty for general admission and standing areas.",
    )


class HoldIn(Schema):
    lines: list[LineIn] = Field(..., max_length=50)

    model_config = {
        # Valid against the demo data (`wondertix seed_demo`): Adult seats of the second
        # show's first performance. tests/unit/test_api_documents.py sends every example.
        "json_schema_extra": {"examples": [{"lines": [{"performance_id": 5, "price_type_id": 6, "quantity": 2}]}]}
    }


class HoldLineOut(Schema):
    performance_id: int
    price_type_id: int
    quantity: int
    unit_price_cents: int
    seat_ids: list[int] = Field(default_factory=list, description="The seats held (reserved seating)")


class HoldOut(Schema):
    token: str
    status: str = Field(..., description="active, expired, released or checked_out")
    expires_at: datetime
    lines: list[HoldLineOut]


class BuyerIn(Schema):
    first_name: str = Field(..., max_length=200, pattern=TEXT)
    last_name: str = Field(..., max_length=200, pattern=TEXT)
    email: str = Field(..., max_length=254, pattern=TEXT)
    phone: str = Field("", max_length=100, pattern=TEXT)
    accommodation: str = Field("", max_length=1000, pattern=TEXT, description="Seating accommodation (wheelchair space, aisle seat…)")
    newsletter: bool = False


class CardIn(Schema):
    number: str = Field(
        ..., max_length=40, pattern=CARD_NUMBER,
        description="Test provider: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined",
    )
    exp_month: int | None = Field(None, ge=1, le=12, strict=True)
    exp_year: int | None = Field(None, ge=2000, le=2200, strict=True)
    cvc: str = Field("", max_length=8, pattern=r"^[0-9]*$")


class OrderIn(Schema):
    lines: list[LineIn] = Field(default_factory=list, max_length=50, description="Tickets to buy (or give hold_token)")
    hold_token: str | None = Field(None, pattern=TOKEN, description="Buy what a hold holds instead of `lines`")
    buyer: BuyerIn
    card: CardIn | None = Field(None, description="Required unless the order is free")
    donation_cents: int = cents(0, "An optional gift added to the order", ge=-MAX_AMOUNT_CENTS)
    donation_anonymous: bool = False
    discount_code: str = Field("", max_length=100, pattern=TEXT)

    model_config = {
        "json_schema_extra": {
            "examples": [
                # Valid against the demo data, like HoldIn's (a hold's token cannot be: buy
                # a hold by sending its `hold_token` instead of `lines`).
                {
                    "lines": [{"performance_id": 5, "price_type_id": 6, "quantity": 2}],
                    "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
                    "card": {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                    "donation_cents": 1000,
                    "discount_code": "WELCOME10",
                },
            ]
        }
    }


class TicketSeatOut(Schema):
    id: int
    section: str
    row: str
    label: str


class TicketOut(Schema):
    code: str
    performance_id: int
    event_title: str
    starts_at: datetime
    price_type: str
    price_cents: int
    fee_cents: int
    discount_cents: int
    status: str
    checked_in_at: datetime | None
    qr_url: str
    seat: TicketSeatOut | None = Field(None, description="Reserved seating: section, row and seat (null: general admission)")


class OrderOut(Schema):
    token: str
    reference: str
    status: str
    buyer_name: str
    buyer_email: str
    subtotal_cents: int
    fees_cents: int
    discount_cents: int
    donation_cents: int
    total_cents: int
    refunded_cents: int
    created_at: datetime
    tickets: list[TicketOut]
    url: str
    payment_url: str | None = Field(None, description="Stripe Checkout: the page where the patron pays a `pending` order")


class ErrorOut(Schema):
    code: str = Field(..., description="Stable, for programs (see docs/api.md for the list)")
    message: str = Field(..., description="For people: what went wrong and what to do")
    field: str | None = Field(None, description="The input at fault, when there is one")
    details: dict[str, Any] | None = Field(None, description="e.g. `available` seats for `sold_out`")
    errors: list[dict[str, Any]] | None = Field(None, description="Schema errors (`invalid_request` only)")


def answers(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The error answers an operation gives, all with `ErrorOut` (documented on each operation).

    400: the body is not a JSON object; 401: no valid staff token; 402: payment refused;
    404: unknown id or token; 409: a conflict with the current state; 422: input refused;
    429: too many requests from this client; 503: too busy or database unavailable (retry).
    """
    return {status: ErrorOut for status in statuses}
