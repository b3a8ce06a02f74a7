"""Issue 11, acceptance 2 (the patron's part): a reserved performance whose chart is imported
from the documented JSON; on a phone a patron taps 2 adjacent seats on the map, pays with the
simulated card, sees them taken on the map, and the ticket PDF, the email and the door list
name them."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.utils import timezone
from pypdf import PdfReader
from tests.e2e.seating_steps import (
    assert_taken_on_map,
    door_list,
    map_index,
    pay_with_simulated_card,
)
from tests.support.seating import chart_document

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "door-shift-" + "7" * 8


def reserved_performance():
    from wondertix.catalog import chartfile, seating
    from wondertix.catalog.models import Event, Performance, PriceType, Seat

    document = chart_document(venue="Main Stage", name="Proscenium", sections=[("Orchestra", "Orchestra", 3, 10), ("Balcony", "Balcony", 2, 10)])
    chart = chartfile.save(chartfile.parse_json(json.dumps(document)))
    event = Event.objects.create(title="Twelfth Night", slug="twelfth-night", active=True)
    for cat, cents in (("Orchestra", 4500), ("Balcony", 3000)):
        PriceType.objects.create(event=event, name=cat, price_cents=cents, seat_category=chart.categories.get(name=cat))
    perf = seating.use_chart(Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=5), capacity=1), chart)
    seats = {f"{s.section.name}/{s.row}/{s.label}": s.pk for s in Seat.objects.filter(section__chart=chart).select_related("section")}
    return perf, seats


def test_a_patron_taps_two_adjacent_seats_on_a_phone_and_every_ticket_view_names_them(phone, browser, live_server, artifacts):
    from wondertix.sales.models import Order

    perf, seats = reserved_performance()
    a5, a6 = seats["Orchestra/A/5"], seats["Orchestra/A/6"]
    page = phone
    page.goto(f"{live_server.url}/performances/{perf.pk}/")
    svg = page.locator(".seatmap__svg")
    assert svg.is_visible()
    assert page.locator(".seatmap__svg [data-i]").count() == 50

    # ---- zoom works by buttons (pinch uses the same viewBox)
    whole = svg.get_attribute("viewBox")
    page.get_by_role("button", name="Zoom in").click()
    assert svg.get_attribute("viewBox") != whole
    page.get_by_role("button", name="Whole map").click()
    assert svg.get_attribute("viewBox") == whole

    # ---- tap two adjacent seats on the map
    for seat_id in (a5, a6):
        page.locator(f'.seatmap__svg [data-i="{map_index(page, seat_id)}"]').tap()
    chosen = page.locator("[data-chosen-list]")
    assert chosen.inner_text().splitlines()[:1] and "Orchestra row A seat 5: $45.00" in chosen.inner_text()
    assert "Orchestra row A seat 6: $45.00" in chosen.inner_text()
    assert "2 seats, $90.00 before fees" in page.locator("[data-chosen-total]").inner_text()
    assert page.locator(f'input[value="{a5}"]').is_checked()  # the list follows the map
    page.screenshot(path=str(artifacts / "seat-map-chosen-phone.png"), full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Add chosen seats to cart").click()
    page.wait_for_url("**/cart/")
    assert "Orchestra row A seat 5; Orchestra row A seat 6" in page.locator("main").inner_text()

    # ---- check out with the simulated card
    pay_with_simulated_card(page, "Viola", "Sebastian", "viola@example.org")
    order_text = page.locator("main").inner_text()
    assert "Orchestra row A seat 5" in order_text and "Orchestra row A seat 6" in order_text
    order = Order.objects.get()

    # ---- the map now shows them taken, to this patron and to anyone else
    assert_taken_on_map(page, f"{live_server.url}/performances/{perf.pk}/", [a5, a6])
    assert "Seat 5 (taken)" in page.locator(".seat-list").inner_text()

    # ---- the email and its ticket PDF name the seats
    (confirmation,) = mail.outbox
    assert "Orchestra row A seat 5" in confirmation.body and "Orchestra row A seat 6" in confirmation.body
    pdf = next(content for name, content, _ in confirmation.attachments if name.endswith(".pdf"))
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) == 2
    assert {"Orchestra row A seat 5", "Orchestra row A seat 6"} == {m for text in pages for m in re.findall(r"Orchestra row A seat \d+", text)}

    # ---- the door list names them
    usher = User.objects.create_user("jo-usher", password=PASSWORD, is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    listing = door_list(browser, live_server.url, perf.pk, "jo-usher", PASSWORD)
    assert "Sebastian" in listing and "Orchestra row A seat 5; Orchestra row A seat 6" in listing
    assert order.tickets.filter(seat_id__in=[a5, a6]).count() == 2
    assert page.problems == []  # type: ignore[attr-defined]
