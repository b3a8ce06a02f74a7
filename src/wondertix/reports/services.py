"""Reports: every figure is a sum of underlying rows, in integer cents, read-only.

Money is counted where it moved, dated in the theater's time zone:

- a ticket sale counts on its order's payment date; an exchange counts on its own date as the
  new ticket sold (+) and the old ticket taken back (−), so the difference lands on that day;
- a refund counts on the refund's date, against the ticket / donation / subscription it gave
  money back for.

With that, for any period: ticket sales + donations + subscriptions − refunds equals the
payments taken minus the payments given back (`Summary.reconciles`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from wondertix.catalog.models import Performance
from wondertix.patrons.models import Donation, Subscription
from wondertix.payments.models import Payment
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange, ExchangeItem, Refund, RefundItem

SOLD_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED)
CHANNEL_LABELS = dict(Order.CHANNEL_CHOICES)
DIMENSIONS = {
    "performance": "Performance",
    "event": "Event",
    "season": "Season",
    "price_type": "Price type",
    "channel": "Channel",
}


#: Report dates outside these are a typing mistake (or `date_to=0`), refused, never read as 1970.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2999, 12, 31)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_report_date(text: object) -> date:
    """'YYYY-MM-DD' (ASCII digits, a real date from 2000 to 2999) -> date; ValueError otherwise."""
    raw = text.strip() if isinstance(text, str) else ""
    if not _ISO_DATE.fullmatch(raw):
        shown = str(text)[:20]
        raise ValueError(f"“{shown}” is not a date; use YYYY-MM-DD, for example {EARLIEST_DATE.replace(year=2026).isoformat()}.")
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"“{raw}” is not a date in the calendar.") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"Report dates run from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}.")
    return value


@dataclass(frozen=True)
class Period:
    """Inclusive dates in the theater's zone; None = unbounded."""

    date_from: date | None = None
    date_to: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        zone = timezone.get_current_timezone()
        start = datetime.combine(self.date_from, time.min, tzinfo=zone) if self.date_from else None
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=zone) if self.date_to else None
        return start, end

    def apply(self, qs: QuerySet, field_name: str) -> QuerySet:
        start, end = self.bounds()
        if start is not None:
            qs = qs.filter(**{f"{field_name}__gte": start})
        if end is not None:
            qs = qs.filter(**{f"{field_name}__lt": end})
        return qs

    def label(self) -> str:
        if not self.date_from and not self.date_to:
            return "All dates"
        return f"{self.date_from or '…'} to {self.date_to or '…'}"


TICKET_FIELDS = (
    "id", "performance_id", "performance__starts_at", "performance__event_id", "performance__event__title",
    "performance__event__season_id", "performance__event__season__name", "price_type_id", "price_type__name",
    "order__channel", "price_cents", "fee_cents", "discount_cents",
)


def _key(t: dict[str, Any], dimension: str) -> tuple[str, str, Any]:
    """(key, label, sort) of a ticket row for a dimension."""
    if dimension == "performance":
        local = timezone.localtime(t["performance__starts_at"])
        return str(t["performance_id"]), f"{t['performance__event__title']} — {local:%Y-%m-%d %H:%M}", (local, t["performance_id"])
    if dimension == "event":
        return str(t["performance__event_id"]), t["performance__event__title"], (t["performance__event__title"], t["performance__event_id"])
    if dimension == "season":
        sid = t["performance__event__season_id"]
        name = t["performance__event__season__name"] or "No season"
        return str(sid or 0), name, (sid is None, name)
    if dimension == "price_type":
        label = f"{t['performance__event__title']} · {t['price_type__name']}"
        return str(t["price_type_id"]), label, (label, t["price_type_id"])
    if dimension == "channel":
        return t["order__channel"], CHANNEL_LABELS.get(t["order__channel"], t["order__channel"]), t["order__channel"]
    raise ValueError(f"Unknown report dimension {dimension!r}")


