"""The staff seating page: admins upload a chart file (JSON or CSV) and download its export."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from tests.support.seating import chart_document

from wondertix.catalog.models import Seat, SeatingChart

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("boss", password="x" * 12, is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


def test_an_admin_uploads_a_csv_chart_and_downloads_it_as_json(admin):
    csv = b"section,row,seat,x,y\nStalls,A,1,0,0\nStalls,A,2,1,0\nCircle,A,1,0,5\n"
    r = admin.post("/staff/seating/", {"file": SimpleUploadedFile("hall.csv", csv, "text/csv"), "venue": "Hall", "name": "Plan"})
    assert r.status_code == 302
    chart = SeatingChart.objects.get(venue__name="Hall", name="Plan")
    page = admin.get("/staff/seating/")
    assert "Plan" in page.content.decode() and "Seating" in page.content.decode()
    exported = admin.get(f"/staff/seating/{chart.pk}/export/")
    assert exported["Content-Disposition"].startswith("attachment")
    doc = json.loads(exported.content)
    assert [s["name"] for s in doc["sections"]] == ["Stalls", "Circle"] and Seat.objects.count() == 3


def test_a_bad_upload_says_where_and_writes_nothing(admin):
    doc = chart_document()
    doc["sections"][0]["seats"][2]["y"] = "front"
    r = admin.post("/staff/seating/", {"file": SimpleUploadedFile("plan.json", json.dumps(doc).encode(), "application/json")})
    assert r.status_code == 422
    assert "sections[0].seats[2].y" in r.content.decode() and "Nothing was imported" in r.content.decode()
    assert not SeatingChart.objects.exists()


def test_the_box_office_cannot_upload_charts(staff):
    r = staff.post("/staff/seating/", {"file": SimpleUploadedFile("x.csv", b"section,row,seat,x,y\n", "text/csv")})
    assert r.status_code in (302, 403)
    assert not SeatingChart.objects.exists()


def test_the_storefront_offers_reserved_seats_on_the_seat_map_and_a_quantity_form_holds_nothing():
    from tests.unit.seating_fixtures import make_reserved

    r = make_reserved()
    page = Client().get(f"/performances/{r.perf.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Add chosen seats to cart" in text and "How many tickets?" not in text
    post = Client().post(f"/performances/{r.perf.pk}/", {f"qty_{r.prices['Orchestra'].pk}": "2"})
    assert post.status_code == 422 and "Choose at least one seat" in post.content.decode()
    from wondertix.sales.models import Hold

    assert not Hold.objects.exists()
