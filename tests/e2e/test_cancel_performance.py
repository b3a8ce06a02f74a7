"""A house manager cancels a performance in the browser: from the event page, the cancel page
shows the orders, tickets and refund total; one button takes it off sale, refunds the three
buyers, frees the seats and emails each of them. Then the emails' previews."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail

from wondertix.catalog.models import Performance
from wondertix.sales import services
from wondertix.sales.refund_models import Refund

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "house-manager-" + "5" * 8
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def test_house_manager_cancels_a_performance_and_every_buyer_is_refunded_and_told(desktop, live_server, make_performance, good_card, artifacts):
    page = desktop
    perf = make_performance(capacity=20)
    perf.event.title = "The Tempest"
    perf.event.save()
    for n, qty in enumerate((1, 2, 3), start=1):
        buyer = services.Buyer(first_name=f"Buyer{n}", last_name="Patron", email=f"buyer{n}@example.org")
        services.sell([services.LineRequest(perf.pk, perf.adult.pk, qty)], services.CheckoutDetails(buyer=buyer, payment=good_card))
    mail.outbox.clear()
    manager = User.objects.create_user("house-manager", password=PASSWORD, is_staff=True)
    manager.groups.add(Group.objects.get(name="admin"))

    page.goto(live_server.url + f"/staff/events/{perf.event_id}/")
    page.wait_for_url("**/staff/login/**")
    page.get_by_label("Username").fill("house-manager")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/staff/events/{perf.event_id}/")
    page.get_by_role("link", name="Cancel…").click()
    page.wait_for_url(f"**/staff/performances/{perf.pk}/cancel/")
    assert page.locator("#cancel-orders").inner_text() == "3"
    assert page.locator("#cancel-tickets").inner_text() == "6"
    assert page.locator("#cancel-total").inner_text() == "$162.00"
    page.screenshot(path=str(artifacts / "cancel-performance-confirm.png"), full_page=True)

    page.get_by_label("Reason (shown in the audit log)").fill("Lead actor ill")
    page.get_by_role("button", name="Cancel the performance and refund 3 orders ($162.00)").click()
    page.wait_for_url(f"**/staff/performances/{perf.pk}/cancel/")
    messages = page.locator(".messages").inner_text()
    assert re.search(r"Refunded 6 ticket\(s\) on 3 order\(s\), \$162\.00 in total", messages), messages
    assert page.locator("#cancel-orders").inner_text() == "0"
    page.screenshot(path=str(artifacts / "cancel-performance-done.png"), full_page=True)

    perf.refresh_from_db()
    assert perf.status == Performance.CANCELED and perf.tickets_sold == 0
    assert Refund.objects.filter(canceled_performance=perf, status=Refund.SUCCEEDED).count() == 3
    assert sorted(m.to[0] for m in mail.outbox) == ["buyer1@example.org", "buyer2@example.org", "buyer3@example.org"]
    assert all("The Tempest" in m.subject and "has been canceled" in m.body for m in mail.outbox)

    # The email the buyers got, as staff preview it (the HTML in its sandboxed frame).
    page.get_by_role("link", name="Patron emails").click()
    page.get_by_role("link", name="Performance canceled (with its refund)").click()
    assert "has been canceled" in page.locator("#email-text").inner_text()
    frame = page.frame_locator("iframe.email-html")
    assert "has been canceled" in frame.locator("h1").inner_text()
    page.screenshot(path=str(artifacts / "email-preview-canceled.png"), full_page=True)
    assert page.problems == []  # type: ignore[attr-defined]
