"""Every patron email rendered with sample data, for staff to read before patrons do.

The samples are objects that are never saved (and plain values), rendered by the same
templates and subject lines as the real emails: a preview reads and writes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.utils import timezone

from wondertix.catalog.models import Event, Performance, PriceType
from wondertix.money import format_cents
from wondertix.sales import change_emails
from wondertix.sales.change_emails import Email, when
from wondertix.sales.models import Order, Ticket

# The sample order's link: a made-up path, never an order's real token.
SAMPLE_LINK = "sample-order"


def _order() -> Order:
    return Order(pk=1234, token=SAMPLE_LINK, status=Order.PAID, buyer_name="Ada Lovelace", buyer_email="ada@example.org",
                 subtotal_cents=5000, fees_cents=400, donation_cents=2500, total_cents=7900, paid_at=timezone.now(),
                 created_at=timezone.now())


def _performance(days: int = 14) -> Performance:
    event = Event(title="The Tempest", slug="the-tempest")
    starts = timezone.localtime(timezone.now() + timedelta(days=days)).replace(hour=19, minute=30, second=0, microsecond=0)
    return Performance(event=event, starts_at=starts, capacity=100)


def _common() -> dict[str, Any]:
    return change_emails._common(_order(), sample=True)


def order_confirmation() -> Email:
    order, perf = _order(), _performance()
    adult = PriceType(name="Adult", price_cents=2500)
    tickets = [Ticket(order=order, performance=perf, price_type=adult, code=code, price_cents=2500, fee_cents=200)
               for code in ("SAMPLE2345ABCDEF", "SAMPLE6789GHJKLM")]
    gift = SimpleNamespace(amount_cents=2500, anonymous=False)
    context = _common() | {
        "order": order, "tickets": tickets, "groups": [{"performance": perf, "tickets": tickets}], "gifts": [gift],
        "money": {name: format_cents(getattr(order, f"{name}_cents")) for name in ("subtotal", "fees", "discount", "donation", "total")},
        "receipt": change_emails.receipt(order, [gift]),
    }
    return Email("order_confirmation", change_emails._subject(f"Your tickets — {settings.THEATER_NAME} order {order.reference}", context), context)


def donation_receipt() -> Email:
    context = _common() | {"receipt": change_emails.receipt(_order(), [SimpleNamespace(amount_cents=2500, anonymous=True)])}
    return Email("donation_receipt", change_emails._subject(f"Thank you for your gift — {settings.THEATER_NAME} receipt WT-001234", context), context)


def subscription_sale() -> Email:
    today = timezone.localdate()
    season = f"{today:%B} {today.day}, {today.year} – {date(today.year + 1, 6, 30):%B %-d, %Y}"
    context = _common() | {"subscriptions": [{"name": "Flex pass", "season": f"{today.year}–{today.year + 1} season", "dates": season,
                                               "tickets": 4, "price": "$120.00"}], "total": "$120.00"}
    return Email("subscription_sale", change_emails._subject(f"Your Flex pass — {settings.THEATER_NAME} order WT-001234", context), context)


def _lines(perf: Performance) -> list[str]:
    return [f"{perf.event.title}, {when(perf.starts_at)} — Adult, ticket SAMPLE2345ABCDEF: $25.00 + $2.00 fee",
            f"{perf.event.title}, {when(perf.starts_at)} — Adult, ticket SAMPLE6789GHJKLM: $25.00 + $2.00 fee"]


CARD = "It goes back to the card you paid with; your bank may take 5–10 business days to show it."


def refund() -> Email:
    context = _common() | {"amount": "$54.00", "how": CARD, "lines": _lines(_performance())}
    return Email("refund", change_emails._subject(f"Your refund of $54.00 — {settings.THEATER_NAME} order WT-001234", context), context)


def performance_canceled() -> Email:
    perf = _performance()
    context = _common() | {"show": perf.event.title, "when": when(perf.starts_at), "amount": "$54.00", "how": CARD, "lines": _lines(perf)}
    return Email("performance_canceled", change_emails._subject(f"Canceled: {perf.event.title}, {when(perf.starts_at)} — your refund", context), context)


def exchange() -> Email:
    old, new = _performance(14), _performance(21)
    moved = [{"old": f"{old.event.title}, {when(old.starts_at)} — Adult (SAMPLE2345ABCDEF)",
              "new": f"{new.event.title}, {when(new.starts_at)} — Adult", "code": "SAMPLENEW2345ABC"}]
    context = _common() | {"show": new.event.title, "when": when(new.starts_at), "moved": moved, "money": "You paid the difference of $5.00."}
    return Email("exchange", change_emails._subject(f"Your new tickets: {new.event.title}, {when(new.starts_at)} — order WT-001234", context), context)


def patron_sign_in() -> Email:
    from wondertix.storefront.account import sign_in_email

    link = f"{settings.SITE_URL.rstrip('/')}/account/sign-in/{SAMPLE_LINK}/"
    expires = timezone.now() + timedelta(minutes=settings.PATRON_SIGN_IN_LINK_MINUTES)
    return sign_in_email(first_name="Ada", link=link, expires_at=expires, sample=True)


# name → (what staff see it called, the sample)
PREVIEWS = {
    "order_confirmation": ("Order confirmation (tickets, with the receipt of a gift)", order_confirmation),
    "donation_receipt": ("Donation receipt (a gift alone)", donation_receipt),
    "subscription_sale": ("Subscription sale", subscription_sale),
    "refund": ("Refund", refund),
    "exchange": ("Exchange", exchange),
    "performance_canceled": ("Performance canceled (with its refund)", performance_canceled),
    "patron_sign_in": ("Patron sign-in link", patron_sign_in),
}
