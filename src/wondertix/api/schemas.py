"""Request and response shapes of the public API v1."""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema


class PriceTypeOut(Schema):
    id: int
    name: str
    description: str
    price_cents: int
    fee_cents: int
    pay_what_you_can: bool
    min_price_cents: int
    max_price_cents: int
    limit_per_performance: int | None
    available: int | None = Field(None, description="Seats left for this type (null: no limit of its own)")


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


class PerformanceDetailOut(PerformanceOut):
    price_types: list[PriceTypeOut]


class EventOut(Schema):
    id: int
    slug: str
    title: str
    description: str
    image_url: str
    season: str | None
    performances: list[PerformanceOut]


class LineIn(Schema):
    performance_id: int
    price_type_id: int
    quantity: int = Field(..., description="Tickets of this type (1 to the per-order maximum)")
    unit_price_cents: int | None = Field(
        None, description="Required for pay-what-you-can types; otherwise, if sent, must equal the list price"
    )


class HoldIn(Schema):
    lines: list[LineIn]


class HoldLineOut(Schema):
    performance_id: int
    price_type_id: int
    quantity: int
    unit_price_cents: int


class HoldOut(Schema):
    token: str
    expires_at: datetime
    lines: list[HoldLineOut]


class BuyerIn(Schema):
    first_name: str
    last_name: str
    email: str
    phone: str = ""
    accommodation: str = ""
    newsletter: bool = False


class CardIn(Schema):
    number: str = Field(..., description="Test provider: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined")
    exp_month: int | None = None
    exp_year: int | None = None
    cvc: str = ""


class OrderIn(Schema):
    lines: list[LineIn] = Field(default_factory=list, description="Tickets to buy (or give hold_token)")
    hold_token: str | None = Field(None, description="Buy what a hold holds instead of `lines`")
    buyer: BuyerIn
    card: CardIn | None = None
    donation_cents: int = 0
    donation_anonymous: bool = False
    discount_code: str = ""


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


class ErrorOut(Schema):
    code: str
    message: str
    field: str | None = None
