"""An usher at the door, on a phone: sign in, open the door list, check a ticket in by its
code, see the same code refused with who checked it in, then find a party by name and check
them all in."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from wondertix.sales import services
from wondertix.sales.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "door-shift-" + "7" * 8


def sell(perf, quantity: int, first: str, last: str, email: str, *, accommodation: str = "", card) -> list[str]:
    buyer = services.Buyer(first_name=first, last_name=last, email=email, phone="555 010 3000", accommodation=accommodation)
    order = services.sell([services.LineRequest(perf.pk, perf.adult.pk, quantity)], services.CheckoutDetails(buyer=buyer, payment=card))
    return list(order.tickets.order_by("pk").values_list("code", flat=True))


def test_usher_checks_in_by_code_is_refused_twice_and_admits_a_party_by_name(phone, live_server, make_performance, good_card, artifacts):
    page = phone
    perf = make_performance(capacity=20)
    perf.event.title = "The Tempest"
    perf.event.save()
    party = sell(perf, 2, "Ada", "Lovelace", "ada@example.org", accommodation="Wheelchair space", card=good_card)
    (single,) = sell(perf, 1, "Grace", "Hopper", "grace@example.org", card=good_card)
    usher = User.objects.create_user("jo-usher", password=PASSWORD, first_name="Jo", is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))

    # ---- sign in; the door list of tonight's show
    page.goto(live_server.url + "/staff/door/")
    page.wait_for_url("**/staff/login/**")
    page.get_by_label("Username").fill("jo-usher")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/door/")
    page.locator("tr", has_text="The Tempest").get_by_role("link", name="Door list").click()
    page.wait_for_url(f"**/staff/door/{perf.pk}/")
    assert "0 of 3 checked in" in page.locator("main").inner_text()
    lovelace = page.locator(".door-list tbody tr", has_text="Ada Lovelace")
    assert "2 x Adult" in lovelace.inner_text() and "Wheelchair space" in lovelace.inner_text()

    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts / "door-list-phone.png"), full_page=True)
    # Nothing wider than the phone: an usher never scrolls sideways to find the button.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # ---- the manual entry field: type Grace's code (lower case, as a person types it)
    page.get_by_role("link", name="Scan tickets").click()
    page.wait_for_url(f"**/staff/door/{perf.pk}/checkin/")
    page.get_by_label("Ticket code").fill(single.lower())
    page.get_by_role("button", name="Check in", exact=True).click()
    result = page.locator("#scan-result")
    assert "Welcome! Adult — Grace Hopper" in result.inner_text()
    assert "1 of 3 checked in" in page.locator("main").inner_text()
    assert Ticket.objects.get(code=single).checked_in_at is not None

    # ---- the same code again: refused, naming who checked it in and when
    page.get_by_label("Ticket code").fill(single)
    page.get_by_role("button", name="Check in", exact=True).click()
    refusal = page.locator("#scan-result.scan-bad")
    assert re.search(r"Already checked in by jo-usher at \d{1,2}:\d\d", refusal.inner_text()), refusal.inner_text()
    assert "1 of 3 checked in" in page.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "door-scan-refused-phone.png"), full_page=True)

    # ---- find the Lovelace party by name and check them in together
    page.locator("main").get_by_role("link", name=re.compile("Door list")).click()
    page.get_by_label(re.compile("Find a name")).fill("lovelace")
    page.get_by_role("button", name="Search").click()
    rows = page.locator(".door-list tbody tr")
    assert rows.count() == 1 and "Ada Lovelace" in rows.first.inner_text()
    rows.first.get_by_role("button", name="Check in 2").click()
    assert "Checked in 2 tickets." in page.locator(".messages").inner_text()
    assert "✓ all 2" in page.locator(".door-list tbody tr", has_text="Ada Lovelace").inner_text()
    assert "3 of 3 checked in" in page.locator("main").inner_text()
    assert Ticket.objects.filter(code__in=party, checked_in_at__isnull=False, checked_in_by=usher).count() == 2
    # Each ticket of the party, one by one, with who checked it in (and an undo).
    page.locator(".door-list summary", has_text="Ticket codes (2)").click()
    tickets = page.locator(".door-list details li")
    assert tickets.count() == 2
    for i, code in enumerate(party):
        assert code in tickets.nth(i).inner_text() and "by jo-usher" in tickets.nth(i).inner_text()
        assert tickets.nth(i).get_by_role("button", name="Undo").is_visible()
    page.screenshot(path=str(artifacts / "door-party-checked-in-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    assert page.problems == []  # type: ignore[attr-defined]
