"""The reserved on-sale for onsale.py (`--mode reserved`): a 2,000-seat chart, buyers picking
pairs of adjacent seats at random, so some pick seats another buyer just took (`seat_taken`)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from typing import Any

from seatmap import SECTIONS
from tests.support.seating import chart_document

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def make_reserved_performance() -> tuple[int, dict[int, int], list[tuple[int, int, int]]]:
    """(performance id, category id -> price type id, the adjacent pairs (seat, seat, category)
    that tile the chart: 1,000 pairs for 2,000 seats)."""
    from django.utils import timezone

    from wondertix.catalog import chartfile, seating
    from wondertix.catalog.models import Event, Performance, PriceType, Seat

    tag = uuid.uuid4().hex[:10]
    chart = chartfile.save(chartfile.parse_json(json.dumps(chart_document(venue=f"Bench Hall {tag}", name="2000", sections=SECTIONS))))
    event = Event.objects.create(title="Bench reserved", slug=f"bench-reserved-{tag}", active=True)
    prices = {c.pk: PriceType.objects.create(event=event, name=c.name, price_cents=3000 + 1000 * (3 - c.rank), fee_cents=200, seat_category=c).pk
              for c in chart.categories.all()}
    perf = seating.use_chart(Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=30), capacity=1), chart)
    seats = list(Seat.objects.filter(section__chart=chart).order_by("section_id", "row", "x").values_list("pk", "section_id", "row", "category_id"))
    pairs = [(a[0], b[0], a[3]) for a, b in zip(seats[::2], seats[1::2], strict=True) if a[1:3] == b[1:3]]
    return perf.pk, prices, pairs


def body_for_pairs(performance_id: int, prices: dict[int, int], pairs: list[tuple[int, int, int]], seed: int = 11):  # noqa: ANN201
    """Order i asks for a random pair (seeded): popular pairs collide."""
    rng = random.Random(seed)  # noqa: S311 - a benchmark's choice, not a secret
    picks = [pairs[rng.randrange(len(pairs))] for _ in range(100_000)]

    def make(i: int) -> dict[str, Any]:
        a, b, category = picks[i % len(picks)]
        return {
            "lines": [{"performance_id": performance_id, "price_type_id": prices[category], "quantity": 2, "seat_ids": [a, b]}],
            "buyer": {"first_name": "Bench", "last_name": f"Buyer {i}", "email": f"seat{i}@bench.example.org"},
            "card": CARD,
        }

    return make


def double_sold(performance_id: int) -> int:
    """Seats with more than one valid ticket (must be 0)."""
    from django.db.models import Count

    from wondertix.sales.models import Ticket

    return (
        Ticket.objects.filter(performance_id=performance_id, status=Ticket.VALID, seat__isnull=False)
        .values("seat_id").annotate(n=Count("id")).filter(n__gt=1).count()
    )