@dataclass
class SalesRow:
    key: str
    label: str
    tickets_sold: int = 0
    tickets_refunded: int = 0
    face_cents: int = 0
    fees_cents: int = 0
    refunded_cents: int = 0
    sort: Any = None

    @property
    def gross_cents(self) -> int:
        return self.face_cents + self.fees_cents

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents

    def add(self, other: SalesRow) -> None:
        self.tickets_sold += other.tickets_sold
        self.tickets_refunded += other.tickets_refunded
        self.face_cents += other.face_cents
        self.fees_cents += other.fees_cents
        self.refunded_cents += other.refunded_cents


@dataclass
class SalesReport:
    dimension: str
    period: Period
    rows: list[SalesRow]
    total: SalesRow


def _ticket_movements(period: Period) -> tuple[list[tuple[int, dict]], list[tuple[dict, int, int, bool]]]:
    """Ticket sales (sign, ticket row) and ticket refunds (ticket row, face, fee, seat returned)."""
    sold: list[tuple[int, dict]] = []
    originals = period.apply(
        Ticket.objects.filter(order__status__in=SOLD_STATUSES, issued_by_exchange__isnull=True), "order__paid_at"
    ).values(*TICKET_FIELDS)
    sold.extend((1, row) for row in originals)
    moves = list(
        period.apply(ExchangeItem.objects.filter(exchange__order__status__in=SOLD_STATUSES, exchange__status=Exchange.SUCCEEDED), "exchange__created_at").values_list("old_ticket_id", "new_ticket_id")
    )
    refunds = list(
        period.apply(RefundItem.objects.filter(ticket__isnull=False, refund__status=Refund.SUCCEEDED), "refund__created_at").values_list("ticket_id", "amount_cents", "fee_cents", "seat_returned")
    )
    wanted = {i for pair in moves for i in pair} | {r[0] for r in refunds}
    rows = {row["id"]: row for row in Ticket.objects.filter(pk__in=wanted).values(*TICKET_FIELDS)} if wanted else {}
    for old_id, new_id in moves:
        sold.append((-1, rows[old_id]))
        sold.append((1, rows[new_id]))
    refunded = [(rows[t], face, fee, seat) for t, face, fee, seat in refunds]
    return sold, refunded


