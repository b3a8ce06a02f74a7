"""The seat-map editor's save: the whole chart checked by the import's validation, applied in
place, and refused (nothing written) when it would orphan a sold or held seat."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import chartfile
from wondertix.catalog.seating_models import Seat, SeatCategory, SeatingChart, Section
from wondertix.ops.models import AuditEntry
from wondertix.sales.services import CheckoutDetails, LineRequest, create_hold, sell

pytestmark = pytest.mark.django_db


def _client(role: str) -> Client:
    user = User.objects.create_user(f"{role}-editor", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin() -> Client:
    return _client("admin")


def _doc(chart: SeatingChart) -> dict:
    """What the editor sends back: the document it loaded (with ids)."""
    page = Client()
    page.force_login(User.objects.get(username="admin-editor"))
    html = page.get(f"/staff/seating/{chart.pk}/").content.decode()
    start = html.index('<script id="chart-data" type="application/json">') + len('<script id="chart-data" type="application/json">')
    return json.loads(html[start : html.index("</script>", start)])["chart"]


def _save(client: Client, chart: SeatingChart, doc: dict):
    return client.post(f"/staff/seating/{chart.pk}/save/", json.dumps(doc), content_type="application/json")


def _seat(doc: dict, section: str, row: str, label: str) -> dict:
    sec = next(s for s in doc["sections"] if s["name"] == section)
    return next(s for s in sec["seats"] if s["row"] == row and s["label"] == label)


def _snapshot(chart: SeatingChart) -> str:
    return chartfile.dumps(SeatingChart.objects.get(pk=chart.pk))


def test_a_valid_save_adds_moves_flags_and_renames_and_capacity_follows(admin, buyer, good_card):
    r = make_reserved()
    chart = r.perf.seating_chart
    sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))], CheckoutDetails(buyer=buyer, payment=good_card))
    doc = _doc(chart)
    # Rename a category sold by a price type (kept by its id), move and flag the sold seat,
    # add a row to a new section, delete an unsold seat.
    orchestra = next(c for c in doc["categories"] if c["name"] == "Orchestra")
    orchestra["name"] = "Stalls"
    for sec in doc["sections"]:
        for seat in sec["seats"]:
            if seat["category"] == "Orchestra":
                seat["category"] = "Stalls"
    sold = _seat(doc, "Orchestra", "A", "1")
    sold["x"], sold["y"], sold["flags"] = 40, 7, ["accessible"]
    doc["sections"][0]["seats"] = [s for s in doc["sections"][0]["seats"] if not (s["row"] == "C" and s["label"] == "8")]
    doc["sections"].append({"id": None, "name": "Box", "seats": [
        {"row": "A", "label": str(n), "x": 50 + n, "y": 0, "category": "Balcony", "flags": []} for n in (1, 2, 3)
    ]})
    answer = _save(admin, chart, doc)
    assert answer.status_code == 200, answer.content
    assert answer.json()["message"] == "Saved “Chart 1”: 3 seats added, 1 changed, 1 deleted."
    moved = Seat.objects.get(pk=r.seats["Orchestra/A/1"])  # the same row in the database: its ticket still points at it
    assert (moved.x, moved.y, moved.accessible, moved.category.name) == (40, 7, True, "Stalls")
    assert SeatCategory.objects.get(pk=orchestra["id"]).name == "Stalls"
    assert list(Section.objects.filter(chart=chart).values_list("name", flat=True)) == ["Orchestra", "Balcony", "Box"]
    r.perf.refresh_from_db()
    assert r.perf.capacity == 3 * 8 + 2 * 8 - 1 + 3
    assert AuditEntry.objects.filter(action="seating_chart.edited", object_id=str(chart.pk)).exists()
    # What was saved is what the export says: the editor's document round-trips.
    exported = json.loads(_snapshot(chart))
    assert [s["name"] for s in exported["sections"]] == ["Orchestra", "Balcony", "Box"]


def test_an_invalid_chart_is_refused_naming_the_field_and_nothing_is_written(admin):
    chart = make_reserved().perf.seating_chart
    before = _snapshot(chart)
    doc = _doc(chart)
    doc["sections"][1]["seats"][2]["x"] = "left"
    answer = _save(admin, chart, doc)
    assert answer.status_code == 422
    assert answer.json()["field"] == "sections[1].seats[2].x"
    doc = _doc(chart)
    doc["sections"][0]["seats"][0]["category"] = "Nosebleed"
    doc["sections"].append({"name": "Box", "seats": [{"row": "A", "label": "1", "x": 0, "y": 30, "category": "Balcony", "flags": []}]})
    answer = _save(admin, chart, doc)
    assert answer.status_code == 422 and answer.json()["field"] == "sections[0].seats[0].category"
    assert "Nothing was saved" in answer.json()["message"]
    assert _snapshot(chart) == before and not Section.objects.filter(name="Box").exists()
    assert _save(admin, chart, {"format": "nope"}).status_code == 422
    bad = admin.post(f"/staff/seating/{chart.pk}/save/", "{not json", content_type="application/json")
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_chart"


def test_deleting_a_sold_or_held_seat_is_refused_naming_the_seats_and_nothing_is_written(admin, buyer, good_card):
    r = make_reserved()
    chart = r.perf.seating_chart
    sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/B/3"],))], CheckoutDetails(buyer=buyer, payment=good_card))
    create_hold([LineRequest(r.perf.pk, r.prices["Balcony"].pk, 1, seat_ids=(r.seats["Balcony/A/2"],))])
    before = _snapshot(chart)
    doc = _doc(chart)
    doc["sections"][0]["seats"] = [s for s in doc["sections"][0]["seats"] if s["row"] != "B"]  # row B, with the sold seat
    doc["sections"][1]["seats"][0]["x"] = 99  # a change that would be fine alone
    del doc["sections"][1]  # the whole balcony, with the held seat
    answer = _save(admin, chart, doc)
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"] == "chart_in_use"
    assert body["seats"] == ["Balcony row A seat 2 (held)", "Orchestra row B seat 3 (sold)"]
    assert "Nothing was saved" in body["message"]
    assert _snapshot(chart) == before
    # Renumbering the sold seat is deleting it: refused too.
    doc = _doc(chart)
    _seat(doc, "Orchestra", "B", "3")["label"] = "30"
    assert _save(admin, chart, doc).status_code == 409
    assert _snapshot(chart) == before


def test_a_sold_seat_may_move_but_keeps_its_category(admin, buyer, good_card):
    """Decided: moving a sold seat or changing its flags is allowed (its ticket names the same
    section, row and seat); recategorising it is refused (its price was the old category's)."""
    r = make_reserved()
    chart = r.perf.seating_chart
    sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/A/5"],))], CheckoutDetails(buyer=buyer, payment=good_card))
    doc = _doc(chart)
    _seat(doc, "Orchestra", "A", "5")["category"] = "Balcony"
    _seat(doc, "Orchestra", "A", "6")["category"] = "Balcony"  # unsold: would be fine
    answer = _save(admin, chart, doc)
    assert answer.status_code == 409 and answer.json()["seats"] == ["Orchestra row A seat 5 (sold)"]
    assert Seat.objects.get(pk=r.seats["Orchestra/A/6"]).category.name == "Orchestra"
    doc = _doc(chart)
    _seat(doc, "Orchestra", "A", "5")["y"] = -3
    _seat(doc, "Orchestra", "A", "6")["category"] = "Balcony"
    assert _save(admin, chart, doc).status_code == 200
    assert Seat.objects.get(pk=r.seats["Orchestra/A/5"]).y == -3
    assert Seat.objects.get(pk=r.seats["Orchestra/A/6"]).category.name == "Balcony"


def test_a_category_a_price_type_sells_cannot_be_deleted(admin):
    r = make_reserved()
    chart = r.perf.seating_chart
    doc = _doc(chart)
    doc["categories"] = [c for c in doc["categories"] if c["name"] != "Balcony"]
    for seat in doc["sections"][1]["seats"]:
        seat["category"] = "Orchestra"
    answer = _save(admin, chart, doc)
    assert answer.status_code == 409 and "“Balcony” (sold by Balcony)" in answer.json()["message"]
    assert SeatCategory.objects.filter(chart=chart, name="Balcony").exists()


def test_a_standing_area_cannot_shrink_below_what_is_sold(admin, buyer, good_card):
    r = make_reserved(standing=30)
    chart = r.perf.seating_chart
    sell([LineRequest(r.perf.pk, r.prices["Standing"].pk, 5)], CheckoutDetails(buyer=buyer, payment=good_card))
    doc = _doc(chart)
    next(c for c in doc["categories"] if c["name"] == "Standing")["limit_per_performance"] = 4
    answer = _save(admin, chart, doc)
    assert answer.status_code == 422 and answer.json()["field"] == "categories[2].limit_per_performance"
    next(c for c in doc["categories"] if c["name"] == "Standing")["limit_per_performance"] = 5
    assert _save(admin, chart, doc).status_code == 200
    r.perf.refresh_from_db()
    assert r.perf.capacity == 3 * 8 + 2 * 8 + 5


@pytest.mark.parametrize("role", ["box_office", "usher"])
def test_only_admins_edit_charts(role, admin):
    chart = make_reserved().perf.seating_chart
    before = _snapshot(chart)
    doc = _doc(chart)
    doc["sections"] = []
    other = _client(role)
    assert other.get(f"/staff/seating/{chart.pk}/").status_code == 403
    assert _save(other, chart, doc).status_code == 403
    assert other.post(f"/staff/seating/{chart.pk}/duplicate/", {"name": "Copy"}).status_code == 403
    assert other.post("/staff/seating/new/", {"venue": "V", "name": "N"}).status_code == 403
    assert _save(Client(), chart, doc).status_code == 302  # anonymous: to the login page
    assert _snapshot(chart) == before and SeatingChart.objects.count() == 1


def test_duplicate_and_a_new_empty_chart(admin):
    chart = make_reserved().perf.seating_chart
    copy = admin.post(f"/staff/seating/{chart.pk}/duplicate/", {"name": "Main (summer)"})
    assert copy.status_code == 302
    dup = SeatingChart.objects.get(name="Main (summer)")
    assert copy["Location"] == f"/staff/seating/{dup.pk}/"
    assert json.loads(_snapshot(dup))["sections"] == json.loads(_snapshot(chart))["sections"]
    assert admin.post("/staff/seating/new/", {"venue": "Studio", "name": "Flat floor"}).status_code == 302
    new = SeatingChart.objects.get(name="Flat floor")
    assert new.venue.name == "Studio" and not Seat.objects.filter(section__chart=new).exists()
    refused = admin.post("/staff/seating/new/", {"venue": "", "name": "x"}, follow=True)
    assert "venue" in refused.content.decode() and SeatingChart.objects.count() == 3


def test_a_file_imported_into_a_chart_in_use_keeps_its_sold_seats(admin, buyer, good_card):
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = make_reserved()
    chart = r.perf.seating_chart
    sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/C/1"],))], CheckoutDetails(buyer=buyer, payment=good_card))
    before = _snapshot(chart)
    csv = b"section,row,seat,x,y,category\nOrchestra,A,1,0,0,Orchestra\n"
    page = admin.post(f"/staff/seating/{chart.pk}/import/", {"file": SimpleUploadedFile("c.csv", csv, "text/csv"), "venue": "Test Hall", "name": "Main"}, follow=True)
    assert "Orchestra row C seat 1 (sold)" in page.content.decode()
    assert _snapshot(chart) == before


def test_the_editor_page_draws_sold_seats_locked_and_says_the_chart_is_in_use(admin, buyer, good_card):
    r = make_reserved()
    sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))], CheckoutDetails(buyer=buyer, payment=good_card))
    html = admin.get(f"/staff/seating/{r.perf.seating_chart_id}/").content.decode()
    assert "Used by 1 performance" in html and "seat_editor.js" in html
    start = html.index('<script id="chart-data" type="application/json">') + len('<script id="chart-data" type="application/json">')
    data = json.loads(html[start : html.index("</script>", start)])
    assert data["locked"] == {"Orchestra\u0000A\u00001": "sold"}
    assert data["sold_categories"] == ["Balcony", "Orchestra"]
