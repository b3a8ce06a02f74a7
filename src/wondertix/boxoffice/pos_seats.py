"""Reserved seats at the window: which seats each line of a box-office sale or house-seat hold
takes. Staff may sell and hold house seats; the seats are claimed by the one sale path."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.sales import errors
from wondertix.sales.services import LineRequest


def with_seats(performance_id: int, lines: list[LineRequest], seat_ids: list[int]) -> list[LineRequest]:
    """Give each line the ticked seats of its price type's category (in the order ticked).

    No line (only seats ticked): each seat sells at the first active price type of its
    category. A line left short, or a seat left over, is refused with what to tick."""
    perf = Performance.objects.filter(pk=performance_id).first()
    if perf is None or perf.seating_chart_id is None:
        raise errors.invalid("invalid_seats", "This performance is general admission: no seats are chosen.", field="seat_ids")
    if len(set(seat_ids)) != len(seat_ids):
        raise errors.invalid("invalid_seats", "A seat is ticked twice.", field="seat_ids")
    seats = {s.pk: s for s in Seat.objects.filter(pk__in=seat_ids, section__chart_id=perf.seating_chart_id).select_related("section")}
    if len(seats) != len(seat_ids):
        raise errors.invalid("invalid_seats", "One of the ticked seats is not a seat of this performance.", field="seat_ids")
    pool: dict[int, list[int]] = defaultdict(list)
    for sid in seat_ids:
        pool[seats[sid].category_id].append(sid)
    types = {pt.pk: pt for pt in PriceType.objects.filter(event_id=perf.event_id, active=True, seat_category__chart_id=perf.seating_chart_id).order_by("sort_order", "id")}
    if not lines:
        first: dict[int, PriceType] = {}
        for pt in types.values():
            first.setdefault(pt.seat_category_id, pt)  # type: ignore[arg-type]
        out = []
        for cat_id, ids in pool.items():
            if cat_id not in first:
                raise errors.invalid("invalid_seats", f"No price type sells {seats[ids[0]]}'s category.", field="seat_ids")
            out.append(LineRequest(performance_id, first[cat_id].pk, len(ids), None, tuple(ids)))
        return out
    out = []
    for line in lines:
        found = types.get(line.price_type_id)
        if found is None:
            raise errors.invalid("invalid_price_type", "That ticket type is not sold for this performance's seats.", field="price_type_id")
        pt = found
        mine = pool.get(pt.seat_category_id, [])  # type: ignore[arg-type]
        if len(mine) < line.quantity:
            raise errors.invalid("seats_required", f"Tick {line.quantity - len(mine)} more “{pt.seat_category}” seat(s) for the {line.quantity} “{pt.name}” ticket(s).", field="seat_ids")
        out.append(replace(line, seat_ids=tuple(mine[: line.quantity])))
        del mine[: line.quantity]
    left = [sid for ids in pool.values() for sid in ids]
    if left:
        raise errors.invalid("seats_required", f"{len(left)} ticked seat(s) have no ticket: {', '.join(str(seats[s]) for s in left)}. Add tickets for them or untick them.", field="seat_ids")
    return out
