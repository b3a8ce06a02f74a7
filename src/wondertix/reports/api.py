"""Staff API for reports (token-authenticated; see wondertix.api.auth).

Every report is the same table as its page and CSV export: `columns` (header + kind) and
`rows`/`total` as raw values, money in integer cents. Dates filter in the theater's zone.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import BeforeValidator

from wondertix.api.auth import StaffToken
from wondertix.api.schemas import answers
from wondertix.reports import services
from wondertix.reports.tables import REPORTS
from wondertix.sales import errors

router = Router(tags=["staff"])
auth = StaffToken("box_office")


def _report_date(value: object) -> object:
    # Only 'YYYY-MM-DD' from 2000 to 2999: lax parsing would read `date_to=0` as 1970-01-01.
    return value if isinstance(value, date) else services.parse_report_date(value)


ReportDate = Annotated[date, BeforeValidator(_report_date)]


class PeriodIn(Schema):
    date_from: ReportDate | None = Field(None, description="First day included, YYYY-MM-DD, in the theater's zone (2000-01-01 to 2999-12-31)", examples=["2026-11-01"])
    date_to: ReportDate | None = Field(None, description="Last day included, YYYY-MM-DD", examples=["2026-11-30"])


class ColumnOut(Schema):
    header: str
    kind: str


class TableOut(Schema):
    report: str
    title: str
    date_from: date | None
    date_to: date | None
    columns: list[ColumnOut]
    rows: list[list[Any]]
    total: list[Any] | None


class SummaryOut(Schema):
    date_from: date | None
    date_to: date | None
    tickets_gross_cents: int
    tickets_refunded_cents: int
    donations_gross_cents: int
    donations_refunded_cents: int
    subscriptions_gross_cents: int
    subscriptions_refunded_cents: int
    gross_cents: int
    refunded_cents: int
    net_cents: int
    charges_cents: int
    payments_refunded_cents: int
    net_payments_cents: int
    reconciles: bool


def _period(q: PeriodIn) -> services.Period:
    if q.date_from and q.date_to and q.date_from > q.date_to:
        raise errors.invalid("invalid_period", "date_from is after date_to.", field="date_from")
    return services.Period(q.date_from, q.date_to)


@router.get("/summary", response={200: SummaryOut, **answers(401, 422, 503)}, auth=auth, summary="Money in and out, and whether it reconciles with payments")
def summary(request: HttpRequest, q: Query[PeriodIn]) -> dict:
    period = _period(q)
    s = services.summary(period)
    t = s.total
    return {
        "date_from": period.date_from, "date_to": period.date_to,
        "tickets_gross_cents": t.tickets.gross_cents, "tickets_refunded_cents": t.tickets.refunded_cents,
        "donations_gross_cents": t.donations.gross_cents, "donations_refunded_cents": t.donations.refunded_cents,
        "subscriptions_gross_cents": t.subscriptions.gross_cents, "subscriptions_refunded_cents": t.subscriptions.refunded_cents,
        "gross_cents": t.gross_cents, "refunded_cents": t.refunded_cents, "net_cents": t.net_cents,
        "charges_cents": s.charges_cents, "payments_refunded_cents": s.payments_refunded_cents,
        "net_payments_cents": s.net_payments_cents, "reconciles": s.reconciles,
    }


@router.get("/{report}", response={200: TableOut, **answers(401, 404, 422, 503)}, auth=auth,
            summary="One report as a table: summary, sales-by-{performance,event,season,price_type,channel}, donations, refunds, attendance, subscriptions")
def report(request: HttpRequest, report: str, q: Query[PeriodIn]) -> dict:
    if report not in REPORTS:
        raise errors.not_found("unknown_report", f"There is no report “{report}”. Reports: {', '.join(REPORTS)}.")
    period = _period(q)
    table = REPORTS[report][1](period)
    return {
        "report": report, "title": table.title, "date_from": period.date_from, "date_to": period.date_to,
        "columns": [{"header": h, "kind": k} for h, k in table.columns], "rows": table.rows, "total": table.total,
    }
