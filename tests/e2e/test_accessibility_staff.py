"""Every staff page, on demo data, signed in as an admin (who may open them all), is clean under
axe-core's WCAG 2.0/2.1 A and AA rules; the main ones are saved as screenshots at phone and
desktop size (var/screenshots/staff-<page>-<phone|desktop>.png); the dashboard is audited
for the box-office and usher roles too.

Staff pages are found by walking the URL resolver (as the authorization matrix does), so a
staff page added later is audited without a change here; a staff URL that does not answer a
signed-in admin's GET with an HTML page must be declared in NOT_PAGES, or the test fails."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver
from tests.support.a11y_world import (
    check_screenshots,
    demo_world,
    fill,
    is_page,
    sign_in,
    walk_urls,
)
from tests.support.axe import SIZES, add_axe, audit, audit_at_sizes

pytestmark = pytest.mark.django_db(transaction=True)

# Staff URLs (namespace:name) that are not pages: POST targets of the pages' forms and downloads.
NOT_PAGES = frozenset({
    "boxoffice:logout", "boxoffice:event-active", "boxoffice:event-season", "boxoffice:price-type-active",
    "boxoffice:season-active", "boxoffice:season-add-event", "boxoffice:discount-active",
    "boxoffice:seating-chart-export", "boxoffice:pos-hold", "boxoffice:pos-release", "boxoffice:pos-card-action",
    "boxoffice:door-csv", "boxoffice:door-undo", "boxoffice:door-admit",
    "reports:report-csv", "staff-sales:order-tickets-print", "staff-sales:order-resend-confirmation",
    "staff-sales:order-refund", "staff-sales:order-exchange", "contacts:note",
    "boxoffice:seating-chart-new", "boxoffice:seating-chart-save", "boxoffice:seating-chart-duplicate",
    "boxoffice:seating-chart-import",
})


def test_every_staff_page_passes_axe(browser, live_server):
    world = demo_world()
    values = world["values"]
    routes = {name: route for route, name in walk_urls(get_resolver().url_patterns) if route.startswith("staff/")}
    assert NOT_PAGES <= set(routes), f"NOT_PAGES names URLs that no longer exist: {sorted(NOT_PAGES - set(routes))}"
    client = Client()
    client.force_login(User.objects.get(username="axe-admin"))
    # (Not signing out: that would end the session the others are requested with.)
    html = {name for name in NOT_PAGES - {"boxoffice:logout"} if is_page(client.get(fill(routes[name], values)))}
    assert not html, f"NOT_PAGES names pages (audit them): {sorted(html)}"

    base = live_server.url
    # An email's HTML preview forbids every script (its CSP is default-src 'none'), which stops
    # axe's own promise there; the audit reads markup, so the context sets the CSP aside.
    context = browser.new_context(viewport=SIZES["desktop"], bypass_csp=True)
    context.set_default_timeout(15_000)
    add_axe(context)
    page = context.new_page()
    problems: list[str] = []
    refused: list[str] = []
    shots: list = []
    audited = 0
    main = {"boxoffice:dashboard", "boxoffice:pos-sell", "boxoffice:door-list", "boxoffice:event", "staff-sales:orders", "staff-sales:order", "reports:index"}
    try:
        sign_in(context, base, "axe-admin")
        for name, route in routes.items():
            if name in NOT_PAGES or name == "boxoffice:login":  # a signed-in admin is sent on from the login page
                continue
            url = fill(route, values)
            response = page.goto(base + url)
            kind = response.headers.get("content-type", "") if response else ""
            if not (response and response.status == 200 and kind.startswith("text/html")):
                refused.append(f"{name} {url} → {response.status if response else None} {kind}")
                continue
            audited += 1
            if name in main:
                shots.extend(audit_at_sizes(page, "staff-" + name.split(":")[1], problems))
            else:
                problems.extend(audit(page, name))
        # A form sent with nothing filled in (the browser's own checks off): its errors.
        page.goto(base + f"/staff/events/{values['event_id']}/performances/new/")
        page.evaluate("document.querySelectorAll('form').forEach(f => { f.noValidate = true; })")
        page.locator("main form button[type=submit]").last.click()
        page.wait_for_load_state("load")
        problems.extend(audit(page, "performance-new with errors"))
        # Each role's own navigation and dashboard.
        for role in ("box_office", "usher"):
            sign_in(context, base, f"axe-{role}")
            page.goto(base + "/staff/")
            problems.extend(audit(page, f"dashboard as {role}"))
    finally:
        context.close()
    assert not refused, "staff URLs neither audited nor declared in NOT_PAGES:\n" + "\n".join(refused)
    assert audited >= 40
    assert not problems, "axe-core WCAG 2.1 A/AA violations:\n" + "\n".join(problems)
    check_screenshots(shots)
    assert len(shots) == 2 * len(main)
