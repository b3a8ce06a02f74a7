"""The patron's seat map of a reserved performance: what the page draws and lists, and which
hold lines the chosen seats make.

The page carries the map once, as the section → row → seat list of checkboxes (the form that
works without JavaScript and the screen-reader path); each seat's input carries its position,
category and status in one short attribute (`data-m="x y category-index status"`), and
seatmap.js draws the SVG from those inputs. One payload, no second request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wondertix.catalog import seating
from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.sales import errors
from wondertix.sales.services import LineRequest

# Status → one letter in data-m (seatmap.js knows the same letters).
STATUS_CODE = {"available": "a", "held": "h", "sold": "s", "house": "x"}
STATUS_WORDS = {"held": "held by another patron", "sold": "taken", "house": "not offered"}


@dataclass
class MapCategory:
    pk: int
    index: int
    name: str
    color: str
    price_types: list[PriceType]

    @property
    def default_price_type(self) -> PriceType | None:
        return self.price_types[0] if self.price_types else None


@dataclass
class MapRow:
    name: str
    seats: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MapSection:
    pk: int
    name: str
    rows: list[MapRow] = field(default_factory=list)
    available: int = 0


@dataclass
class PatronMap:
    categories: list[MapCategory]
    sections: list[MapSection]
    counts: dict[str, int]
    width: int
    height: int
    min_x: int
    min_y: int


def patron_map(perf: Performance, price_types: Iterable[PriceType], chosen: Iterable[int] = (), *, mine: Iterable[int] = (), staff: bool = False) -> PatronMap:
    """The seat map as the storefront shows it: categories with the price types that sell them
    (a category nobody can buy online is shown as not offered), sections → rows → seats.
    `chosen`: ticked seats; `mine`: seats the patron's own hold holds (free to them).
    `staff` (the box office): house seats are for sale, and a seat held by staff says why."""
    smap = seating.seat_map(perf)
    by_category: dict[int, list[PriceType]] = defaultdict(list)
    for pt in price_types:
        if pt.seat_category_id:
            by_category[pt.seat_category_id].append(pt)
    categories = [
        MapCategory(c.pk, i, c.name, c.color, by_category.get(c.pk, []))
        for i, c in enumerate(c for c in smap.categories if not c.standing)
    ]
    index = {c.pk: c for c in categories}
    picked = set(chosen)
    own = set(mine)
    notes = staff_hold_notes(perf) if staff else {}
    sections: list[MapSection] = []
    xs: list[int] = []
    ys: list[int] = []
    for sec in smap.sections:
        out = MapSection(sec["id"], sec["name"])
        rows: dict[str, MapRow] = {}
        for s in sec["seats"]:
            cat = index.get(s["category_id"])
            status = "available" if s["id"] in own and s["status"] == "held" else s["status"]
            house = staff and status == "house"
            if house:
                status = "available"
            if status == "available" and (cat is None or not cat.price_types):
                status = "house"  # no price is sold online for its category
            row = rows.get(s["row"])
            if row is None:
                row = rows[s["row"]] = MapRow(s["row"])
            flags = [w for w, on in (("wheelchair space", s["accessible"]), ("companion seat", s["companion"]), ("restricted view", s["restricted_view"])) if on]
            row.seats.append({
                "id": s["id"], "label": s["label"], "open": status == "available", "checked": s["id"] in picked and status == "available",
                "m": f'{s["x"]} {s["y"]} {cat.index if cat else 0} {STATUS_CODE[status]}{"w" if s["accessible"] else ""}',
                "note": ", ".join(flags + (["house seat"] if house else [])
                                  + ([f"held by staff: {notes[s['id']]}"] if s["id"] in notes
                                     else [STATUS_WORDS[status]] if status in STATUS_WORDS else [])),
                "price": cat.default_price_type.price_cents if cat and cat.default_price_type else 0,
            })
            out.available += status == "available"
            xs.append(s["x"])
            ys.append(s["y"])
        for row in rows.values():
            row.seats.sort(key=lambda seat: int(seat["m"].split(" ", 1)[0]))
        out.rows = list(rows.values())
        sections.append(out)
    return PatronMap(
        categories, sections, smap.counts,
        width=(max(xs) - min(xs) + 1) if xs else 1, height=(max(ys) - min(ys) + 1) if ys else 1,
        min_x=min(xs) if xs else 0, min_y=min(ys) if ys else 0,
    )


def parse_seat_ids(values: Iterable[str]) -> list[int]:
    """The `seat` fields of the form: whole numbers, each once, at most 20."""
    out: list[int] = []
    for v in values:
        if not v.isdigit() or len(v) > 12:
            raise errors.invalid("invalid_seats", "That seat choice could not be read. Please choose your seats again.", field="seat_ids")
        if int(v) not in out:
            out.append(int(v))
    if not out:
        raise errors.invalid("seats_required", "Choose at least one seat on the map or in the list.", field="seat_ids")
    if len(out) > 20:
        raise errors.invalid("invalid_quantity", "Choose at most 20 seats at a time.", field="seat_ids")
    return out


def lines_for_seats(perf: Performance, seat_ids: list[int], price_types: list[PriceType], chosen_types: dict[int, str]) -> list[LineRequest]:
    """One hold line per (category, price type) of the chosen seats. chosen_types: category id →
    the price type id the patron picked for that category's seats (default: its first)."""
    seats = list(Seat.objects.filter(pk__in=seat_ids, section__chart_id=perf.seating_chart_id).order_by("pk"))
    if len(seats) != len(seat_ids):
        raise errors.invalid("invalid_seats", "One of those seats is not a seat of this performance.", field="seat_ids")
    types: dict[int, list[PriceType]] = defaultdict(list)
    for pt in price_types:
        if pt.seat_category_id:
            types[pt.seat_category_id].append(pt)
    grouped: dict[int, list[int]] = defaultdict(list)
    for seat in seats:
        offered = types.get(seat.category_id)
        if not offered:
            raise errors.invalid("seat_not_for_sale", f"{seat} is not for sale online.", field="seat_ids")
        wanted = chosen_types.get(seat.category_id, "")
        pt = next((p for p in offered if str(p.pk) == wanted), offered[0])
        grouped[pt.pk].append(seat.pk)
    return [LineRequest(perf.pk, pt_id, len(ids), None, tuple(ids)) for pt_id, ids in grouped.items()]


def staff_hold_notes(perf: Performance) -> dict[int, str]:
    """seat id → the reason of the staff (house-seat) hold holding it, for the box office's map."""
    from django.db.models import Q
    from django.utils import timezone

    from wondertix.sales.models import SeatClaim

    rows = SeatClaim.objects.filter(performance=perf, hold_line__hold__created_by__isnull=False).filter(
        Q(expires_at__gt=timezone.now())).values_list("seat_id", "hold_line__hold__reason")
    return {seat_id: reason or "no reason given" for seat_id, reason in rows}


def seat_names(seat_ids: Iterable[int]) -> dict[int, str]:
    """seat id → "Orchestra row A seat 5", one query."""
    return {s.pk: str(s) for s in Seat.objects.filter(pk__in=set(seat_ids)).select_related("section")}
