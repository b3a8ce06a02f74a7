"""Every storefront and staff page, on demo data, is clean under axe-core's WCAG 2.0/2.1 A and
AA rules; the main pages are saved as screenshots at phone and desktop size
(var/screenshots/<page>-<phone|desktop>.png).

Staff pages are found by walking the URL resolver (as the authorization matrix does), so a
staff page added later is audited without a change here; a staff URL that does not answer a
signed-in admin's GET with an HTML page must be declared in NOT_PAGES, and a storefront URL
name must be in STOREFRONT_AUDITED or STOREFRONT_NOT_PAGES, or the test fails."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from tests.support.axe import SIZES, add_axe, audit, png_size, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-staff-passphrase-9"
CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}

# Staff URLs (namespace:name) that are not pages: POST targets of the pages' forms and downloads.
NOT_PAGES = frozenset({
    "boxoffice:logout", "boxoffice:event-active", "boxoffice:event-season", "boxoffice:price-type-active",
    "boxoffice:season-active", "boxoffice:season-add-event", "boxoffice:discount-active",
    "boxoffice:seating-chart-export", "boxoffice:pos-hold", "boxoffice:pos-release", "boxoffice:pos-card-action",
    "boxoffice:door-csv", "boxoffice:door-checkin", "boxoffice:door-undo", "boxoffice:door-admit",
    # An email's HTML body: audited inside its preview page's frame, not a page of its own.
    "boxoffice:email-preview-html",
    "reports:report-csv", "staff-sales:order-tickets-print", "staff-sales:order-resend-confirmation",
    "staff-sales:order-refund", "staff-sales:order-exchange", "contacts:note", "contacts:subscription-redeem",
})
STOREFRONT_AUDITED = frozenset({
    "storefront:events", "storefront:event", "storefront:performance", "storefront:cart", "storefront:checkout",
    "storefront:order", "storefront:find_tickets", "storefront:donate", "subscriptions:list", "subscriptions:thanks",
})
STOREFRONT_NOT_PAGES = frozenset({
    "storefront:cart_empty", "storefront:cart_hold_again", "storefront:order_tickets_pdf",
    "storefront:order_calendar", "storefront:ticket_qr", "stripe_webhook",
    "healthz", "readyz", "metrics", "raise-error",
})


def _walk(patterns: list, prefix: str = "", ns: str = ""):  # noqa: ANN202
    for p in patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}{p.namespace}:" if p.namespace else ns
            yield from _walk(p.url_patterns, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), f"{ns}{p.name}"


def _fill(route: str, values: dict[str, object]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise AssertionError(f"no value for <{match.group(1)}> in /{route}: add one to the test's demo data")
        return str(values[match.group(1)])

    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", sub, route)


def _demo_world() -> dict[str, object]:
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
    admin = User.objects.create_user("axe-admin", password=PASSWORD, first_name="Alex", is_staff=True)
    admin.groups.add(Group.objects.get(name="admin"))
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


def _sign_in(page, base: str) -> None:  # noqa: ANN001
    page.goto(base + "/staff/login/")
    page.get_by_label("Username").fill("axe-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/staff/")


def _check_screenshots(paths: list) -> None:
    sizes = [(v["width"], v["height"]) for v in SIZES.values()]
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, f"{path} was not saved"
        assert png_size(path) in sizes, f"{path} is {png_size(path)}, not one of {sizes}"


def test_storefront_pages_pass_axe_and_are_photographed(browser, live_server):
    world = _demo_world()
    routes = {name for route, name in _walk(get_resolver().url_patterns) if not route.startswith(("staff/", "api/", "admin/"))}
    unknown = routes - STOREFRONT_AUDITED - STOREFRONT_NOT_PAGES
    assert not unknown, f"storefront URLs neither audited nor declared not pages: {sorted(unknown)}"

    base = live_server.url
    perf, order = world["perf"], world["order"]
    context = browser.new_context(viewport=SIZES["phone"], is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    add_axe(context)
    page = context.new_page()
    problems: list[str] = []
    shots: list = []

    def visit(url: str, label: str, *, shoot: bool = True) -> None:
        if url:
            page.goto(base + url)
        problems.extend(audit(page, label))
        if shoot:
            shots.extend(screenshot(page, label))

    try:
        visit("/", "home")
        visit(f"/events/{perf.event.slug}/", "event")
        visit(f"/performances/{world['reserved'].pk}/", "performance-reserved", shoot=False)
        visit(f"/performances/{perf.pk}/", "performance")
        page.get_by_role("button", name="One more Adult").click()
        page.get_by_role("button", name="Add to cart").click()
        visit("/cart/", "cart")
        visit("/checkout/", "checkout")
        visit(f"/orders/{order.token}/", "order")
        visit("/tickets/find/", "find-tickets")
        page.get_by_label("Email").fill("ada@example.org")
        page.get_by_role("button", name="Email me my tickets").click()
        page.wait_for_load_state("load")
        visit("", "find-tickets-sent", shoot=False)
        visit("/donate/", "donate")
        visit("/subscriptions/", "subscriptions")
        visit(f"/subscriptions/thanks/{world['sub'].order.token}/", "subscription-thanks", shoot=False)
        visit("/no-such-page/", "not-found", shoot=False)
        visit("/staff/login/", "staff-login")
    finally:
        context.close()
    assert not problems, "axe-core WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
    _check_screenshots(shots)
    assert len(shots) == 2 * 10


def test_every_staff_page_passes_axe(browser, live_server):
    world = _demo_world()
    values = world["values"]
    client = Client()
    client.force_login(User.objects.get(username="axe-admin"))
    pages, refused = [], []
    for route, name in _walk(get_resolver().url_patterns):
        if not route.startswith("staff/") or name in NOT_PAGES:
            continue
        url = _fill(route, values)
        response = client.get(url)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            pages.append((name, url))
        elif name != "boxoffice:login":  # a signed-in admin is sent on from the login page
            refused.append(f"{name} {url} → {response.status_code} {response.get('Content-Type', '')}")
    assert not refused, "staff URLs neither audited nor declared in NOT_PAGES:\n" + "\n".join(refused)
    for name in NOT_PAGES:  # the list names real URLs, none of them an HTML page
        route = next((r for r, n in _walk(get_resolver().url_patterns) if n == name), None)
        assert route, f"NOT_PAGES names {name}, which no longer exists"
    assert len(pages) >= 40

    base = live_server.url
    context = browser.new_context(viewport=SIZES["desktop"])
    context.set_default_timeout(15_000)
    add_axe(context)
    page = context.new_page()
    problems: list[str] = []
    shots: list = []
    main = {"boxoffice:dashboard", "boxoffice:pos-sell", "boxoffice:door-list", "boxoffice:event", "staff-sales:orders", "staff-sales:order", "reports:index"}
    try:
        _sign_in(page, base)
        for name, url in pages:
            page.goto(base + url)
            problems.extend(audit(page, name))
            if name in main:
                shots.extend(screenshot(page, "staff-" + name.split(":")[1]))
    finally:
        context.close()
    assert not problems, "axe-core WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
    _check_screenshots(shots)
    assert len(shots) == 2 * len(main)
