"""Seating in the REST API: the seat map, best seats, holds and orders naming seats, and chart
import/export for staff. Every answer is checked against the OpenAPI document (conftest)."""

from __future__ import annotations

import pytest
from django.test import Client
from tests.support.seating import chart_document
from tests.unit.seating_fixtures import make_reserved

pytestmark = pytest.mark.django_db

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
BUYER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


def _post(client, url, body, **headers):
    return client.post(url, body, content_type="application/json", **headers)


def test_seat_map_shows_each_seat_and_what_is_taken():
    r = make_reserved(flags={("Orchestra", "A", "1"): ["house_seat", "accessible"]})
    api = Client()
    line = {"performance_id": r.perf.pk, "price_type_id": r.prices["Orchestra"].pk, "quantity": 2, "seat_ids": [r.seats["Orchestra/A/2"], r.seats["Orchestra/A/3"]]}
    assert _post(api, "/api/v1/orders", {"lines": [line], "buyer": BUYER, "card": CARD}).status_code == 201
    hold_line = {**line, "quantity": 1, "seat_ids": [r.seats["Orchestra/B/1"]]}
    held = _post(api, "/api/v1/holds", {"lines": [hold_line]})
    assert held.status_code == 201 and held.json()["lines"][0]["seat_ids"] == [r.seats["Orchestra/B/1"]]
    body = api.get(f"/api/v1/performances/{r.perf.pk}/seats").json()
    status = {s["id"]: s["status"] for sec in body["sections"] for s in sec["seats"]}
    assert status[r.seats["Orchestra/A/2"]] == status[r.seats["Orchestra/A/3"]] == "sold"
    assert status[r.seats["Orchestra/B/1"]] == "held"
    assert status[r.seats["Orchestra/A/1"]] == "house"
    assert body["counts"] == {"sold": 2, "held": 1, "house": 1, "available": 40 - 4}
    orchestra = next(c for c in body["categories"] if c["name"] == "Orchestra")
    assert orchestra["price_type_ids"] == [r.prices["Orchestra"].pk]
    seat = next(s for sec in body["sections"] for s in sec["seats"] if s["id"] == r.seats["Orchestra/A/1"])
    assert seat["accessible"] is True and seat["row"] == "A" and seat["label"] == "1"


def test_an_order_names_its_seats_and_a_taken_seat_is_a_409():
    r = make_reserved()
    api = Client()
    line = {"performance_id": r.perf.pk, "price_type_id": r.prices["Balcony"].pk, "quantity": 1, "seat_ids": [r.seats["Balcony/A/5"]]}
    first = _post(api, "/api/v1/orders", {"lines": [line], "buyer": BUYER, "card": CARD})
    assert first.status_code == 201
    assert first.json()["tickets"][0]["seat"] == {"id": r.seats["Balcony/A/5"], "section": "Balcony", "row": "A", "label": "5"}
    again = _post(api, "/api/v1/orders", {"lines": [line], "buyer": BUYER, "card": CARD})
    assert again.status_code == 409
    assert again.json()["code"] == "seat_taken" and again.json()["details"]["seat_ids"] == [r.seats["Balcony/A/5"]]
    read = api.get(f"/api/v1/orders/{first.json()['token']}").json()
    assert read["tickets"][0]["seat"]["label"] == "5"


def test_best_seats_for_4_returns_4_adjacent_seats_in_the_best_category():
    r = make_reserved()
    api = Client()
    body = api.get(f"/api/v1/performances/{r.perf.pk}/best-seats?quantity=4").json()
    assert body["together"] is True
    assert [s["row"] for s in body["seats"]] == ["A"] * 4
    assert [s["section"] for s in body["seats"]] == ["Orchestra"] * 4
    assert [int(s["label"]) for s in body["seats"]] == [3, 4, 5, 6]  # the middle of the front row


def test_general_admission_has_no_seat_map():
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance

    event = Event.objects.create(title="GA", slug="ga", active=True)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timezone.timedelta(days=3), capacity=10)
    r = Client().get(f"/api/v1/performances/{perf.pk}/seats")
    assert r.status_code == 404 and r.json()["code"] == "no_seating_chart"


@pytest.fixture
def admin_token(db):
    from django.contrib.auth.models import Group, User

    from wondertix.ops import tokens

    user = User.objects.create_user("chartist", password="x" * 12, is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    return tokens.mint(user)


def test_staff_import_export_round_trip_and_a_bad_chart_writes_nothing(admin_token):
    from wondertix.catalog.models import Seat, SeatingChart

    api = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {admin_token}"}
    doc = chart_document(name="API chart", aisle_after=4, standing=50)
    made = _post(api, "/api/v1/staff/seating/charts", doc, **auth)
    assert made.status_code == 201, made.content
    assert made.json()["seats"] == 40 and made.json()["capacity"] == 90
    exported = api.get(f"/api/v1/staff/seating/charts/{made.json()['id']}", **auth).json()
    bad = {**exported, "name": "Broken"}
    bad["sections"][1]["seats"][3]["x"] = "left"
    refused = _post(api, "/api/v1/staff/seating/charts", bad, **auth)
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_chart" and refused.json()["field"] == "sections[1].seats[3].x"
    assert SeatingChart.objects.count() == 1 and Seat.objects.count() == 40
    assert _post(api, "/api/v1/staff/seating/charts", doc).status_code == 401
