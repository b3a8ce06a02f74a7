"""Editing a seating chart in place: the seat-map editor's one save.

The editor sends the whole chart as the JSON document of docs/seating.md (the import format),
with the `id` of each category and section it loaded, so a rename keeps them. The document
is checked whole by the import's validation (`chartfile.validate`), then compared with the
chart: a seat is the same seat when it keeps its section, row and label (what its tickets
print); it is updated in place (position, category, flags), the others are added or deleted.

A chart in use must not orphan a sold or held seat. Under the lock of every performance
using the chart (the sale path's lock, ascending pk) the save is refused with the seats named
when it would delete a seat with a ticket (valid or not: the ticket's record keeps its seat)
or an unexpired hold, or change the category of a sold or held seat (its price was that
category's: its ticket would count under one category and sit in another); moving a sold
seat and changing its flags are allowed. A category that price types sell cannot be deleted,
a standing area cannot shrink below what is sold or held in it. Nothing is written on a
refusal. Capacity of every performance using the chart follows the new seat count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from wondertix.catalog import chartfile
from wondertix.catalog.seating import chart_capacity
from wondertix.catalog.seating_models import Seat, SeatCategory, SeatingChart, Section, Venue
from wondertix.ops import audit

SHOWN = 8  # seats named in a refusal before "and N more"


class ChartInUse(ValueError):
    """A save refused because it would orphan what is sold or held (HTTP 409)."""

    def __init__(self, message: str, seats: list[str] | None = None) -> None:
        super().__init__(message)
        self.seats = seats or []


@dataclass(frozen=True)
class Saved:
    chart: SeatingChart
    added: int
    changed: int
    deleted: int

    @property
    def message(self) -> str:
        return f"Saved “{self.chart.name}”: {self.added} seats added, {self.changed} changed, {self.deleted} deleted."


def _take_ids(data: Any, key: str) -> dict[int, int]:
    """Pop the optional `id` of each category or section (index -> id) before validation."""
    out: dict[int, int] = {}
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return out
    for i, item in enumerate(items):
        if isinstance(item, dict) and "id" in item:
            value = item.pop("id")
            if value is None:
                continue
            if type(value) is not int:
                raise chartfile.ChartFileError(f"{key}[{i}].id", "must be a whole number or null")
            out[i] = value
    return out


def _match(key: str, incoming: list[str], ids: dict[int, int], existing: dict[int, str]) -> list[int | None]:
    """Which existing row each incoming item is: by id when given, else by name."""
    by_name = {name: pk for pk, name in existing.items()}
    given = set(ids.values())
    out: list[int | None] = []
    used: set[int] = set()
    for i, name in enumerate(incoming):
        pk = ids.get(i)
        if pk is not None and pk not in existing:
            raise chartfile.ChartFileError(f"{key}[{i}].id", f"{pk} is not one of this chart's {key}")
        if pk is None:
            candidate = by_name.get(name)
            pk = candidate if candidate is not None and candidate not in given else None
        if pk is not None and pk in used:
            raise chartfile.ChartFileError(f"{key}[{i}].id", f"{pk} appears twice")
        if pk is not None:
            used.add(pk)
        out.append(pk)
    return out


def _named(seats: list[Seat], sections: dict[int, str], why: dict[int, str]) -> list[str]:
    seats = sorted(seats, key=lambda s: (sections[s.section_id], s.row, s.x))
    return [f"{sections[s.section_id]} row {s.row} seat {s.label} ({why[s.pk]})" for s in seats]


def _refuse(what: str, names: list[str]) -> ChartInUse:
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return ChartInUse(f"{what}: {shown}. Nothing was saved.", names)


def _claims(chart: SeatingChart, now: Any) -> dict[int, str]:
    """seat id -> why it must stay: sold (a valid ticket's claim), held, or ticketed (any ticket)."""
    from wondertix.sales.models import SeatClaim, Ticket

    why: dict[int, str] = {}
    for seat_id in Ticket.objects.filter(seat__section__chart=chart).values_list("seat_id", flat=True).distinct():
        why[seat_id] = "has a refunded or exchanged ticket"
    live = SeatClaim.objects.filter(seat__section__chart=chart).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    for seat_id, expires in live.values_list("seat_id", "expires_at"):
        why[seat_id] = "held" if expires else "sold"
    return why


def _standing_taken(category_ids: list[int], perf_ids: list[int], now: Any) -> dict[int, int]:
    """category id -> the most tickets plus held places of it at any one performance."""
    from wondertix.sales.models import HoldLine, Ticket

    per: dict[tuple[int, int], int] = defaultdict(int)
    tickets = Ticket.objects.counted().filter(performance_id__in=perf_ids, price_type__seat_category_id__in=category_ids)
    for perf, cat in tickets.values_list("performance_id", "price_type__seat_category_id"):
        per[(perf, cat)] += 1
    holds = HoldLine.objects.filter(performance_id__in=perf_ids, price_type__seat_category_id__in=category_ids, expires_at__gt=now)
    for row in holds.values("performance_id", "price_type__seat_category_id").annotate(n=Sum("quantity")):
        per[(row["performance_id"], row["price_type__seat_category_id"])] += row["n"]
    out: dict[int, int] = defaultdict(int)
    for (_, cat), n in per.items():
        out[cat] = max(out[cat], n)
    return dict(out)


def save_chart(chart_id: int, data: Any, *, actor: Any = None) -> Saved:
    """Check the whole document, then apply it to the chart, all or nothing (see the module)."""
    from wondertix.sales.inventory import lock_performances
    from wondertix.sales.models import SeatClaim

    cat_ids, sec_ids = _take_ids(data, "categories"), _take_ids(data, "sections")
    doc = chartfile.validate(data)
    with transaction.atomic():
        chart = SeatingChart.objects.select_for_update().select_related("venue").get(pk=chart_id)
        perfs = lock_performances(chart.performances.values_list("pk", flat=True))
        now = timezone.now()
        venue, _ = Venue.objects.get_or_create(name=doc.venue)
        if SeatingChart.objects.filter(venue=venue, name=doc.name).exclude(pk=chart.pk).exists():
            raise chartfile.ChartFileError("name", f"the venue “{venue.name}” already has a chart named “{doc.name}”")
        old_cats = {c.pk: c for c in chart.categories.all()}
        old_secs = {s.pk: s for s in chart.sections.all()}
        cat_match = _match("categories", [c.name for c in doc.categories], cat_ids, {pk: c.name for pk, c in old_cats.items()})
        sec_match = _match("sections", [s.name for s in doc.sections], sec_ids, {pk: s.name for pk, s in old_secs.items()})
        old_seats = {(s.section_id, s.row, s.label): s for s in Seat.objects.filter(section__chart=chart)}
        why = _claims(chart, now)
        sec_names = {pk: s.name for pk, s in old_secs.items()}
        cat_of = {c.name: pk for c, pk in zip(doc.categories, cat_match, strict=True)}

        kept: set[tuple[int, str, str]] = set()
        recategorised: list[Seat] = []
        for section, sec_pk in zip(doc.sections, sec_match, strict=True):
            for seat in section.seats:
                old = old_seats.get((sec_pk, seat.row, seat.label)) if sec_pk is not None else None
                if old is None:
                    continue
                kept.add((old.section_id, old.row, old.label))
                if cat_of[seat.category] != old.category_id and why.get(old.pk) in ("sold", "held"):
                    recategorised.append(old)
        gone = [s for key, s in old_seats.items() if key not in kept]
        orphaned = [s for s in gone if s.pk in why]
        if orphaned:
            raise _refuse("These seats are sold, held or on a ticket and cannot be deleted, renumbered or moved to another section", _named(orphaned, sec_names, why))
        if recategorised:
            raise _refuse("These seats are sold or held and keep their category", _named(recategorised, sec_names, why))
        dropped = [old_cats[pk] for pk in set(old_cats) - {pk for pk in cat_match if pk is not None}]
        sold_by = [c for c in dropped if c.price_types.exists()]
        if sold_by:
            names = [f"“{c.name}” (sold by {', '.join(sorted({pt.name for pt in c.price_types.all()}))})" for c in sold_by]
            raise ChartInUse(f"Price types sell these categories, so they cannot be deleted: {', '.join(names)}. Nothing was saved.")
        standing_ids = [pk for pk in cat_match if pk is not None and old_cats[pk].standing]
        taken = _standing_taken(standing_ids, list(perfs), now)
        for i, (cat, pk) in enumerate(zip(doc.categories, cat_match, strict=True)):
            if pk in taken and taken[pk] and (not cat.standing or (cat.limit_per_performance or 0) < taken[pk]):
                raise chartfile.ChartFileError(
                    f"categories[{i}].limit_per_performance",
                    f"{taken[pk]} “{cat.name}” places are sold or held at one performance: the standing area cannot be smaller or become seats",
                )

        # Write: the chart, then categories and sections (renames through a free name first:
        # two may swap names), then seats, then what is no longer there.
        chart.venue, chart.name = venue, doc.name
        chart.save(update_fields=["venue", "name"])
        for pk in cat_match:
            if pk is not None:
                SeatCategory.objects.filter(pk=pk).update(name=f"~renaming~{pk}")
        cats: dict[str, SeatCategory] = {}
        for cat, pk in zip(doc.categories, cat_match, strict=True):
            fields = {"name": cat.name, "rank": cat.rank, "color": cat.color, "limit_per_performance": cat.limit_per_performance, "standing": cat.standing}
            if pk is None:
                cats[cat.name] = SeatCategory.objects.create(chart=chart, **fields)
            else:
                SeatCategory.objects.filter(pk=pk).update(**fields)
                cats[cat.name] = old_cats[pk]
        for pk in sec_match:
            if pk is not None:
                Section.objects.filter(pk=pk).update(name=f"~renaming~{pk}")
        secs: list[Section] = []
        for order, (section, pk) in enumerate(zip(doc.sections, sec_match, strict=True)):
            if pk is None:
                secs.append(Section.objects.create(chart=chart, name=section.name, sort_order=order))
            else:
                Section.objects.filter(pk=pk).update(name=section.name, sort_order=order)
                secs.append(old_secs[pk])
        gone_ids = [s.pk for s in gone]
        SeatClaim.objects.filter(seat_id__in=gone_ids).delete()  # expired hold claims only (checked above)
        Seat.objects.filter(pk__in=gone_ids).delete()
        changed: list[Seat] = []
        added: list[Seat] = []
        for sec, section in zip(secs, doc.sections, strict=True):
            for seat in section.seats:
                values = {"x": seat.x, "y": seat.y, "category_id": cats[seat.category].pk, **{f: f in seat.flags for f in Seat.FLAGS}}
                old = old_seats.get((sec.pk, seat.row, seat.label))
                if old is None:
                    added.append(Seat(section=sec, row=seat.row, label=seat.label, **values))
                elif any(getattr(old, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(old, k, v)
                    changed.append(old)
        Seat.objects.bulk_update(changed, ["x", "y", "category", *Seat.FLAGS], batch_size=1000)
        Seat.objects.bulk_create(added, batch_size=1000)
        Section.objects.filter(pk__in=set(old_secs) - {pk for pk in sec_match if pk is not None}).delete()
        SeatCategory.objects.filter(pk__in=[c.pk for c in dropped]).delete()
        capacity = max(1, chart_capacity(chart))
        for perf in perfs.values():
            if perf.capacity != capacity:
                if capacity < perf.tickets_sold:  # cannot happen when no sold seat is deleted; the database would refuse too
                    raise ChartInUse(f"{perf} has {perf.tickets_sold} tickets sold: the chart cannot have fewer places. Nothing was saved.")
                perf.capacity = capacity
                perf.save(update_fields=["capacity"])
        result = Saved(chart, len(added), len(changed), len(gone))
        audit.record(
            "seating_chart.edited", actor=actor, obj=chart,
            before={"seats": len(old_seats), "categories": len(old_cats), "sections": len(old_secs)},
            after={"seats": len(old_seats) - len(gone) + len(added), "added": len(added), "changed": len(changed), "deleted": len(gone),
                   "categories": len(doc.categories), "sections": len(doc.sections), "performances": len(perfs)},
        )
    return result


def editor_document(chart: SeatingChart) -> dict[str, Any]:
    """What the editor loads: the export, with the ids of categories and sections (so renames
    keep them), and which seats are sold, held or ticketed (drawn locked)."""
    doc = chartfile.export(chart)
    for item, pk in zip(doc["categories"], chart.categories.order_by("rank", "id").values_list("pk", flat=True), strict=True):
        item["id"] = pk
    sections = list(chart.sections.order_by("sort_order", "id").values_list("pk", "name"))
    for item, (pk, _) in zip(doc["sections"], sections, strict=True):
        item["id"] = pk
    why = _claims(chart, timezone.now())
    names = dict(sections)
    locked = {}
    for seat in Seat.objects.filter(pk__in=list(why)).only("pk", "section_id", "row", "label"):
        locked[f"{names[seat.section_id]}\u0000{seat.row}\u0000{seat.label}"] = why[seat.pk]
    used = set(SeatCategory.objects.filter(chart=chart, price_types__isnull=False).values_list("name", flat=True))
    return {"chart": doc, "locked": locked, "sold_categories": sorted(used)}
