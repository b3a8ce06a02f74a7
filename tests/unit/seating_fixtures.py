"""A reserved performance for unit tests: a chart imported the way staff import one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from tests.support.seating import chart_document


@dataclass
class Reserved:
    perf: object
    prices: dict  # category name -> PriceType
    seats: dict  # "Section/Row/Label" -> Seat id


def make_reserved(n: int = 1, **chart_kwargs) -> Reserved:  # noqa: ANN003
    from wondertix.catalog import chartfile, seating
    from wondertix.catalog.models import Event, Performance, PriceType, Seat

    chart = chartfile.save(chartfile.parse_json(__import__("json").dumps(chart_document(name=f"Chart {n}", **chart_kwargs))))
    event = Event.objects.create(title=f"Reserved {n}", slug=f"reserved-{n}", active=True)
    prices = {}
    for i, cat in enumerate(chart.categories.all()):
        prices[cat.name] = PriceType.objects.create(event=event, name=cat.name, price_cents=4500 - 1500 * i, fee_cents=200, seat_category=cat)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=7), capacity=1)
    perf = seating.use_chart(perf, chart)
    seats = {f"{s.section.name}/{s.row}/{s.label}": s.pk for s in Seat.objects.filter(section__chart=chart).select_related("section")}
    return Reserved(perf, prices, seats)
