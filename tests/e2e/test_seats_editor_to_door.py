"""Issue 11, acceptance 2 as one journey: an admin draws a 3-section chart in the seat-map
editor (mouse and keyboard), puts a performance on sale with it through the staff pages (an
event, a price per seat category, the performance's Seating), a patron on a phone buys 2
adjacent seats, and the seats are taken on the map and named on the ticket PDF, the email and
the door list."""

from __future__ import annotations

import io
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
    draw_three_section_chart,
    pay_with_simulated_card,
    put_chart_on_sale,
    tap_seats_into_cart,
)

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "house-manager-" + "7" * 8


def test_a_chart_drawn_in_the_editor_sells_two_adjacent_seats_on_a_phone_and_the_door_sees_them(desktop, phone, browser, live_server, artifacts):
    from wondertix.catalog.models import Seat
    from wondertix.sales.models import Order

    admin = User.objects.create_user("house-manager", password=PASSWORD, is_staff=True)
    admin.groups.add(Group.objects.get(name="admin"))
    chart = draw_three_section_chart(desktop, live_server.url, "house-manager", PASSWORD, artifacts)
    prices = {"Box": "60", "Orchestra": "45", "Balcony": "30"}
    perf = put_chart_on_sale(desktop, live_server.url, "The Tempest", chart, prices, timezone.now() + timedelta(days=5))
    assert perf.capacity == 24  # the drawn seats
    assert "0 / 24" in desktop.locator("main").inner_text()
    seats = {f"{s.section.name}/{s.row}/{s.label}": s.pk for s in Seat.objects.filter(section__chart=chart).select_related("section")}
    a5, a6 = seats["Orchestra/A/5"], seats["Orchestra/A/6"]  # side by side, after the aisle

    page = phone
    performance_url = f"{live_server.url}/performances/{perf.pk}/"
    page.goto(performance_url)
    assert page.locator(".seatmap__svg [data-i]").count() == 24
    tap_seats_into_cart(page, [a5, a6])
    assert "Orchestra row A seat 5; Orchestra row A seat 6" in page.locator("main").inner_text()
    pay_with_simulated_card(page, "Miranda", "Prospero", "miranda@example.org")
    order_text = page.locator("main").inner_text()
    assert "Orchestra row A seat 5" in order_text and "Orchestra row A seat 6" in order_text
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    assert_taken_on_map(page, performance_url, [a5, a6])
    (confirmation,) = mail.outbox
    assert "Orchestra row A seat 5" in confirmation.body and "Orchestra row A seat 6" in confirmation.body
    pdf = next(content for name, content, _ in confirmation.attachments if name.endswith(".pdf"))
    named = {m for p in PdfReader(io.BytesIO(pdf)).pages for m in re.findall(r"Orchestra row A seat \d+", p.extract_text())}
    assert named == {"Orchestra row A seat 5", "Orchestra row A seat 6"}

    usher = User.objects.create_user("ariel-usher", password=PASSWORD, is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    listing = door_list(browser, live_server.url, perf.pk, "ariel-usher", PASSWORD)
    assert "Prospero" in listing and "Orchestra row A seat 5; Orchestra row A seat 6" in listing
    assert sorted(Order.objects.get().tickets.values_list("seat_id", flat=True)) == sorted([a5, a6])
    assert desktop.problems == [] and page.problems == []  # type: ignore[attr-defined]
