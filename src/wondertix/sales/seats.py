"""Reserved seats on the sale path: which seats a request names, and taking them for good.

General admission costs nothing here: `check_lines` returns at once when no performance of
the request has a chart and no price type has a seat category.

The guarantee is the database's: `SeatClaim` is unique on (performance, seat). `claim` runs
under the performance lock (inventory), deletes the expired hold claims of the seats it wants,
and inserts its own with ON CONFLICT DO NOTHING; a seat whose row was not inserted belongs to
somebody else, and the whole transaction is refused with `seat_taken`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum

from wondertix.catalog.models import Performance, PriceType, Seat, SeatCategory
from wondertix.sales import errors
from wondertix.sales.models import HoldLine, SeatClaim, Ticket


class SeatLine(Protocol):
    @property
    def performance_id(self) -> int: ...
    @property
    def price_type_id(self) -> int: ...
    @property
    def quantity(self) -> int: ...
    @property
    def seat_ids(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class ChosenSeats:
    """The seats a request names, loaded once: id -> seat (with its section)."""

    seats: dict[int, Seat]

    def describe(self, ids: Iterable[int]) -> str:
        return ", ".join(describe(self.seats[i]) for i in sorted(ids, key=lambda i: (self.seats[i].section_id, self.seats[i].row, self.seats[i].x)))


NONE = ChosenSeats({})


def describe(seat: Seat) -> str:
    return f"{seat.section.name} row {seat.row} seat {seat.label}"


def seat_taken(chosen: ChosenSeats, performance_id: int, ids: Iterable[int]) -> errors.SaleError:
    ids = sorted(set(ids))
    what = chosen.describe(ids) if all(i in chosen.seats for i in ids) else f"{len(ids)} of the seats"
    return errors.conflict(
        "seat_taken",
        f"Sorry, {what} {'was' if len(ids) == 1 else 'were'} just taken by someone else. Please choose other seats.",
        performance_id=performance_id, seat_ids=ids,
    )


def check_lines(lines: Sequence[SeatLine], performances: dict[int, Performance], price_types: dict[int, PriceType], *, staff: bool) -> ChosenSeats:
    """Refuse a request whose seats do not fit its performances and price types (plain reads,
    before anything is written). Reserved performances need seats from their chart, of the
    price type's category; general admission takes no seats and no category prices."""
    charted = any(p.seating_chart_id for p in performances.values())
    categorized = any(pt.seat_category_id for pt in price_types.values())
    if not charted and not categorized and not any(line.seat_ids for line in lines):
        return NONE
    wanted = {i for line in lines for i in line.seat_ids}
    seats = {s.pk: s for s in Seat.objects.filter(pk__in=wanted).select_related("section").order_by()} if wanted else {}
    categories = {c.pk: c for c in SeatCategory.objects.filter(pk__in={pt.seat_category_id for pt in price_types.values() if pt.seat_category_id}).order_by()}
    for line in lines:
        perf = performances[line.performance_id]
        pt = price_types[line.price_type_id]
        category = categories.get(pt.seat_category_id) if pt.seat_category_id else None
        if perf.seating_chart_id is None:
            if line.seat_ids:
                raise errors.invalid("invalid_seats", "This performance is general admission: no seats are chosen.", field="seat_ids")
            if category is not None:
                raise errors.invalid("invalid_price_type", "That ticket type is not sold for this performance.", field="price_type_id")
            continue
        if category is None or category.chart_id != perf.seating_chart_id:
            raise errors.invalid("invalid_price_type", "That ticket type is not sold for this performance's seats.", field="price_type_id")
        if category.standing:
            if line.seat_ids:
                raise errors.invalid("invalid_seats", f"“{category.name}” is a standing area: no seats are chosen.", field="seat_ids")
            continue
        if len(line.seat_ids) != line.quantity:
            raise errors.invalid("seats_required", "Choose a seat for every ticket of this performance.", field="seat_ids")
        for seat_id in line.seat_ids:
            seat = seats.get(seat_id)
            if seat is None or seat.section.chart_id != perf.seating_chart_id:
                raise errors.invalid("invalid_seats", f"Seat {seat_id} is not a seat of this performance.", field="seat_ids")
            if seat.category_id != category.pk:
                raise errors.invalid("invalid_seats", f"{describe(seat)} is not a “{category.name}” seat: choose the price for its category.", field="seat_ids")
            if seat.house_seat and not staff:
                raise errors.invalid("seat_not_for_sale", f"{describe(seat)} is not for sale online.", field="seat_ids")
    return ChosenSeats(seats)


def taken_seat_ids(performance_id: int, now: datetime) -> dict[int, str]:
    """seat id -> "sold" or "held" for one performance (a display: the claim decides)."""
    rows = SeatClaim.objects.filter(performance_id=performance_id).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return {seat_id: ("held" if expires else "sold") for seat_id, expires in rows.values_list("seat_id", "expires_at")}


