"""Each report as one table (columns + rows + total), shared by the page, the CSV export and
the staff API, so the three can never disagree."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wondertix.money import format_cents
from wondertix.reports import services as s

TEXT, INT, MONEY, PCT = "text", "int", "money", "pct"


@dataclass
class Table:
    slug: str
    title: str
    columns: list[tuple[str, str]]  # (header, kind)
    rows: list[list[Any]]
    total: list[Any] | None = None
    links: list[str | None] = field(default_factory=list)  # per row, optional staff link

    def display(self, value: Any, kind: str) -> str:
        if value is None:
            return ""
        if kind == MONEY:
            return format_cents(value)
        if kind == PCT:
            return f"{value}%"
        return str(value)

    def display_rows(self) -> list[dict[str, Any]]:
        links = self.links or [None] * len(self.rows)
        return [
            {"cells": [(self.display(v, k), k) for v, (_, k) in zip(row, self.columns, strict=True)], "link": link}
            for row, link in zip(self.rows, links, strict=True)
        ]

    def display_total(self) -> list[tuple[str, str]] | None:
        if self.total is None:
            return None
        return [(self.display(v, k), k) for v, (_, k) in zip(self.total, self.columns, strict=True)]

    def csv_value(self, value: Any, kind: str) -> str:
        if value is None:
            return ""
        if kind == MONEY:
            sign = "-" if value < 0 else ""
            return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
        return str(value)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([h for h, _ in self.columns])
        for row in self.rows + ([self.total] if self.total else []):
            writer.writerow([_safe(self.csv_value(v, k)) for v, (_, k) in zip(row, self.columns, strict=True)])
        return out.getvalue()


def _safe(text: str) -> str:
    """Keep spreadsheet formulas out of exported text (CSV injection)."""
    if text and text[0] in "=+@\t\r" or (text.startswith("-") and not _is_number(text)):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


SALES_COLUMNS = [
    ("Tickets sold", INT), ("Tickets refunded", INT), ("Face value", MONEY), ("Fees", MONEY), ("Gross", MONEY), ("Refunded", MONEY), ("Net", MONEY),
]


def _sales_values(r: s.SalesRow) -> list[Any]:
    return [r.tickets_sold, r.tickets_refunded, r.face_cents, r.fees_cents, r.gross_cents, r.refunded_cents, r.net_cents]


def sales_table(period: s.Period, dimension: str) -> Table:
    report = s.sales_by(period, dimension)
    label = s.DIMENSIONS[dimension]
    return Table(
        slug=f"sales-by-{dimension}",
        title=f"Sales by {label.lower()}",
        columns=[(label, TEXT), *SALES_COLUMNS],
        rows=[[r.label, *_sales_values(r)] for r in report.rows],
        total=["Total", *_sales_values(report.total)],
    )


def summary_table(period: s.Period) -> Table:
    summ = s.summary(period)
    cols = [("Channel", TEXT), ("Tickets", MONEY), ("Donations", MONEY), ("Subscriptions", MONEY), ("Gross", MONEY), ("Refunded", MONEY), ("Net", MONEY)]

    def vals(c: s.ChannelRow) -> list[Any]:
        return [c.label, c.tickets.gross_cents, c.donations.gross_cents, c.subscriptions.gross_cents, c.gross_cents, c.refunded_cents, c.net_cents]

    return Table("summary", "Money by channel", cols, [vals(c) for c in summ.channels], total=vals(summ.total))


def donations_table(period: s.Period) -> Table:
    rows = s.donation_rows(period, acknowledgement=True)
    cols = [("Date", TEXT), ("Donor", TEXT), ("Email", TEXT), ("Amount", MONEY), ("Refunded", MONEY), ("Net", MONEY), ("Comment", TEXT), ("Order", TEXT)]
    return Table(
        "donations", "Donations", cols,
        [[r.created_at.strftime("%Y-%m-%d %H:%M"), r.donor, r.email, r.amount_cents, r.refunded_cents, r.net_cents, r.comment, r.order_reference] for r in rows],
        total=["Total", f"{len(rows)} gift{'s' if len(rows) != 1 else ''}", "", sum(r.amount_cents for r in rows),
               sum(r.refunded_cents for r in rows), sum(r.net_cents for r in rows), "", ""],
        links=[f"/staff/contacts/{r.patron_id}/" if r.patron_id else None for r in rows],
    )


def refunds_table(period: s.Period) -> Table:
    rows = s.refund_rows(period)
    cols = [("Date", TEXT), ("Order", TEXT), ("Buyer", TEXT), ("Method", TEXT), ("Tickets", MONEY), ("Fees", MONEY),
            ("Donations", MONEY), ("Subscriptions", MONEY), ("Amount", MONEY), ("By", TEXT), ("Reason", TEXT)]
    return Table(
        "refunds", "Refunds", cols,
        [[r.created_at.strftime("%Y-%m-%d %H:%M"), r.order_reference, r.buyer, r.method, r.tickets_cents, r.fees_cents,
          r.donations_cents, r.subscriptions_cents, r.amount_cents, r.by, r.reason] for r in rows],
        total=["Total", f"{len(rows)} refund{'s' if len(rows) != 1 else ''}", "", "", sum(r.tickets_cents for r in rows), sum(r.fees_cents for r in rows),
               sum(r.donations_cents for r in rows), sum(r.subscriptions_cents for r in rows), sum(r.amount_cents for r in rows), "", ""],
        links=[f"/staff/sales/orders/{r.order_id}/" for r in rows],
    )


def attendance_table(period: s.Period) -> Table:
    rows = s.attendance(period)
    cols = [("Performance", TEXT), ("Capacity", INT), ("Sold", INT), ("Checked in", INT), ("No-shows", INT), ("Attendance", PCT)]
    sold = sum(r.sold for r in rows)
    checked = sum(r.checked_in for r in rows)
    return Table(
        "attendance", "Attendance (checked in vs sold)", cols,
        [[r.label, r.capacity, r.sold, r.checked_in, r.no_shows, r.percent] for r in rows],
        total=["Total", sum(r.capacity for r in rows), sold, checked, sold - checked, (checked * 100 + sold // 2) // sold if sold else 0],
        links=[f"/staff/door/{r.performance_id}/" for r in rows],
    )


def subscriptions_table(period: s.Period) -> Table:
    rows = s.subscription_rows(period)
    cols = [("Subscription", TEXT), ("Sold", INT), ("Refunded", INT), ("Money taken", MONEY), ("Tickets redeemed", INT), ("Tickets left", INT)]
    return Table(
        "subscriptions", "Subscriptions", cols,
        [[r["label"], r["sold"], r["refunded"], r["gross_cents"], r["redeemed"], r["remaining"]] for r in rows],
        total=["Total", sum(r["sold"] for r in rows), sum(r["refunded"] for r in rows), sum(r["gross_cents"] for r in rows),
               sum(r["redeemed"] for r in rows), sum(r["remaining"] for r in rows)],
    )


def _sales_for(dimension: str, period: s.Period) -> Table:
    return sales_table(period, dimension)


REPORTS: dict[str, tuple[str, Callable[[s.Period], Table]]] = {
    "summary": ("Money by channel", summary_table),
    **{f"sales-by-{d}": (f"Sales by {label.lower()}", functools.partial(_sales_for, d)) for d, label in s.DIMENSIONS.items()},
    "donations": ("Donations", donations_table),
    "refunds": ("Refunds", refunds_table),
    "attendance": ("Attendance", attendance_table),
    "subscriptions": ("Subscriptions", subscriptions_table),
}