def sales_by(period: Period, dimension: str) -> SalesReport:
    """Ticket sales grouped by performance, event, season, price type or channel."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"Unknown report dimension {dimension!r}")
    sold, refunded = _ticket_movements(period)
    rows: dict[str, SalesRow] = {}

    def row_for(t: dict) -> SalesRow:
        key, label, sort = _key(t, dimension)
        if key not in rows:
            rows[key] = SalesRow(key, label, sort=sort)
        return rows[key]

    for sign, t in sold:
        r = row_for(t)
        r.tickets_sold += sign
        r.face_cents += sign * (t["price_cents"] - t["discount_cents"])
        r.fees_cents += sign * t["fee_cents"]
    for t, face, fee, seat in refunded:
        r = row_for(t)
        r.refunded_cents += face + fee
        r.tickets_refunded += 1 if seat else 0
    ordered = sorted(rows.values(), key=lambda r: (str(r.sort), r.key))
    total = SalesRow("total", "Total")
    for r in ordered:
        total.add(r)
    return SalesReport(dimension, period, ordered, total)


# ---------------------------------------------------------------------------- the summary


@dataclass
class MoneyLine:
    gross_cents: int = 0
    refunded_cents: int = 0

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents


@dataclass
class ChannelRow:
    channel: str
    label: str
    tickets: MoneyLine = field(default_factory=MoneyLine)
    donations: MoneyLine = field(default_factory=MoneyLine)
    subscriptions: MoneyLine = field(default_factory=MoneyLine)

    @property
    def gross_cents(self) -> int:
        return self.tickets.gross_cents + self.donations.gross_cents + self.subscriptions.gross_cents

    @property
    def refunded_cents(self) -> int:
        return self.tickets.refunded_cents + self.donations.refunded_cents + self.subscriptions.refunded_cents

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.refunded_cents


@dataclass
class Summary:
    period: Period
    channels: list[ChannelRow]
    total: ChannelRow
    refunds_cents: int
    refund_count: int
    charges_cents: int
    payments_refunded_cents: int

    @property
    def net_payments_cents(self) -> int:
        return self.charges_cents - self.payments_refunded_cents

    @property
    def reconciles(self) -> bool:
        return self.total.net_cents == self.net_payments_cents and self.total.refunded_cents == self.refunds_cents


def summary(period: Period) -> Summary:
    channels: dict[str, ChannelRow] = {c: ChannelRow(c, label) for c, label in Order.CHANNEL_CHOICES}
    sold, refunded = _ticket_movements(period)
    for sign, t in sold:
        channels[t["order__channel"]].tickets.gross_cents += sign * (t["price_cents"] - t["discount_cents"] + t["fee_cents"])
    for t, face, fee, _seat in refunded:
        channels[t["order__channel"]].tickets.refunded_cents += face + fee
    donations = period.apply(Donation.objects.filter(order__status__in=SOLD_STATUSES), "order__paid_at")
    for row in donations.values("order__channel").annotate(n=Sum("amount_cents")):
        channels[row["order__channel"]].donations.gross_cents += row["n"]
    subs = period.apply(Subscription.objects.filter(order__status__in=SOLD_STATUSES), "order__paid_at")
    for row in subs.values("order__channel").annotate(n=Sum("price_cents")):
        channels[row["order__channel"]].subscriptions.gross_cents += row["n"]
    items = period.apply(RefundItem.objects.filter(refund__status=Refund.SUCCEEDED), "refund__created_at")
    for row in items.filter(donation__isnull=False).values("refund__order__channel").annotate(n=Sum("amount_cents")):
        channels[row["refund__order__channel"]].donations.refunded_cents += row["n"]
    for row in items.filter(subscription__isnull=False).values("refund__order__channel").annotate(n=Sum("amount_cents")):
        channels[row["refund__order__channel"]].subscriptions.refunded_cents += row["n"]
    total = ChannelRow("total", "Total")
    for c in channels.values():
        for part in ("tickets", "donations", "subscriptions"):
            getattr(total, part).gross_cents += getattr(c, part).gross_cents
            getattr(total, part).refunded_cents += getattr(c, part).refunded_cents
    refunds = period.apply(Refund.objects.filter(status=Refund.SUCCEEDED), "created_at").aggregate(n=Sum("amount_cents"), c=Count("id"))
    payments = period.apply(Payment.objects.filter(status=Payment.SUCCEEDED), "created_at")
    pay = payments.aggregate(charged=Sum("amount_cents", filter=Q(kind=Payment.CHARGE)), refunded=Sum("amount_cents", filter=Q(kind=Payment.REFUND)))
    return Summary(
        period=period,
        channels=[c for c in channels.values()],
        total=total,
        refunds_cents=refunds["n"] or 0,
        refund_count=refunds["c"] or 0,
        charges_cents=pay["charged"] or 0,
        payments_refunded_cents=pay["refunded"] or 0,
    )


# ---------------------------------------------------------------------------- lists


@dataclass
class DonationRow:
    donation_id: int
    created_at: datetime
    donor: str
    email: str
    patron_id: int | None
    amount_cents: int
    refunded_cents: int
    comment: str
    order_reference: str
    anonymous: bool

    @property
    def net_cents(self) -> int:
        return self.amount_cents - self.refunded_cents


def donation_rows(period: Period, *, acknowledgement: bool = True) -> list[DonationRow]:
    """Gifts in the period. For acknowledgement (lists and exports), anonymous donors are
    shown as "Anonymous" with no email — the contact record still knows who gave."""
    qs = period.apply(
        Donation.objects.filter(Q(order__isnull=True) | Q(order__status__in=SOLD_STATUSES)).select_related("patron", "order"), "created_at"
    ).order_by("created_at", "id")
    out = []
    for d in qs:
        hidden = acknowledgement and (d.anonymous or d.patron is None)
        out.append(
            DonationRow(
                donation_id=d.pk,
                created_at=timezone.localtime(d.created_at),
                donor="Anonymous" if hidden else d.patron.full_name,  # type: ignore[union-attr]
                email="" if hidden else d.patron.email,  # type: ignore[union-attr]
                patron_id=None if hidden else d.patron_id,
                amount_cents=d.amount_cents,
                refunded_cents=d.refunded_cents,
                comment=d.comment,
                order_reference=d.order.reference if d.order else "",
                anonymous=d.anonymous,
            )
        )
    return out


@dataclass
class RefundRow:
    refund_id: int
    created_at: datetime
    order_id: int
    order_reference: str
    buyer: str
    method: str
    tickets_cents: int
    fees_cents: int
    donations_cents: int
    subscriptions_cents: int
    amount_cents: int
    by: str
    reason: str


def refund_rows(period: Period) -> list[RefundRow]:
    qs = period.apply(Refund.objects.filter(status=Refund.SUCCEEDED).select_related("order", "created_by"), "created_at").order_by("created_at", "id")
    return [
        RefundRow(
            refund_id=r.pk,
            created_at=timezone.localtime(r.created_at),
            order_id=r.order_id,
            order_reference=r.order.reference,
            buyer=r.order.buyer_name,
            method=r.get_method_display(),
            tickets_cents=r.tickets_cents,
            fees_cents=r.fees_cents,
            donations_cents=r.donations_cents,
            subscriptions_cents=r.subscriptions_cents,
            amount_cents=r.amount_cents,
            by=r.created_by.get_username() if r.created_by else "",
            reason=r.reason,
        )
        for r in qs
    ]


@dataclass
class AttendanceRow:
    performance_id: int
    label: str
    starts_at: datetime
    capacity: int
    sold: int
    checked_in: int

    @property
    def no_shows(self) -> int:
        return self.sold - self.checked_in

    @property
    def percent(self) -> int:
        return (self.checked_in * 100 + self.sold // 2) // self.sold if self.sold else 0


def attendance(period: Period) -> list[AttendanceRow]:
    """Checked in vs sold, per performance whose curtain falls in the period."""
    perfs = period.apply(Performance.objects.select_related("event"), "starts_at").annotate(
        sold=Count("tickets", filter=Q(tickets__status=Ticket.VALID)),
        checked=Count("tickets", filter=Q(tickets__status=Ticket.VALID, tickets__checked_in_at__isnull=False)),
    ).order_by("starts_at", "id")
    return [
        AttendanceRow(p.pk, str(p), timezone.localtime(p.starts_at), p.capacity, p.sold, p.checked)  # type: ignore[attr-defined]
        for p in perfs
    ]


def subscription_rows(period: Period) -> list[dict[str, Any]]:
    """Subscriptions sold per type: count, money, redemptions used and left."""
    qs = period.apply(Subscription.objects.filter(order__status__in=SOLD_STATUSES), "order__paid_at")
    grouped: dict[int, dict[str, Any]] = defaultdict(lambda: {"sold": 0, "gross_cents": 0, "refunded": 0, "remaining": 0, "included": 0})
    names: dict[int, str] = {}
    for s in qs.select_related("subscription_type__season"):
        g = grouped[s.subscription_type_id]
        names[s.subscription_type_id] = f"{s.subscription_type.season.name} · {s.subscription_type.name}"
        g["sold"] += 1
        g["gross_cents"] += s.price_cents
        g["refunded"] += 1 if s.status == Subscription.REFUNDED else 0
        g["remaining"] += s.remaining
        g["included"] += s.tickets_included if s.status == Subscription.ACTIVE else 0
    return [{"type_id": k, "label": names[k], **v, "redeemed": v["included"] - v["remaining"]} for k, v in sorted(grouped.items(), key=lambda kv: names[kv[0]])]
