"""64 buyers race for reserved seats against gunicorn (4 workers) on PostgreSQL: each seat is
sold at most once, the losers are told `seat_taken`, nobody gets a 5xx.

The same race against a server with the sales lock switched off — which also switches off the
seat claims (the unique (performance, seat) rows), leaving the naive "is it taken? then take
it" — must double-sell: proof that the test can see the race.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from tests.support.buyers import GOOD_CARD, Outcome, Request, race, tally
from tests.support.liveserver import LiveServer, manage
from tests.support.seating import chart_document

BUYERS = 64
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class ReservedShow:
    performance_id: int
    price_type_id: int
    seats: list[int]  # row A of the Orchestra, left to right: what the buyers race for
    spare: list[int]  # row B: sold in the warm-up


@pytest.fixture
def make_reserved_show(live_db: str, database_url: str, tmp_path: Path):
    """Factory: a chart imported with the management command, an event priced by category,
    one performance on sale from that chart."""
    from django.utils import timezone

    from wondertix.catalog.models import (
        Event,
        Performance,
        PriceType,
        Seat,
        SeatCategory,
        SeatingChart,
    )

    def make(name: str, seats_per_row: int = 20) -> ReservedShow:
        n = SeatingChart.objects.using(live_db).count() + 1
        doc = chart_document(venue="Race Hall", name=f"{name} {n}", sections=[("Orchestra", "Orchestra", 2, seats_per_row)])
        path = tmp_path / f"chart-{n}.json"
        path.write_text(json.dumps(doc))
        manage(database_url, "seating_chart", "import", str(path))
        chart = SeatingChart.objects.using(live_db).get(venue__name="Race Hall", name=f"{name} {n}")
        category = SeatCategory.objects.using(live_db).get(chart=chart, name="Orchestra")
        event = Event.objects.using(live_db).create(title=f"Seat race {name} {n}", slug=f"seat-race-{name}-{n}", active=True)
        price = PriceType.objects.using(live_db).create(event=event, name="Orchestra", price_cents=4500, fee_cents=200, seat_category=category)
        perf = Performance.objects.using(live_db).create(
            event=event, starts_at=timezone.now() + timedelta(days=14), capacity=2 * seats_per_row, seating_chart=chart,
        )
        rows = {
            row: list(Seat.objects.using(live_db).filter(section__chart=chart, row=row).order_by("x").values_list("pk", flat=True))
            for row in ("A", "B")
        }
        return ReservedShow(perf.pk, price.pk, rows["A"], rows["B"])

    return make


def _order(show: ReservedShow, seat_ids: list[int], i: int) -> dict:
    return {
        "lines": [{"performance_id": show.performance_id, "price_type_id": show.price_type_id, "quantity": len(seat_ids), "seat_ids": seat_ids}],
        "buyer": {"first_name": "Seat", "last_name": "Racer", "email": f"racer{i}@example.org"},
        "card": GOOD_CARD,
    }


@dataclass
class SeatCount:
    outcomes: list[Outcome]
    per_seat: Counter[int]  # seat id of row A -> valid tickets for it
    tickets: int  # valid tickets for row A
    counter: int  # performance.tickets_sold
    all_tickets: int  # valid tickets, the warm-up's included

    @property
    def double_sold(self) -> list[int]:
        return [seat for seat, n in self.per_seat.items() if n > 1]


def _count(live_db: str, show: ReservedShow, outcomes: list[Outcome]) -> SeatCount:
    from wondertix.catalog.models import Performance
    from wondertix.sales.models import Ticket

    seats = list(Ticket.objects.using(live_db).filter(performance_id=show.performance_id, status=Ticket.VALID).values_list("seat_id", flat=True))
    counter = Performance.objects.using(live_db).get(pk=show.performance_id).tickets_sold
    row_a = [seat for seat in seats if seat in show.seats]
    return SeatCount(outcomes, Counter(row_a), len(row_a), counter, len(seats))


def warm_up(server: LiveServer, show: ReservedShow) -> None:
    """Every worker serves an order first (row B, one seat each), so the race starts with warm
    workers: a cold worker's first request is slow enough to serialize the race by accident."""
    outcomes = race(server.url, [Request("/api/v1/orders", _order(show, [seat], 1000 + i)) for i, seat in enumerate(show.spare[:12])])
    assert {o.status for o in outcomes} == {201}, tally(outcomes)


