"""Seating charts in use: putting a performance on a chart, its seat map with what is taken,
and the best seats available together.

Adjacency: two seats are side by side when they are in the same section and row and
consecutive by x, with no gap wider than 1.5 × the row's narrowest spacing between them (a
wider gap is an aisle).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from wondertix.catalog.models import Performance
from wondertix.catalog.seating_models import Seat, SeatCategory, SeatingChart
from wondertix.sales import errors

AISLE_FACTOR = 1.5


def chart_capacity(chart: SeatingChart) -> int:
    """Sellable places: every seat (house seats included: staff sell them) plus the standing areas."""
    seats = Seat.objects.filter(section__chart=chart).count()
    standing = sum(c.limit_per_performance or 0 for c in chart.categories.filter(standing=True))
    return seats + standing


def use_chart(performance: Performance, chart: SeatingChart | None) -> Performance:
    """Sell a performance from a chart (capacity = the chart's places), or make it general
    admission again. Refused once tickets are sold: sold seats must never be orphaned."""
    with transaction.atomic():
        perf = Performance.objects.select_for_update(no_key=True).get(pk=performance.pk)
        if perf.seating_chart_id == (chart.pk if chart else None):
            return perf
        if perf.tickets_sold or perf.tickets.exists() or perf.hold_lines.filter(expires_at__gt=timezone.now()).exists():
            raise errors.conflict("chart_in_use", "Tickets are sold or held for this performance: its seating cannot change now.")
        perf.seating_chart = chart
        if chart is not None:
            perf.capacity = max(1, chart_capacity(chart))
        perf.save(update_fields=["seating_chart", "capacity"])
    return perf


@dataclass
class SeatMap:
    chart: SeatingChart
    categories: list[SeatCategory]
    sections: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)


def seat_map(performance: Performance, *, now: datetime | None = None) -> SeatMap:
    """Every seat with its state for one performance: available, held, sold, or house
    (kept back, not for sale online). Two queries for the seats and the claims, built for a
    2,000-seat chart on a phone (bench/seatmap.py)."""
    from wondertix.sales.seats import taken_seat_ids

    chart = performance.seating_chart
    if chart is None:
        raise errors.not_found("no_seating_chart", "This performance is general admission: it has no seat map.")
    now = now or timezone.now()
    taken = taken_seat_ids(performance.pk, now)
    categories = list(chart.categories.all())
    sections: dict[int, dict[str, Any]] = {s.pk: {"id": s.pk, "name": s.name, "seats": []} for s in chart.sections.all()}
    counts: dict[str, int] = defaultdict(int)
    rows = Seat.objects.filter(section__chart=chart).order_by("section_id", "y", "x").values_list(
        "pk", "section_id", "row", "label", "x", "y", "category_id", "accessible", "companion", "restricted_view", "house_seat",
    )
    for pk, section_id, row, label, x, y, category_id, accessible, companion, restricted, house in rows:
        status = taken.get(pk) or ("house" if house else "available")
        counts[status] += 1
        sections[section_id]["seats"].append({
            "id": pk, "row": row, "label": label, "x": x, "y": y, "category_id": category_id, "status": status,
            "accessible": accessible, "companion": companion, "restricted_view": restricted,
        })
    return SeatMap(chart, categories, list(sections.values()), dict(counts))


@dataclass(frozen=True)
class BestSeats:
    together: bool
    seat_ids: list[int]
    category_id: int | None
    message: str


def _runs(seats: list[tuple[int, int, int]], n: int) -> list[list[tuple[int, int, int]]]:
    """Every window of n adjacent free seats in one row (seats: (id, x, free), by x)."""
    if len(seats) < n:
        return []
    xs = [s[1] for s in seats]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    step = min(gaps) if gaps else 1
    out = []
    start = 0
    for i, seat in enumerate(seats):
        broken = not seat[2] or (i > 0 and gaps[i - 1] > AISLE_FACTOR * step)
        if broken:
            start = i + 1 if not seat[2] else i
        if seat[2] and i - start + 1 >= n:
            out.append(seats[i - n + 1 : i + 1])
    return out


def best_available(performance: Performance, quantity: int, *, category_id: int | None = None, staff: bool = False) -> BestSeats:
    """The best `quantity` seats side by side: the best-ranked category that has them, then the
    row nearest the stage (smallest y), then nearest the middle of the row. If no category has
    them together, the best single seats (split), said so plainly; if not enough seats are
    left at all, sold_out."""
    from wondertix.sales.seats import taken_seat_ids

    if quantity < 1 or quantity > 20:
        raise errors.invalid("invalid_quantity", "Ask for 1 to 20 seats.", field="quantity")
    chart = performance.seating_chart
    if chart is None:
        raise errors.not_found("no_seating_chart", "This performance is general admission: it has no seats to choose.")
    taken = taken_seat_ids(performance.pk, timezone.now())
    categories = {c.pk: c for c in chart.categories.filter(standing=False)}
    if category_id is not None and category_id not in categories:
        raise errors.invalid("invalid_category", "No such seat category in this performance's chart.", field="category_id")
    qs = Seat.objects.filter(section__chart=chart)
    if category_id is not None:
        qs = qs.filter(category_id=category_id)
    rows: dict[tuple[int, str], list[tuple[int, int, int, int, bool]]] = defaultdict(list)
    for pk, section_id, row, x, y, cat, house in qs.order_by("section_id", "row", "x").values_list("pk", "section_id", "row", "x", "y", "category_id", "house_seat"):
        free = pk not in taken and (staff or not house)
        rows[(section_id, row)].append((pk, x, y, cat, free))
    best: tuple[Any, ...] | None = None
    for seats in rows.values():
        xs = [s[1] for s in seats]
        middle = (min(xs) + max(xs)) / 2
        # A row of one category is the norm; a run must not mix categories (different prices).
        for run in _runs([(s[0], s[1], s[4]) for s in seats], quantity):
            run_ids = {r[0] for r in run}
            members = [s for s in seats if s[0] in run_ids]
            cat_ids = {s[3] for s in members}
            if len(cat_ids) != 1:
                continue
            category = categories[cat_ids.pop()]
            centre = sum(s[1] for s in members) / quantity
            score = (category.rank, category.pk, min(s[2] for s in members), abs(centre - middle))
            if best is None or score < best[0]:
                best = (score, sorted(run_ids), category.pk)
    if best is not None:
        return BestSeats(True, best[1], best[2], f"{quantity} seats together in “{categories[best[2]].name}”.")
    singles = sorted(
        ((categories[s[3]].rank, s[2], s[1], s[0]) for seats in rows.values() for s in seats if s[4] and s[3] in categories),
    )
    if len(singles) < quantity:
        raise errors.sold_out(f"Sorry, only {len(singles)} seat{'s' if len(singles) != 1 else ''} left.", performance_id=performance.pk, available=len(singles))
    return BestSeats(
        False, sorted(s[3] for s in singles[:quantity]), None,
        f"No {quantity} seats are left together. These are the best {quantity} seats available, not side by side.",
    )


def category_counts(chart: SeatingChart) -> dict[int, int]:
    return dict(Seat.objects.filter(section__chart=chart).values_list("category_id").annotate(n=Count("id")).values_list("category_id", "n"))
