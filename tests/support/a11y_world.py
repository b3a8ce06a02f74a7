"""The world the accessibility audits (tests/e2e/test_accessibility*.py) run in: demo data with
one of everything a page can show, the URL conf walked for the pages to visit, a browser
context signed in as a role."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver
from tests.support.axe import SIZES, png_size

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}


def walk_urls(patterns: list, prefix: str = "", ns: str = "") -> Iterator[tuple[str, str]]:
    """(route, namespace:name) of every URL pattern, e.g. ("staff/events/<int:event_id>/", "boxoffice:event")."""
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}{p.namespace}:" if p.namespace else ns
            yield from walk_urls(p.url_patterns, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), f"{ns}{p.name}"


def fill(route: str, values: dict[str, object]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise AssertionError(f"no value for <{match.group(1)}> in /{route}: add one to the test's demo data")
        return str(values[match.group(1)])

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", sub, route)


def demo_world() -> dict[str, object]:
    """Demo data (seed_demo) plus one of everything a staff page can show: an online order, a
    staff hold, a season price, a subscription sold, a reader payment, a reserved performance."""
    from tests.unit.seating_fixtures import make_reserved

    from wondertix.catalog.models import Performance, SeasonPrice
    from wondertix.patrons.models import SubscriptionType
    from wondertix.patrons.subscriptions import sell_subscription
    from wondertix.payments.models import TerminalPayment
    from wondertix.payments.providers.base import PaymentDetails
    from wondertix.reports.tables import REPORTS
    from wondertix.sales.email_previews import PREVIEWS
    from wondertix.sales.models import DiscountCode
    from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold, sell

    call_command("seed_demo", verbosity=0)
    for role in ("admin", "box_office", "usher"):
        user = User.objects.create_user(f"axe-{role}", first_name="Alex", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
    admin = User.objects.get(username="axe-admin")
    perf = Performance.objects.filter(event__slug="the-tempest").order_by("starts_at").last()
    adult = perf.event.price_types.get(name="Adult")
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org", phone="555-010-2000")
    order = sell([LineRequest(perf.pk, adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=PaymentDetails(**CARD)))
    season = perf.event.season
    season_price = SeasonPrice.objects.create(season=season, name="Adult", price_cents=3000)
    sub_type = SubscriptionType.objects.create(season=season, name="Flex pass", description="Any three shows", price_cents=9000, tickets_included=3)
    sub = sell_subscription(sub_type.pk, buyer, payment=PaymentDetails(**CARD))
    hold = create_hold([LineRequest(perf.pk, adult.pk, 1)], actor=admin, reason="house", staff=True)
    reserved = make_reserved()
    payment = TerminalPayment.objects.create(order=order, reader_id="tmr_x", amount_cents=100, status=TerminalPayment.CANCELED)
    return {
        "perf": perf, "order": order, "sub": sub, "reserved": reserved.perf,
        "values": {
            "event_id": perf.event_id, "performance_id": perf.pk, "price_type_id": adult.pk, "season_id": season.pk,
            "price_id": season_price.pk, "discount_id": DiscountCode.objects.get(code="WELCOME10").pk,
            "hold_id": hold.pk, "order_id": order.pk, "payment_id": payment.pk, "patron_id": order.patron_id,
            "type_id": sub_type.pk, "subscription_id": sub.pk, "chart_id": reserved.perf.seating_chart_id,
            "slug": next(iter(REPORTS)), "name": next(iter(PREVIEWS)),
        },
    }


def is_page(response) -> bool:  # noqa: ANN001
    return response.status_code == 200 and response["Content-Type"].startswith("text/html")


def sign_in(context, base: str, username: str) -> None:  # noqa: ANN001
    """The browser signed in as `username` (a session made here: no password to hash)."""
    client = Client()
    client.force_login(User.objects.get(username=username))
    context.clear_cookies()
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": base}])


def check_screenshots(paths: list) -> None:
    sizes = [(v["width"], v["height"]) for v in SIZES.values()]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, f"{path} was not saved"
        assert png_size(path) in sizes, f"{path} is {png_size(path)}, not one of {sizes}"
