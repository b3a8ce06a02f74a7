"""Reserved seats at the door: the door list (page, CSV, API) and every check-in answer name
the seat, so an usher can point the way."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from tests.unit.seating_fixtures import make_reserved

from wondertix.boxoffice.door import door_list
from wondertix.ops import tokens
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CARD = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")


@pytest.fixture
def seated():
    r = make_reserved()
    ids = (r.seats["Balcony/B/3"], r.seats["Balcony/B/4"])
    order = sell([LineRequest(r.perf.pk, r.prices["Balcony"].pk, 2, seat_ids=ids)],
                 CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"), payment=CARD))
    return r, order


@pytest.fixture
def usher():
    user = User.objects.create_user("door-seats", is_staff=True)
    user.groups.add(Group.objects.get(name="usher"))
    return user


def test_the_door_list_page_csv_and_api_name_the_seats(seated, usher):
    r, order = seated
    (party,) = door_list(r.perf)
    assert party.seats == ["Balcony row B seat 3", "Balcony row B seat 4"]
    client = Client()
    client.force_login(usher)
    page = client.get(f"/staff/door/{r.perf.pk}/").content.decode()
    assert "Balcony row B seat 3; Balcony row B seat 4" in page
    assert "Balcony row B seat 3; Balcony row B seat 4" in client.get(f"/staff/door/{r.perf.pk}/print/").content.decode()
    rows = list(csv.reader(io.StringIO(client.get(f"/staff/door/{r.perf.pk}/export.csv").content.decode())))
    assert rows[0][-1] == "Seats" and rows[1][-1] == "Balcony row B seat 3; Balcony row B seat 4"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(usher)}"}
    listing = Client().get(f"/api/v1/staff/door/{r.perf.pk}", **auth).json()
    assert sorted(t["seat"] for t in listing["parties"][0]["tickets"]) == ["Balcony row B seat 3", "Balcony row B seat 4"]


def test_check_in_answers_say_the_seat_on_the_page_and_in_the_api(seated, usher):
    r, order = seated
    first, second = order.tickets.order_by("seat__x")
    client = Client()
    client.force_login(usher)
    page = client.post(f"/staff/door/{r.perf.pk}/checkin/", {"code": first.code}).content.decode()
    assert "Welcome! Balcony row B seat 3 · Balcony — Ada Lovelace" in page
    undone = client.post(f"/staff/door/{r.perf.pk}/undo/", {"code": first.code, "back": f"/staff/door/{r.perf.pk}/checkin/"})
    assert undone.status_code == 302
    scanned = client.post(f"/staff/door/{r.perf.pk}/checkin/", {"code": first.code}, HTTP_ACCEPT="application/json").json()
    assert scanned["seat"] == "Balcony row B seat 3" and "Balcony row B seat 3" in scanned["message"]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(usher)}"}
    answer = Client().post("/api/v1/staff/checkin", {"code": second.code, "performance_id": r.perf.pk}, content_type="application/json", **auth)
    assert answer.status_code == 200 and answer.json()["seat"] == "Balcony row B seat 4"


def test_general_admission_tickets_have_no_seat_anywhere(make_performance, usher):
    perf = make_performance()
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"), payment=CARD))
    (party,) = door_list(perf)
    assert party.seats == [] and order.tickets.get().place == ""
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(usher)}"}
    answer = Client().post("/api/v1/staff/checkin", {"code": order.tickets.get().code, "performance_id": perf.pk}, content_type="application/json", **auth)
    assert answer.json()["seat"] == ""
