"""Every storefront page, on demo data, is clean under axe-core's WCAG 2.0/2.1 A and AA rules
(the staff pages: test_accessibility_staff.py); the main pages are saved as screenshots at
phone and desktop size (var/screenshots/<page>-<phone|desktop>.png).

Every public URL name of the URL conf must be in STOREFRONT_AUDITED or STOREFRONT_NOT_PAGES,
so a storefront page added later fails here until it is audited."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import get_resolver
from tests.support.a11y_world import check_screenshots, demo_world, walk_urls
from tests.support.axe import SIZES, add_axe, audit, audit_at_sizes

from wondertix.ops import outbox

pytestmark = pytest.mark.django_db(transaction=True)


STOREFRONT_AUDITED = frozenset({
    "storefront:events", "storefront:event", "storefront:performance", "storefront:cart", "storefront:checkout",
    "storefront:order", "storefront:find_tickets", "storefront:donate", "subscriptions:list", "subscriptions:thanks",
    "storefront:sign_in", "storefront:sign_in_link", "storefront:account", "storefront:account_exchange",
})
STOREFRONT_NOT_PAGES = frozenset({
    "storefront:sign_out", "storefront:account_newsletter", "storefront:account_redeem",  # POST targets
    "storefront:cart_empty", "storefront:cart_hold_again", "storefront:order_tickets_pdf",
    "storefront:order_calendar", "storefront:ticket_qr", "stripe_webhook",
    "healthz", "readyz", "metrics", "raise-error",
})


def test_storefront_pages_pass_axe_and_are_photographed(browser, live_server):
    world = demo_world()
    routes = {name for route, name in walk_urls(get_resolver().url_patterns) if not route.startswith(("staff/", "api/", "admin/"))}
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

    def visit(url: str, label: str, *, main: bool = True) -> None:
        """Audit the page (the main pages at both sizes, photographed)."""
        if url:
            page.goto(base + url)
        if main:
            shots.extend(audit_at_sizes(page, label, problems))
        else:
            problems.extend(audit(page, label))

    def submit_empty(button: str, label: str) -> None:
        """Send the form with nothing filled in (the browser's own checks off): the page of errors."""
        page.evaluate("document.querySelectorAll('form').forEach(f => { f.noValidate = true; })")
        page.get_by_role("button", name=re.compile(button)).click()
        page.wait_for_load_state("load")
        visit("", label, main=False)

    try:
        visit("/", "home")
        visit(f"/events/{perf.event.slug}/", "event")
        visit(f"/performances/{world['reserved'].pk}/", "performance-reserved", main=False)
        visit(f"/performances/{perf.pk}/", "performance")
        page.get_by_role("button", name="One more Adult").click()
        page.get_by_role("button", name="Add to cart").click()
        visit("/cart/", "cart")
        visit("/checkout/", "checkout")
        submit_empty("^Pay |^Get my tickets|^Continue to payment", "checkout-errors")
        visit(f"/orders/{order.token}/", "order")
        visit("/tickets/find/", "find-tickets")
        page.get_by_label("Email").fill("ada@example.org")
        page.get_by_role("button", name="Email me my tickets").click()
        page.wait_for_load_state("load")
        visit("", "find-tickets-sent", main=False)
        visit("/donate/", "donate")
        submit_empty("^Give now", "donate-errors")
        visit("/subscriptions/", "subscriptions")
        visit(f"/subscriptions/thanks/{world['sub'].order.token}/", "subscription-thanks", main=False)
        # The patron's account: sign in by the emailed link, the orders, an exchange's form.
        visit("/account/sign-in/", "sign-in", main=False)
        page.get_by_label("Email address").fill("ada@example.org")
        page.get_by_role("button", name="Email me a sign-in link").click()
        page.locator("#sign-in-sent").wait_for()
        visit("", "sign-in-sent", main=False)
        outbox.send_due()
        link = re.search(r"https?://\S+(/account/sign-in/[\w-]+/)", mail.outbox[-1].body)
        assert link, mail.outbox[-1].body
        visit(link.group(1), "sign-in-link", main=False)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/account/")
        visit("", "account", main=False)
        page.get_by_role("link", name=f"Exchange tickets of order {order.reference}").click()
        page.wait_for_load_state("load")
        visit("", "account-exchange", main=False)
        visit("/no-such-page/", "not-found", main=False)
        visit("/staff/login/", "staff-login")
        page.goto(base + "/cart/")
        page.get_by_role("button", name="Empty cart").click()
        page.wait_for_load_state("load")
        visit("", "cart-emptied", main=False)
    finally:
        context.close()
    assert not problems, "axe-core WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
    check_screenshots(shots)
    assert len(shots) == 2 * 10