def precheck(lines: Sequence[SeatLine], chosen: ChosenSeats, *, now: datetime, hold_id: int | None = None) -> None:
    """Refuse at once when a wanted seat is already sold or held by another (one plain read), so
    a buyer who lost the seat costs a read, not a rolled-back order. Only ever refuses: the
    claim under the lock decides."""
    wanted = {(line.performance_id, seat) for line in lines for seat in line.seat_ids}
    if not wanted:
        return
    qs = SeatClaim.objects.filter(performance_id__in={p for p, _ in wanted}, seat_id__in={s for _, s in wanted})
    qs = qs.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if hold_id is not None:
        qs = qs.exclude(hold_line__hold_id=hold_id)
    taken: dict[int, set[int]] = defaultdict(set)
    for perf_id, seat_id in qs.values_list("performance_id", "seat_id"):
        if (perf_id, seat_id) in wanted:
            taken[perf_id].add(seat_id)
    for perf_id, ids in sorted(taken.items()):
        raise seat_taken(chosen, perf_id, ids)


def claim(wanted: dict[int, list[int]], chosen: ChosenSeats, *, now: datetime, owners: dict[tuple[int, int], int], hold_expires_at: datetime | None) -> None:
    """Take seats: wanted = performance id -> seat ids; owners = (performance, seat) -> the
    ticket id (sales) or hold line id (holds, with `hold_expires_at`). Runs under the
    performance lock; raises seat_taken, and the caller's transaction rolls back."""
    table = SeatClaim._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    expires = connection.ops.adapt_datetimefield_value(hold_expires_at) if hold_expires_at else None
    with connection.cursor() as cursor:
        for perf_id, seat_ids in sorted(wanted.items()):
            ids = sorted(seat_ids)
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(
                f'DELETE FROM "{table}" WHERE "performance_id" = %s AND "seat_id" IN ({marks}) AND "expires_at" <= %s',  # noqa: S608 - names from the model
                [perf_id, *ids, stamp],
            )
            values: list[Any] = []
            for seat_id in ids:
                owner = owners[(perf_id, seat_id)]
                values += [perf_id, seat_id, None if hold_expires_at else owner, owner if hold_expires_at else None, expires]
            rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(ids))
            cursor.execute(
                f'INSERT INTO "{table}" ("performance_id", "seat_id", "ticket_id", "hold_line_id", "expires_at") VALUES {rows} '  # noqa: S608
                f'ON CONFLICT ("performance_id", "seat_id") DO NOTHING RETURNING "seat_id"',
                values,
            )
            got = {int(r[0]) for r in cursor.fetchall()}
            if len(got) != len(ids):
                raise seat_taken(chosen, perf_id, set(ids) - got)


def check_without_constraint(tickets: Sequence[Ticket], chosen: ChosenSeats, *, now: datetime) -> None:
    """The naive read-check-write the claim exists to prevent (WONDERTIX_UNSAFE_DISABLE_SALES_LOCK,
    a test switch refused unless DEBUG is on): look for sold or held seats, pause, and write no
    claim at all — the tickets carry their seats, nothing unique guards them. Called before the
    counter UPDATE, whose row lock would otherwise serialize the race it exists to show."""
    seated = [t for t in tickets if t.seat_id is not None]
    if seated:
        _naive_check(_by_performance(seated), chosen, now=now, order_id=seated[0].order_id)


def _naive_check(wanted: dict[int, list[int]], chosen: ChosenSeats, *, now: datetime, order_id: int) -> None:
    from wondertix.sales.inventory import UNSAFE_RACE_WINDOW_SECONDS

    for perf_id, seat_ids in sorted(wanted.items()):
        held = SeatClaim.objects.filter(performance_id=perf_id, seat_id__in=seat_ids).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        # This order's own tickets are written already (write first, claim last): not a competitor.
        sold = Ticket.objects.filter(performance_id=perf_id, seat_id__in=seat_ids, status=Ticket.VALID).exclude(order_id=order_id)
        taken = set(held.values_list("seat_id", flat=True)) | set(sold.values_list("seat_id", flat=True))
        if taken:
            raise seat_taken(chosen, perf_id, {i for i in taken if i is not None})
    time.sleep(UNSAFE_RACE_WINDOW_SECONDS)


def ensure_unchanged(chosen: ChosenSeats) -> None:
    """Under the performance lock: the chosen seats still exist with the category they were
    priced by. A sale reads its seats before it takes the lock (check_lines); the seat-map
    editor saves under the same locks, so a seat it deleted or recategorised in between is
    seen here and refused — never a database error at commit, never a seat sold at another
    category's price."""
    if not chosen.seats:
        return
    now_in = dict(Seat.objects.filter(pk__in=list(chosen.seats)).values_list("pk", "category_id"))
    changed = sorted(i for i, seat in chosen.seats.items() if now_in.get(i) != seat.category_id)
    if changed:
        raise errors.conflict(
            "seat_changed",
            f"The seating plan changed while you were buying ({chosen.describe(changed)}). Please choose your seats again.",
            seat_ids=changed,
        )


