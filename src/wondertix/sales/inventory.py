"""Seat inventory: how many seats are taken, and the lock every sale goes through.

The rule, everywhere: open a transaction, lock the performances a request touches (by primary
key order, so two buyers never deadlock), re-count what is taken, write, commit.
Taken = tickets issued (Performance.tickets_sold) + unexpired hold lines.

The lock is PostgreSQL's FOR NO KEY UPDATE row lock on the performance: it excludes every
other seller of that performance, but not the foreign-key checks of rows that merely point
at it (tickets, hold lines), so writing those never waits for a competitor's lock. The sale
path (`claim_seats`) takes it with the counter UPDATE itself, as late as possible, so the
lock is held for two short statements and the commit (docs/sale-path.md).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PriceType
from wondertix.sales import errors
from wondertix.sales.models import HoldLine, Ticket


@dataclass(frozen=True)
class Availability:
    capacity: int
    sold: int
    held: int

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.sold - self.held)


def lock_performances(ids: Iterable[int]) -> dict[int, Performance]:
    """Row-lock the performances (ascending pk). Must run inside transaction.atomic()."""
    wanted = sorted(set(ids))
    qs = Performance.objects.filter(pk__in=wanted).select_related("event").order_by("pk")
    if not settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK:
        qs = qs.select_for_update(of=("self",), no_key=True)
    found = {p.pk: p for p in qs}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    return found


def held_seats(performance_ids: Iterable[int], now: datetime, exclude_hold_id: int | None = None) -> dict[int, int]:
    qs = HoldLine.objects.filter(performance_id__in=list(performance_ids), expires_at__gt=now)
    if exclude_hold_id is not None:
        qs = qs.exclude(hold_id=exclude_hold_id)
    return {row["performance_id"]: row["n"] for row in qs.values("performance_id").annotate(n=Sum("quantity"))}


def taken_by_price_type(
    pairs: set[tuple[int, int]], now: datetime, exclude_hold_id: int | None = None, exclude_order_id: int | None = None,
) -> dict[tuple[int, int], int]:
    """Tickets issued plus unexpired holds, for each (performance, price type) pair asked about.

    `exclude_order_id`: the order being placed, whose tickets are already written in this
    transaction (the sale path writes first and claims the seats last)."""
    if not pairs:
        return {}
    perf_ids = {p for p, _ in pairs}
    type_ids = {t for _, t in pairs}
    taken: dict[tuple[int, int], int] = defaultdict(int)
    issued = Ticket.objects.counted().filter(performance_id__in=perf_ids, price_type_id__in=type_ids)
    if exclude_order_id is not None:
        issued = issued.exclude(order_id=exclude_order_id)
    tickets = issued.values("performance_id", "price_type_id").annotate(n=Count("id"))
    for row in tickets:
        taken[(row["performance_id"], row["price_type_id"])] += row["n"]
    holds = HoldLine.objects.filter(performance_id__in=perf_ids, price_type_id__in=type_ids, expires_at__gt=now)
    if exclude_hold_id is not None:
        holds = holds.exclude(hold_id=exclude_hold_id)
    for row in holds.values("performance_id", "price_type_id").annotate(n=Sum("quantity")):
        taken[(row["performance_id"], row["price_type_id"])] += row["n"]
    return {pair: taken.get(pair, 0) for pair in pairs}


def ensure_capacity(
    performances: dict[int, Performance],
    demand: dict[tuple[int, int], int],
    price_types: dict[int, PriceType],
    *,
    now: datetime,
    exclude_hold_id: int | None = None,
) -> None:
    """Raise sold_out unless every requested seat fits. Call with the performances locked."""
    per_performance = _per_performance(demand)
    held = held_seats(per_performance, now, exclude_hold_id)
    for perf_id, qty in per_performance.items():
        perf = performances[perf_id]
        left = perf.capacity - perf.tickets_sold - held.get(perf_id, 0)
        if qty > left:
            raise _seats_left(perf_id, left)
    _ensure_price_type_limits(demand, price_types, performances, now=now, exclude_hold_id=exclude_hold_id)


def _per_performance(demand: dict[tuple[int, int], int]) -> dict[int, int]:
    per_performance: dict[int, int] = defaultdict(int)
    for (perf_id, _), qty in demand.items():
        per_performance[perf_id] += qty
    return dict(per_performance)


def _seats_left(perf_id: int, left: int) -> errors.SaleError:
    left = max(0, left)
    message = (
        "Sorry, this performance is sold out."
        if left == 0
        else f"Sorry, only {left} seat{'s' if left != 1 else ''} left for this performance."
    )
    return errors.sold_out(message, performance_id=perf_id, available=left)


def _ensure_price_type_limits(
    demand: dict[tuple[int, int], int],
    price_types: dict[int, PriceType],
    performances: dict[int, Performance],
    *,
    now: datetime,
    exclude_hold_id: int | None = None,
    exclude_order_id: int | None = None,
) -> None:
    # Limits are re-read here, under the performance lock: a limit lowered by staff (who take
    # the same locks) after this request's price types were read must still bind it.
    limits = dict(
        PriceType.objects.filter(pk__in={t for _, t in demand}).values_list("pk", "limit_per_performance")
    )
    for pk, limit in limits.items():
        price_types[pk].limit_per_performance = limit
    # A performance's own limit for a type (performance_prices) wins over the type's.
    own = {pair: row.limit_per_performance for pair, row in performance_prices.overrides_for(demand, performances).items()
           if row.limit_per_performance is not None}
    limit_of = {pair: own.get(pair, price_types[pair[1]].limit_per_performance) for pair in demand}
    limited = {pair for pair, limit in limit_of.items() if limit is not None}
    if not limited:
        return
    taken = taken_by_price_type(limited, now, exclude_hold_id, exclude_order_id)
    for pair in sorted(limited):
        pt = price_types[pair[1]]
        left = max(0, (limit_of[pair] or 0) - taken[pair])
        if demand[pair] > left:
            raise errors.SaleError(
                "sold_out",
                f"Sorry, only {left} “{pt.name}” ticket{'s' if left != 1 else ''} left for this performance.",
                status=409,
                performance_id=pair[0],
                price_type_id=pt.pk,
                available=left,
            )


def performances_for_sale(ids: Iterable[int]) -> dict[int, Performance]:
    """The performances a request touches, with their events, read without a lock (to
    validate the request before anything is written; `claim_seats` decides)."""
    wanted = sorted(set(ids))
    found = {p.pk: p for p in Performance.objects.filter(pk__in=wanted).select_related("event").order_by()}
    if len(found) != len(wanted):
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    return found


def precheck_capacity(performances: dict[int, Performance], demand: dict[tuple[int, int], int]) -> None:
    """Refuse at once when the issued tickets alone leave too few seats (a sold-out rush
    then costs one read, not a rolled-back write). Only ever refuses: approval is
    `claim_seats`'s, under the lock."""
    for perf_id, qty in _per_performance(demand).items():
        perf = performances[perf_id]
        if qty > perf.capacity - perf.tickets_sold:
            raise _seats_left(perf_id, perf.capacity - perf.tickets_sold)