def race_for_two_seats(server: LiveServer, show: ReservedShow, live_db: str) -> SeatCount:
    warm_up(server, show)
    pair = show.seats[4:6]
    outcomes = race(server.url, [Request("/api/v1/orders", _order(show, pair, i)) for i in range(BUYERS)])
    return _count(live_db, show, outcomes)


def race_for_overlapping_pairs(server: LiveServer, show: ReservedShow, live_db: str) -> SeatCount:
    # Buyer i wants seats (k, k+1) with k = i mod 16: every pair overlaps its neighbours, and
    # four buyers want each pair.
    warm_up(server, show)
    outcomes = race(server.url, [Request("/api/v1/orders", _order(show, show.seats[i % 16 : i % 16 + 2], i)) for i in range(BUYERS)])
    return _count(live_db, show, outcomes)


def _assert_each_seat_sold_once(result: SeatCount) -> None:
    summary = tally(result.outcomes)
    assert all(o.status in (201, 409) for o in result.outcomes), f"unexpected answers (5xx, timeouts?): {summary}"
    won = [o for o in result.outcomes if o.status == 201]
    lost = [o for o in result.outcomes if o.status == 409]
    assert {o.code for o in lost} == {"seat_taken"}, summary
    assert all("just taken" in o.body["message"] for o in lost)
    assert not result.double_sold, f"seats sold twice: {result.double_sold}"
    sold_in_answers = [t["seat"]["id"] for o in won for t in o.body["tickets"]]
    assert len(sold_in_answers) == len(set(sold_in_answers)) == result.tickets
    assert set(sold_in_answers) == set(result.per_seat)
    assert result.counter == result.all_tickets, "performance.tickets_sold must equal the tickets issued"


def test_64_buyers_race_for_the_same_2_seats_and_one_buyer_gets_them(app_server, make_reserved_show, live_db):
    show = make_reserved_show("pair")
    result = race_for_two_seats(app_server, show, live_db)
    _assert_each_seat_sold_once(result)
    assert sum(o.status == 201 for o in result.outcomes) == 1
    assert sum(o.status == 409 for o in result.outcomes) == BUYERS - 1
    assert set(result.per_seat) == set(show.seats[4:6])


def test_64_buyers_race_for_overlapping_pairs_and_no_seat_is_sold_twice(app_server, make_reserved_show, live_db):
    show = make_reserved_show("overlap")
    result = race_for_overlapping_pairs(app_server, show, live_db)
    _assert_each_seat_sold_once(result)
    won = sum(o.status == 201 for o in result.outcomes)
    # 17 seats in overlapping pairs: at least 6 disjoint pairs fit whatever the order (a pair
    # blocks at most 3 of the 16 pairs), at most 8.
    assert 6 <= won <= 8, tally(result.outcomes)
    assert result.tickets == 2 * won


def test_a_seat_held_in_a_race_is_held_once(app_server, make_reserved_show, live_db):
    from wondertix.sales.models import SeatClaim

    show = make_reserved_show("holds")
    pair = show.seats[:2]
    line = {"performance_id": show.performance_id, "price_type_id": show.price_type_id, "quantity": 2, "seat_ids": pair}
    outcomes = race(app_server.url, [Request("/api/v1/holds", {"lines": [line]}) for _ in range(BUYERS)])
    summary = tally(outcomes)
    assert summary[(201, "")] == 1 and summary[(409, "seat_taken")] == BUYERS - 1, summary
    assert SeatClaim.objects.using(live_db).filter(performance_id=show.performance_id).count() == 2


# Without the lock the race is a matter of timing: give it a few rounds (each a fresh show).
UNSAFE_ROUNDS = 3


def test_without_the_sales_lock_the_same_seats_are_sold_twice(unsafe_server, make_reserved_show, live_db):
    results = []
    for _ in range(UNSAFE_ROUNDS):
        results.append(race_for_two_seats(unsafe_server, make_reserved_show("unsafe"), live_db))
        if results[-1].double_sold:
            break
    assert results[-1].double_sold, (
        f"the race did not reproduce without the lock in {len(results)} rounds: "
        + "; ".join(str(tally(r.outcomes)) for r in results)
    )
    assert sum(o.status == 201 for o in results[-1].outcomes) > 1
