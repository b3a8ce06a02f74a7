"""The back office puts a seating chart on a performance and gives a price type its seat
category (issue 11): the performance form's "Seating" choice and the price type form's "Seat
category", as a house manager uses them in the browser."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from tests.support.seating import chart_document
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import chartfile
from wondertix.catalog.models import Performance, PriceType
from wondertix.catalog.seating_models import SeatingChart
from wondertix.ops.models import AuditEntry
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold, sell

pytestmark = pytest.mark.django_db

CARD = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")
IN_USE = "Tickets are sold or held for this performance: its seating cannot change now."


def _chart(name: str = "Main") -> SeatingChart:
    """Orchestra 3 × 8 and Balcony 2 × 8: 40 seats, imported as staff import a chart."""
    return chartfile.save(chartfile.parse_json(json.dumps(chart_document(name=name))))


def _when(perf: Performance) -> str:
    return timezone.localtime(perf.starts_at).strftime("%Y-%m-%dT%H:%M")


def _edit(admin: Client, perf: Performance, **fields: str):  # noqa: ANN202
    return admin.post(f"/staff/performances/{perf.pk}/edit/", {"starts_at": _when(perf), "capacity": str(perf.capacity), **fields})


def _sell(perf: Performance, price_type: PriceType, n: int) -> None:
    sell([LineRequest(perf.pk, price_type.pk, n)],
         CheckoutDetails(buyer=Buyer(first_name="Sam", last_name="Buyer", email="sam@example.org"), payment=CARD))


def test_the_performance_form_offers_general_admission_and_every_chart(make_performance, admin):
    perf = make_performance()
    _chart()
    page = admin.get(f"/staff/events/{perf.event_id}/performances/new/").content.decode()
    assert "General admission (no seat map)" in page and "Test Hall — Main" in page
    assert "capacity is then the chart&#x27;s seats" in page and "cannot change once tickets are sold or held" in page


def test_a_new_performance_with_a_chart_sells_the_charts_places(make_performance, admin, admin_user):
    event_id = make_performance().event_id
    chart = _chart()
    starts = (timezone.localtime() + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M")
    response = admin.post(f"/staff/events/{event_id}/performances/new/", {"starts_at": starts, "seating": str(chart.pk), "capacity": ""})
    assert response.status_code == 302
    perf = Performance.objects.get(event_id=event_id, seating_chart=chart)
    assert perf.capacity == 40  # the chart's seats, whatever the form said
    entry = AuditEntry.objects.get(action="performance.seating_chart")
    assert entry.actor == admin_user and entry.after == {"chart": chart.pk}
    listing = admin.get(f"/staff/events/{event_id}/").content.decode()
    assert "Test Hall — Main" in listing and "0 / 40" in listing


def test_a_capacity_typed_beside_a_chart_is_ignored(make_performance, admin):
    event_id = make_performance().event_id
    chart = _chart()
    starts = (timezone.localtime() + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M")
    admin.post(f"/staff/events/{event_id}/performances/new/", {"starts_at": starts, "seating": str(chart.pk), "capacity": "500"})
    assert Performance.objects.get(seating_chart=chart).capacity == 40


def test_general_admission_without_a_capacity_is_refused_and_nothing_created(make_performance, admin):
    event_id = make_performance().event_id
    starts = (timezone.localtime() + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M")
    response = admin.post(f"/staff/events/{event_id}/performances/new/", {"starts_at": starts, "seating": "", "capacity": ""})
    assert response.status_code == 422
    assert "a general-admission performance needs a capacity" in response.content.decode()
    assert Performance.objects.filter(event_id=event_id).count() == 1


def test_an_existing_performance_goes_onto_a_chart_and_back_to_general_admission(make_performance, admin):
    perf = make_performance(capacity=10)
    chart = _chart()
    assert _edit(admin, perf, seating=str(chart.pk), note="now reserved").status_code == 302
    perf.refresh_from_db()
    assert (perf.seating_chart_id, perf.capacity, perf.note) == (chart.pk, 40, "now reserved")
    page = admin.get(f"/staff/performances/{perf.pk}/edit/").content.decode()
    assert f'<option value="{chart.pk}" selected>' in page  # the form shows what is in use
    assert "Seats are sold from the chart “Test Hall — Main”" in page

    assert _edit(admin, perf, seating="", capacity="12").status_code == 302
    perf.refresh_from_db()
    assert (perf.seating_chart_id, perf.capacity) == (None, 12)
    assert [e.after for e in AuditEntry.objects.filter(action="performance.seating_chart").order_by("pk")] == [{"chart": chart.pk}, {"chart": None}]
    assert "General admission" in admin.get(f"/staff/events/{perf.event_id}/").content.decode()


def test_a_chart_on_a_performance_with_tickets_sold_is_refused_with_the_reason_and_nothing_written(make_performance, admin):
    perf = make_performance(capacity=10)
    _sell(perf, perf.adult, 2)
    chart = _chart()
    audits = AuditEntry.objects.count()
    response = _edit(admin, perf, seating=str(chart.pk), note="should not stick")
    assert response.status_code == 409
    assert IN_USE in response.content.decode()
    perf.refresh_from_db()
    assert (perf.seating_chart_id, perf.capacity, perf.note, perf.tickets_sold) == (None, 10, "", 2)
    assert AuditEntry.objects.count() == audits


def test_a_reserved_performance_with_seats_held_keeps_its_chart(admin):
    reserved = make_reserved()
    perf = reserved.perf
    seat = reserved.seats["Orchestra/A/1"]
    create_hold([LineRequest(perf.pk, reserved.prices["Orchestra"].pk, 1, seat_ids=(seat,))])
    response = _edit(admin, perf, seating="", capacity="100")
    assert response.status_code == 409 and IN_USE in response.content.decode()
    perf.refresh_from_db()
    assert perf.seating_chart_id is not None and perf.capacity == 40


def test_a_bogus_chart_id_is_refused_and_nothing_changed(make_performance, admin):
    perf = make_performance(capacity=10)
    response = _edit(admin, perf, seating="999999", note="x")
    assert response.status_code == 422 and "Select a valid choice" in response.content.decode()
    perf.refresh_from_db()
    assert (perf.seating_chart_id, perf.note) == (None, "")


def test_copying_a_reserved_performance_keeps_its_chart(admin):
    perf = make_reserved().perf
    starts = (timezone.localtime(perf.starts_at) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert admin.post(f"/staff/performances/{perf.pk}/copy/", {"starts_at": starts}).status_code == 302
    copy = Performance.objects.exclude(pk=perf.pk).get(event_id=perf.event_id)
    assert (copy.seating_chart_id, copy.capacity) == (perf.seating_chart_id, 40)


def test_box_office_staff_cannot_change_seating(make_performance):
    perf = make_performance(capacity=10)
    chart = _chart()
    clerk = User.objects.create_user("clerk", is_staff=True)
    clerk.groups.add(Group.objects.get(name="box_office"))
    client = Client()
    client.force_login(clerk)
    assert _edit(client, perf, seating=str(chart.pk)).status_code == 403
    perf.refresh_from_db()
    assert perf.seating_chart_id is None


# ---------------------------------------------------------------------------- price types


def _price_type(admin: Client, event_id: int, **fields: str):  # noqa: ANN202
    return admin.post(f"/staff/events/{event_id}/price-types/new/", {"name": "Orchestra", "price_cents": "45", "sort_order": "0", **fields})


def test_a_price_type_is_saved_with_its_seat_category_and_listed_with_it(make_performance, admin):
    event_id = make_performance().event_id
    orchestra = _chart().categories.get(name="Orchestra")
    form = admin.get(f"/staff/events/{event_id}/price-types/new/").content.decode()
    assert "Every seat (general admission)" in form and "Test Hall — Main — Orchestra" in form and "Test Hall — Main — Balcony" in form
    assert _price_type(admin, event_id, seat_category=str(orchestra.pk)).status_code == 302
    pt = PriceType.objects.get(event_id=event_id, name="Orchestra")
    assert (pt.seat_category_id, pt.price_cents) == (orchestra.pk, 4500)
    assert AuditEntry.objects.get(action="price_type.created", object_id=str(pt.pk)).after["seat_category_id"] == orchestra.pk
    assert "Test Hall — Main — Orchestra" in admin.get(f"/staff/events/{event_id}/").content.decode()

    edit = {"name": "Orchestra", "price_cents": "45", "sort_order": "0", "seat_category": ""}
    assert admin.post(f"/staff/price-types/{pt.pk}/edit/", edit).status_code == 302
    pt.refresh_from_db()
    assert pt.seat_category_id is None  # every seat again


def test_a_seat_category_from_a_bogus_id_is_refused_and_nothing_saved(make_performance, admin):
    event_id = make_performance().event_id
    response = _price_type(admin, event_id, seat_category="999999")
    assert response.status_code == 422 and "Select a valid choice" in response.content.decode()
    assert not PriceType.objects.filter(event_id=event_id, name="Orchestra").exists()


def test_a_price_types_seat_category_cannot_change_once_it_has_sold(admin):
    reserved = make_reserved()
    pt = reserved.prices["Orchestra"]
    seat = reserved.seats["Orchestra/A/1"]
    sell([LineRequest(reserved.perf.pk, pt.pk, 1, seat_ids=(seat,))],
         CheckoutDetails(buyer=Buyer(first_name="Sam", last_name="Buyer", email="sam@example.org"), payment=CARD))
    balcony = reserved.prices["Balcony"].seat_category_id
    response = admin.post(f"/staff/price-types/{pt.pk}/edit/", {"name": "Orchestra", "price_cents": "50", "sort_order": "0", "seat_category": str(balcony)})
    assert response.status_code == 409
    assert "its seat category cannot change" in response.content.decode()
    orchestra = pt.seat_category_id
    pt.refresh_from_db()
    assert (pt.seat_category_id, pt.price_cents) == (orchestra, 4500)  # nothing written
    # The price alone still changes (future sales), keeping its category.
    same = {"name": "Orchestra", "price_cents": "50", "sort_order": "0", "seat_category": str(orchestra)}
    assert admin.post(f"/staff/price-types/{pt.pk}/edit/", same).status_code == 302
    pt.refresh_from_db()
    assert (pt.seat_category_id, pt.price_cents) == (orchestra, 5000)


def test_the_event_page_warns_of_a_performance_no_price_type_can_sell(make_performance, admin):
    perf = make_performance()  # Adult, Student, Pay what you can: general admission
    chart = _chart()
    assert _edit(admin, perf, seating=str(chart.pk)).status_code == 302
    warning = "No price type on sale sells its seats"
    assert warning in admin.get(f"/staff/events/{perf.event_id}/").content.decode()
    assert _price_type(admin, perf.event_id, seat_category=str(chart.categories.get(name="Orchestra").pk)).status_code == 302
    assert warning not in admin.get(f"/staff/events/{perf.event_id}/").content.decode()