# Widens the read-to-write window of the unsafe test switch, so a concurrency test run
# without the lock reliably sees the oversell it exists to catch. Never used with the lock.
UNSAFE_RACE_WINDOW_SECONDS = 0.05


def claim_seats(
    performances: dict[int, Performance],
    demand: dict[tuple[int, int], int],
    price_types: dict[int, PriceType],
    *,
    now: datetime,
    exclude_hold_id: int | None = None,
    exclude_order_id: int | None = None,
) -> None:
    """Take the seats for a sale, last thing before the commit; raise sold_out otherwise.

    For each performance (ascending pk, so two buyers never deadlock) one UPDATE moves the
    issued-ticket counter only if the seats fit and the performance is not canceled; that
    UPDATE is also the row lock. Holds and price-type limits are then re-counted under the
    lock (each statement sees everything committed before the lock was granted). A refusal
    raises, and the caller's transaction rolls back every row it wrote.
    Must run inside transaction.atomic(); `performances` may be unlocked reads.
    """
    per_performance = _per_performance(demand)
    if settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK:
        _claim_without_lock(performances, per_performance, demand, price_types, now=now, exclude_hold_id=exclude_hold_id, exclude_order_id=exclude_order_id)
        return
    table = Performance._meta.db_table
    with connection.cursor() as cursor:
        for perf_id, qty in sorted(per_performance.items()):
            cursor.execute(
                f'UPDATE "{table}" SET "tickets_sold" = "tickets_sold" + %s '  # noqa: S608 - table name from the model
                f'WHERE "id" = %s AND "status" <> %s AND "tickets_sold" + %s <= "capacity" '
                f'RETURNING "tickets_sold", "capacity", "has_own_prices"',
                [qty, perf_id, Performance.CANCELED, qty],
            )
            row = cursor.fetchone()
            if row is None:
                _refuse(perf_id, now, exclude_hold_id)
            else:
                perf = performances[perf_id]
                # has_own_prices as of the lock: a performance limit set meanwhile still binds.
                perf.tickets_sold, perf.capacity, perf.has_own_prices = row
    held = _held_now(list(per_performance), now, exclude_hold_id)
    for perf_id, qty in per_performance.items():
        perf = performances[perf_id]
        # The counter already includes this sale.
        if perf.tickets_sold + held.get(perf_id, 0) > perf.capacity:
            raise _seats_left(perf_id, perf.capacity - (perf.tickets_sold - qty) - held.get(perf_id, 0))
    _ensure_price_type_limits(demand, price_types, performances, now=now, exclude_hold_id=exclude_hold_id, exclude_order_id=exclude_order_id)


