"""Prices, discounts and order totals, in integer cents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from wondertix.catalog.models import PriceType
from wondertix.sales import errors
from wondertix.sales.models import DiscountCode


@dataclass
class PricedTicket:
    performance_id: int
    price_type: PriceType
    price_cents: int
    fee_cents: int
    discount_cents: int = 0


@dataclass
class Totals:
    subtotal_cents: int = 0
    fees_cents: int = 0
    discount_cents: int = 0
    donation_cents: int = 0
    tickets: list[PricedTicket] = field(default_factory=list)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.fees_cents + self.donation_cents - self.discount_cents


def unit_price(price_type: PriceType, offered_cents: int | None) -> int:
    """The price of one ticket. For pay-what-you-can the patron's amount, within the limits;
    otherwise the list price — an offered price that differs is refused, never trusted."""
    if price_type.pay_what_you_can:
        if offered_cents is None:
            raise errors.invalid("invalid_price", f"Please enter what you would like to pay for “{price_type.name}”.", field="unit_price_cents")
        if not price_type.min_price_cents <= offered_cents <= price_type.max_price_cents:
            from wondertix.money import format_cents

            raise errors.invalid(
                "invalid_price",
                f"“{price_type.name}” can be paid from {format_cents(price_type.min_price_cents)} to {format_cents(price_type.max_price_cents)}.",
                field="unit_price_cents",
            )
        return offered_cents
    if offered_cents is not None and offered_cents != price_type.price_cents:
        raise errors.invalid(
            "price_mismatch",
            f"The price of “{price_type.name}” is not what was sent; reload the page to see the current price.",
            field="unit_price_cents",
        )
    return price_type.price_cents


def find_discount(code: str) -> DiscountCode:
    found = DiscountCode.objects.filter(code=code.strip().upper()).first()
    if found is None:
        raise errors.invalid("discount_unknown", f"The discount code “{code.strip()}” does not exist.", field="discount_code")
    return found


def apply_discount(discount: DiscountCode, totals: Totals, now: datetime) -> None:
    """Validate the code against this order and write each ticket's share of the discount."""
    if not discount.active or (discount.valid_from and now < discount.valid_from):
        raise errors.invalid("discount_not_active", f"The discount code “{discount.code}” is not active.", field="discount_code")
    if discount.valid_until and now >= discount.valid_until:
        raise errors.invalid("discount_expired", f"The discount code “{discount.code}” has expired.", field="discount_code")
    if discount.usage_limit is not None and discount.times_used >= discount.usage_limit:
        raise errors.conflict("discount_exhausted", f"The discount code “{discount.code}” has been used up.")
    allowed = {pt.pk for pt in discount.price_types.all()}
    eligible = [t for t in totals.tickets if not allowed or t.price_type.pk in allowed]
    if len(eligible) < max(1, discount.min_tickets):
        raise errors.invalid(
            "discount_minimum_not_met",
            f"The discount code “{discount.code}” needs at least {max(1, discount.min_tickets)} eligible ticket"
            f"{'s' if discount.min_tickets != 1 else ''} in the order.",
            field="discount_code",
        )
    for t in eligible:
        if discount.kind == DiscountCode.PERCENT:
            t.discount_cents = (t.price_cents * discount.value + 50) // 100
        else:
            t.discount_cents = min(discount.value, t.price_cents)
    totals.discount_cents = sum(t.discount_cents for t in totals.tickets)


def validate_quantity(quantity: object) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise errors.invalid("invalid_quantity", "Quantity must be a whole number.", field="quantity")
    if quantity <= 0:
        raise errors.invalid("invalid_quantity", "Choose at least one ticket.", field="quantity")
    if quantity > settings.MAX_TICKETS_PER_ORDER:
        raise errors.invalid(
            "invalid_quantity",
            f"You can buy at most {settings.MAX_TICKETS_PER_ORDER} tickets in one order.",
            field="quantity",
        )
    return quantity


MAX_DONATION_CENTS = 10_000_000


def validate_donation(cents: object) -> int:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise errors.invalid("invalid_donation", "A donation must be a positive amount.", field="donation_cents")
    if cents > MAX_DONATION_CENTS:
        raise errors.invalid("invalid_donation", "For gifts this large, please contact the box office.", field="donation_cents")
    return cents
