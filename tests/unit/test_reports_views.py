"""Report pages, CSV exports and the reports API agree with each other and with the rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from wondertix.catalog.models import Season
from wondertix.ops import tokens
from wondertix.patrons import subscriptions as subs
from wondertix.reports import services
from wondertix.reports.tables import REPORTS
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refunds import DonationRefund, RefundRequest, TicketRefund, refund_order
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(make_performance, good_card, clerk):
    a = make_performance(capacity=10)
    b = make_performance(capacity=10, starts_in=timedelta(days=9))
    ada = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    bob = Buyer(first_name="Bob", last_name="Builder", email="bob@example.org")
    o1 = sell([LineRequest(a.pk, a.adult.pk, 3)], CheckoutDetails(buyer=ada, payment=good_card, donation_cents=5000))
    o2 = sell([LineRequest(b.pk, b.student.pk, 2)], CheckoutDetails(buyer=bob, payment=good_card, donation_cents=1000, donation_anonymous=True))
    sell([LineRequest(b.pk, b.adult.pk, 1)], CheckoutDetails(buyer=bob), channel=Order.BOX_OFFICE, staff=True, provider_name="cash")
    refund_order(o1.pk, RefundRequest(tickets=[TicketRefund(o1.tickets.first().pk)], donations=[DonationRefund(o1.donations.get().pk, 1500)]), idempotency_key="r1", actor=clerk)
    Ticket.objects.filter(pk=o2.tickets.first().pk).update(checked_in_at=timezone.now())
    season = Season.objects.create(name="S1", slug="s1", starts_on=timezone.localdate(), ends_on=timezone.localdate() + timedelta(days=60))
    pack = subs.save_type(subs.TypeInput(season.pk, "Four-pack", 9000, 4), actor=clerk)
    subs.sell_subscription(pack.pk, ada, payment=good_card)
    return {"a": a, "b": b}


def _page_table(html: str, slug: str) -> list[list[str]]:
    table = re.search(rf'<table class="report" id="report-{slug}">(.*?)</table>', html, re.S).group(1)
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        if cells != ["Nothing in this period."]:
            rows.append(cells)
    return rows


def _money(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    return sign * int(round(float(text.lstrip("-$").replace(",", "")) * 100))


def test_every_csv_export_parses_and_matches_its_page(seeded, staff):
    for slug in REPORTS:
        page = staff.get(f"/staff/reports/{slug}/")
        assert page.status_code == 200, slug
        shown = _page_table(page.content.decode(), slug)
        export = staff.get(f"/staff/reports/{slug}.csv")
        assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
        assert f'filename="{slug}.csv"' in export["Content-Disposition"]
        parsed = list(csv.reader(io.StringIO(export.content.decode())))
        table = REPORTS[slug][1](services.Period())
        assert parsed[0] == [h for h, _ in table.columns] == shown[0], slug
        assert len(parsed) == len(shown), slug
        for csv_row, page_row in zip(parsed[1:], shown[1:], strict=True):
            for (header, kind), c, p in zip(table.columns, csv_row, page_row, strict=True):
                if kind == "money":
                    assert _money(c) == _money(p), (slug, header, c, p)
                elif kind == "pct":
                    assert c + "%" == p
                else:
                    assert c == p, (slug, header)


def test_totals_match_the_seeded_rows(seeded):
    summary = services.summary(services.Period())
    assert summary.reconciles
    # 3 x $27 + 2 x $12 online, one $25 box-office ticket (no fee); gifts $50 + $10.
    assert summary.total.tickets.gross_cents == 3 * 2700 + 2 * 1200 + 2500
    assert summary.total.donations.gross_cents == 6000
    assert summary.total.refunded_cents == 2500 + 1500
    channel = {r.key: r for r in services.sales_by(services.Period(), "channel").rows}
    assert channel["box_office"].gross_cents == 2500 and channel["api"].tickets_sold == 5
    attendance = {a.performance_id: a for a in services.attendance(services.Period())}
    assert attendance[seeded["b"].pk].sold == 3 and attendance[seeded["b"].pk].checked_in == 1
    assert attendance[seeded["a"].pk].sold == 2


def test_date_filters_use_the_theater_day_and_bad_dates_are_refused(seeded, staff):
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    empty = services.summary(services.Period(date_to=yesterday))
    assert empty.total.gross_cents == 0
    assert services.summary(services.Period(date_from=today, date_to=today)).total.gross_cents == services.summary(services.Period()).total.gross_cents
    assert staff.get("/staff/reports/", {"from": "2026-13-01"}).status_code == 422
    assert staff.get("/staff/reports/refunds.csv", {"from": str(today), "to": str(yesterday)}).status_code == 422
    filtered = staff.get("/staff/reports/refunds.csv", {"from": str(yesterday), "to": str(yesterday)})
    assert len(list(csv.reader(io.StringIO(filtered.content.decode())))) == 2  # header + total only


def test_reports_api_returns_the_same_table(seeded, clerk):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}
    client = Client()
    summary = client.get("/api/v1/staff/reports/summary", **auth).json()
    assert summary["reconciles"] is True and summary["refunded_cents"] == 4000
    table = client.get("/api/v1/staff/reports/sales-by-event", **auth).json()
    assert table["total"][-1] == services.sales_by(services.Period(), "event").total.net_cents
    assert client.get("/api/v1/staff/reports/nope", **auth).status_code == 404
    assert client.get("/api/v1/staff/reports/summary", {"date_from": "2026-02-02", "date_to": "2026-01-01"}, **auth).status_code == 422


def test_csv_export_neutralizes_spreadsheet_formulas(make_performance, good_card, staff):
    evil = Buyer(first_name="=HYPERLINK(1)", last_name="X", email="x@example.org")
    perf = make_performance(capacity=5)
    sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=evil, payment=good_card, donation_cents=500, donation_comment="+cmd"))
    rows = list(csv.reader(io.StringIO(staff.get("/staff/reports/donations.csv").content.decode())))
    assert rows[1][1].startswith("'=") and rows[1][6] == "'+cmd"


@pytest.mark.parametrize("value", ["0", "1", "-1", "9999-12-31", "1969-12-31", "٢٠٢٦-٠١-٠١", "2026-02-30", "20260101"])
def test_nonsense_report_dates_are_refused_not_read_as_1970(clerk, staff, value):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}
    for path in ("/api/v1/staff/reports/summary", "/api/v1/staff/reports/refunds"):
        response = Client().get(path, {"date_to": value}, **auth)
        assert response.status_code == 422, (path, value, response.content[:200])
        assert response.json()["code"] == "invalid_request" and "date" in response.json()["message"].lower()
    page = staff.get("/staff/reports/", {"to": value})
    assert page.status_code == 422
    assert staff.get("/staff/reports/refunds.csv", {"from": value}).status_code == 422