def _held_now(performance_ids: list[int], now: datetime, exclude_hold_id: int | None) -> dict[int, int]:
    """held_seats in one plain statement (the hot path under the lock: no ORM compile)."""
    table = HoldLine._meta.db_table
    marks = ", ".join(["%s"] * len(performance_ids))
    sql = (
        f'SELECT "performance_id", SUM("quantity") FROM "{table}" '  # noqa: S608 - names from the model
        f'WHERE "performance_id" IN ({marks}) AND "expires_at" > %s'
    )
    params: list[Any] = [*performance_ids, connection.ops.adapt_datetimefield_value(now)]
    if exclude_hold_id is not None:
        sql += ' AND "hold_id" <> %s'
        params.append(exclude_hold_id)
    with connection.cursor() as cursor:
        cursor.execute(sql + ' GROUP BY "performance_id"', params)
        return {int(pid): int(n) for pid, n in cursor.fetchall()}


def _refuse(perf_id: int, now: datetime, exclude_hold_id: int | None) -> None:
    """The counter UPDATE matched nothing: say why (canceled, or how many seats are left)."""
    perf = Performance.objects.filter(pk=perf_id).values("status", "capacity", "tickets_sold").first()
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    if perf["status"] == Performance.CANCELED:
        raise errors.invalid("performance_canceled", "This performance has been canceled.")
    held = held_seats([perf_id], now, exclude_hold_id).get(perf_id, 0)
    raise _seats_left(perf_id, perf["capacity"] - perf["tickets_sold"] - held)


def _claim_without_lock(
    performances: dict[int, Performance],
    per_performance: dict[int, int],
    demand: dict[tuple[int, int], int],
    price_types: dict[int, PriceType],
    *,
    now: datetime,
    exclude_hold_id: int | None,
    exclude_order_id: int | None,
) -> None:
    """The naive check-then-write the lock exists to prevent (WONDERTIX_UNSAFE_DISABLE_SALES_LOCK,
    a test switch refused unless DEBUG is on)."""
    held = held_seats(per_performance, now, exclude_hold_id)
    for perf_id, qty in per_performance.items():
        perf = performances[perf_id]
        if qty > perf.capacity - perf.tickets_sold - held.get(perf_id, 0):
            raise _seats_left(perf_id, perf.capacity - perf.tickets_sold - held.get(perf_id, 0))
    _ensure_price_type_limits(demand, price_types, performances, now=now, exclude_hold_id=exclude_hold_id, exclude_order_id=exclude_order_id)
    time.sleep(UNSAFE_RACE_WINDOW_SECONDS)
    for perf_id, qty in per_performance.items():
        perf = performances[perf_id]
        Performance.objects.filter(pk=perf_id).update(tickets_sold=perf.tickets_sold + qty)
        perf.tickets_sold += qty


def availability_for(performance_ids: Iterable[int], now: datetime | None = None) -> dict[int, Availability]:
    """Read-only view for pages and the API (no lock: a display, not a promise)."""
    now = now or timezone.now()
    ids = list(performance_ids)
    held = held_seats(ids, now)
    return {
        p["pk"]: Availability(p["capacity"], p["tickets_sold"], held.get(p["pk"], 0))
        for p in Performance.objects.filter(pk__in=ids).values("pk", "capacity", "tickets_sold")
    }


def price_type_availability(performance: Performance, price_types: Iterable[PriceType], now: datetime | None = None) -> dict[int, int | None]:
    """Seats left per price type (None = no limit of its own) for one performance."""
    now = now or timezone.now()
    pts = performance_prices.for_performance(performance, price_types)
    pairs = {(performance.pk, pt.pk) for pt in pts if pt.limit_per_performance is not None}
    taken = taken_by_price_type(pairs, now)
    return {
        pt.pk: (max(0, pt.limit_per_performance - taken[(performance.pk, pt.pk)]) if pt.limit_per_performance is not None else None)
        for pt in pts
    }


def add_sold(performances: dict[int, Performance], sold: dict[int, int]) -> None:
    """Move the issued-ticket counters. The performances were locked by this transaction."""
    from django.db.models import F

    for perf_id, n in sold.items():
        if settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK:
            # The naive read-modify-write the lock exists to prevent (test switch only).
            perf = performances[perf_id]
            Performance.objects.filter(pk=perf_id).update(tickets_sold=perf.tickets_sold + n)
        else:
            Performance.objects.filter(pk=perf_id).update(tickets_sold=F("tickets_sold") + n)
        performances[perf_id].tickets_sold += n