def claim_for_order(tickets: Sequence[Ticket], chosen: ChosenSeats, *, now: datetime, hold_id: int | None) -> None:
    """The seats of an order's tickets, under the performance lock. A hold's own claims are
    given up first (they become the tickets'); nobody else can have taken them while it lived."""
    seated = [t for t in tickets if t.seat_id is not None]
    if not seated:
        return
    ensure_unchanged(chosen)
    if settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK and hold_id is None:
        return  # checked by check_without_constraint, before the counter (test switch)
    if hold_id is not None:
        SeatClaim.objects.filter(hold_line__hold_id=hold_id)._raw_delete(SeatClaim.objects.db)  # type: ignore[attr-defined]
    owners = {(t.performance_id, t.seat_id): t.pk for t in seated}
    claim(_by_performance(seated), chosen, now=now, owners=owners, hold_expires_at=None)  # type: ignore[arg-type]


def claim_for_hold(lines: Sequence[HoldLine], seat_ids: dict[int, tuple[int, ...]], chosen: ChosenSeats, *, now: datetime) -> None:
    """The seats of a new hold's lines (seat_ids: hold line id -> its seats)."""
    wanted: dict[int, list[int]] = defaultdict(list)
    owners: dict[tuple[int, int], int] = {}
    expires_at = None
    for hl in lines:
        for seat_id in seat_ids.get(hl.pk, ()):
            wanted[hl.performance_id].append(seat_id)
            owners[(hl.performance_id, seat_id)] = hl.pk
            expires_at = hl.expires_at
    if wanted:
        claim(dict(wanted), chosen, now=now, owners=owners, hold_expires_at=expires_at)


def _by_performance(tickets: Sequence[Ticket]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for t in tickets:
        out[t.performance_id].append(t.seat_id)  # type: ignore[arg-type]
    return dict(out)


def hold_seat_ids(hold_id: int) -> dict[int, tuple[int, ...]]:
    """hold line id -> the seats it holds."""
    out: dict[int, list[int]] = defaultdict(list)
    for line_id, seat_id in SeatClaim.objects.filter(hold_line__hold_id=hold_id).order_by("seat_id").values_list("hold_line_id", "seat_id"):
        out[line_id].append(seat_id)
    return {k: tuple(v) for k, v in out.items()}


def release_tickets(ticket_ids: Iterable[int]) -> None:
    """Refunded or exchanged tickets give their seats back (with the counter, under the lock)."""
    ids = list(ticket_ids)
    if ids:
        SeatClaim.objects.filter(ticket_id__in=ids)._raw_delete(SeatClaim.objects.db)  # type: ignore[attr-defined]


def ensure_category_limits(
    demand: dict[tuple[int, int], int], price_types: dict[int, PriceType], *, now: datetime,
    exclude_hold_id: int | None = None, exclude_order_id: int | None = None,
) -> None:
    """Per-category limits (a standing area's size, or a cap on a category), counted under the
    performance lock: valid tickets plus unexpired holds of the category's price types."""
    category_ids = {pt.seat_category_id for pt in price_types.values() if pt.seat_category_id}
    if not category_ids:
        return
    limits = {c.pk: c for c in SeatCategory.objects.filter(pk__in=category_ids, limit_per_performance__isnull=False).order_by()}
    if not limits:
        return
    wanted: dict[tuple[int, int], int] = defaultdict(int)
    for (perf_id, pt_id), qty in demand.items():
        cat = price_types[pt_id].seat_category_id
        if cat in limits:
            wanted[(perf_id, cat)] += qty
    perf_ids = {p for p, _ in wanted}
    issued = Ticket.objects.counted().filter(performance_id__in=perf_ids, price_type__seat_category_id__in=limits)
    if exclude_order_id is not None:
        issued = issued.exclude(order_id=exclude_order_id)
    taken: dict[tuple[int, int], int] = defaultdict(int)
    for row in issued.values("performance_id", "price_type__seat_category_id").annotate(n=Count("id")):
        taken[(row["performance_id"], row["price_type__seat_category_id"])] += row["n"]
    holds = HoldLine.objects.filter(performance_id__in=perf_ids, price_type__seat_category_id__in=limits, expires_at__gt=now)
    if exclude_hold_id is not None:
        holds = holds.exclude(hold_id=exclude_hold_id)
    for row in holds.values("performance_id", "price_type__seat_category_id").annotate(n=Sum("quantity")):
        taken[(row["performance_id"], row["price_type__seat_category_id"])] += row["n"]
    for (perf_id, cat_id), qty in sorted(wanted.items()):
        category = limits[cat_id]
        left = max(0, (category.limit_per_performance or 0) - taken[(perf_id, cat_id)])
        if qty > left:
            raise errors.sold_out(
                f"Sorry, only {left} “{category.name}” ticket{'s' if left != 1 else ''} left for this performance.",
                performance_id=perf_id, category_id=cat_id, available=left,
            )
