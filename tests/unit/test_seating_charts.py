"""Seating charts as files (JSON round trip, CSV, refusals naming the fault) and best available."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from tests.support.seating import chart_document
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import chartfile, seating
from wondertix.catalog.models import Seat, SeatCategory, SeatingChart, Section, Venue
from wondertix.sales.errors import SaleError
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def _rows(chart):
    return sorted(
        (s.section.name, s.row, s.label, s.x, s.y, s.category.name, s.accessible, s.companion, s.restricted_view, s.house_seat)
        for s in Seat.objects.filter(section__chart=chart).select_related("section", "category")
    )


def test_export_then_import_gives_the_identical_chart(tmp_path):
    doc = chart_document(name="Original", aisle_after=3, standing=25, flags={("Orchestra", "A", "1"): ["accessible", "house_seat"], ("Balcony", "B", "8"): ["restricted_view"]})
    original = chartfile.save(chartfile.parse_json(json.dumps(doc)))
    out = tmp_path / "chart.json"
    call_command("seating_chart", "export", "--venue", "Test Hall", "--name", "Original", "-o", str(out))
    copy_doc = json.loads(out.read_text())
    copy_doc["venue"] = "Other Hall"
    (tmp_path / "copy.json").write_text(json.dumps(copy_doc))
    call_command("seating_chart", "import", str(tmp_path / "copy.json"))
    copy = SeatingChart.objects.get(venue__name="Other Hall")
    assert _rows(copy) == _rows(original)
    again = json.loads(chartfile.dumps(copy))
    assert again == {**json.loads(out.read_text()), "venue": "Other Hall"}
    assert seating.chart_capacity(copy) == seating.chart_capacity(original) == 40 + 25


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d["sections"][1]["seats"][2].__setitem__("x", 1.5), "sections[1].seats[2].x"),
        (lambda d: d["sections"][0]["seats"][0].__setitem__("category", "Nosebleed"), "sections[0].seats[0].category"),
        (lambda d: d["sections"][0]["seats"][1].__setitem__("label", "1"), "sections[0].seats[1].label"),
        (lambda d: d["sections"][0]["seats"][1].__setitem__("flags", ["wobbly"]), "sections[0].seats[1].flags[0]"),
        (lambda d: d["sections"][0].__setitem__("colour", "red"), "sections[0].colour"),
        (lambda d: d.__setitem__("version", 2), "version"),
        (lambda d: d["sections"].append({"name": "Orchestra", "seats": []}), "sections[2].name"),
        (lambda d: d["categories"].append({"name": "Pit", "standing": True}), "categories[2].limit_per_performance"),
    ],
)
def test_a_malformed_json_chart_is_refused_naming_the_field_and_writes_nothing(change, where):
    doc = chart_document()
    change(doc)
    with pytest.raises(chartfile.ChartFileError) as exc:
        chartfile.save(chartfile.parse_json(json.dumps(doc)))
    assert exc.value.where == where
    assert not Seat.objects.exists() and not SeatingChart.objects.exists() and not Venue.objects.exists()


def test_broken_json_is_refused_with_its_line():
    text = json.dumps(chart_document(), indent=1).replace('"rank": 2', '"rank" 2', 1)
    with pytest.raises(chartfile.ChartFileError) as exc:
        chartfile.parse_json(text)
    assert exc.value.where.startswith("line ")
    line = int(exc.value.where.split()[1].rstrip(","))
    assert '"rank" 2' in text.splitlines()[line - 1]


CSV = """section,row,seat,x,y
Orchestra,A,1,0,0
Orchestra,A,2,1,0
Orchestra,A,3,2,0
Balcony,A,1,0,10
Balcony,A,2,1,10
"""


def test_a_csv_chart_imports_with_one_category_per_section(tmp_path):
    path = tmp_path / "seats.csv"
    path.write_text(CSV)
    call_command("seating_chart", "import", str(path), "--venue", "Barn", "--name", "Summer")
    chart = SeatingChart.objects.get(name="Summer")
    assert [c.name for c in SeatCategory.objects.filter(chart=chart)] == ["Orchestra", "Balcony"]
    assert [s.name for s in Section.objects.filter(chart=chart)] == ["Orchestra", "Balcony"]
    assert Seat.objects.filter(section__chart=chart).count() == 5


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (CSV.replace("Orchestra,A,3,2,0", "Orchestra,A,3,two,0"), "line 4, field x"),
        (CSV.replace("Balcony,A,2,1,10", "Balcony,A,2,1"), "line 6"),
        (CSV.replace("section,row,seat", "section,rank,seat"), "line 1"),
        (CSV.replace("Orchestra,A,2,1,0", "Orchestra,,2,1,0"), "line 3, field row"),
        ("", "line 1"),
    ],
)
def test_a_malformed_csv_is_refused_naming_the_line_and_writes_nothing(tmp_path, text, where):
    path = tmp_path / "seats.csv"
    path.write_text(text)
    with pytest.raises(CommandError) as exc:
        call_command("seating_chart", "import", str(path), "--venue", "Barn", "--name", "Summer")
    assert f": {where}" in str(exc.value) and "nothing was imported" in str(exc.value)
    assert not Seat.objects.exists() and not SeatingChart.objects.exists()


def test_a_duplicate_row_and_seat_in_csv_names_the_seat(tmp_path):
    path = tmp_path / "seats.csv"
    path.write_text(CSV + "Orchestra,A,2,5,0\n")
    with pytest.raises(CommandError) as exc:
        call_command("seating_chart", "import", str(path), "--venue", "Barn", "--name", "Summer")
    assert "row A seat 2 appears twice" in str(exc.value)
    assert not Seat.objects.exists()


# ---------------------------------------------------------------- best available


def _sell(r, category, labels):
    ids = tuple(r.seats[label] for label in labels)
    buyer = Buyer(first_name="A", last_name="B", email="ab@example.org")
    from wondertix.payments.providers.base import PaymentDetails

    sell([LineRequest(r.perf.pk, r.prices[category].pk, len(ids), seat_ids=ids)],
         CheckoutDetails(buyer=buyer, payment=PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")), staff=True)


def _labels(r, ids):
    names = {v: k for k, v in r.seats.items()}
    return [names[i] for i in ids]


def test_best_available_4_is_4_adjacent_seats_in_the_best_category():
    r = make_reserved()
    best = seating.best_available(r.perf, 4)
    assert best.together
    assert _labels(r, best.seat_ids) == ["Orchestra/A/3", "Orchestra/A/4", "Orchestra/A/5", "Orchestra/A/6"]


def test_best_available_skips_taken_seats_and_aisles():
    r = make_reserved(aisle_after=4, sections=[("Orchestra", "Orchestra", 2, 8), ("Balcony", "Balcony", 1, 8)])
    # Row A: 1-4 | aisle | 5-8; seat 6 sold: no block of 4 in row A (1-4 is one, but 5,7,8 are broken).
    _sell(r, "Orchestra", ["Orchestra/A/6"])
    best = seating.best_available(r.perf, 4)
    assert _labels(r, best.seat_ids) == ["Orchestra/A/1", "Orchestra/A/2", "Orchestra/A/3", "Orchestra/A/4"]
    _sell(r, "Orchestra", ["Orchestra/A/2"])
    # Row A has no 4 together any more (an aisle is not adjacency): row B.
    assert _labels(r, seating.best_available(r.perf, 4).seat_ids)[0].startswith("Orchestra/B/")


def test_best_available_moves_to_the_next_category_when_the_best_has_no_block():
    r = make_reserved(sections=[("Orchestra", "Orchestra", 1, 6), ("Balcony", "Balcony", 1, 6)])
    _sell(r, "Orchestra", ["Orchestra/A/3"])
    best = seating.best_available(r.perf, 4)
    assert best.together and best.category_id == r.prices["Balcony"].seat_category_id
    assert "Balcony" in best.message


def test_best_available_says_none_together_and_offers_split_seats():
    r = make_reserved(sections=[("Orchestra", "Orchestra", 2, 4)])
    _sell(r, "Orchestra", ["Orchestra/A/2", "Orchestra/B/3"])
    best = seating.best_available(r.perf, 4)
    assert not best.together
    assert "No 4 seats are left together" in best.message
    assert len(best.seat_ids) == 4 and len(set(best.seat_ids)) == 4
    assert set(_labels(r, best.seat_ids)) == {"Orchestra/A/1", "Orchestra/A/3", "Orchestra/A/4", "Orchestra/B/1"}


def test_best_available_never_offers_house_seats_online_and_says_sold_out():
    r = make_reserved(sections=[("Orchestra", "Orchestra", 1, 3)], flags={("Orchestra", "A", "2"): ["house_seat"]})
    assert _labels(r, seating.best_available(r.perf, 2).seat_ids) == ["Orchestra/A/1", "Orchestra/A/3"]
    assert seating.best_available(r.perf, 3, staff=True).together
    with pytest.raises(SaleError) as exc:
        seating.best_available(r.perf, 3)
    assert exc.value.code == "sold_out"
