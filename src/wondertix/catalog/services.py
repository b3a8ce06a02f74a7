"""Reading the catalog for the storefront and the API: what is on, and how full it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Event, Performance, PerformancePrice, PriceType
from wondertix.sales import inventory

ON_SALE = "on_sale"
SOLD_OUT = "sold_out"
NOT_YET = "not_on_sale_yet"
CLOSED = "sales_closed"
CANCELED = "canceled"


@dataclass(frozen=True)
class PerformanceState:
    performance: Performance
    status: str
    available: int

    @property
    def buyable(self) -> bool:
        return self.status == ON_SALE


def status_of(perf: Performance, available: int, now: datetime) -> str:
    if perf.status == Performance.CANCELED:
        return CANCELED
    if now >= perf.sales_close_at:
        return CLOSED
    if perf.on_sale_from and now < perf.on_sale_from:
        return NOT_YET
    if available <= 0:
        return SOLD_OUT
    return ON_SALE


def public_events() -> QuerySet[Event]:
    now = timezone.now()
    upcoming = Performance.objects.filter(starts_at__gt=now).order_by("starts_at")
    return (
        Event.objects.filter(active=True, performances__starts_at__gt=now)
        .distinct()
        .select_related("season")
        .prefetch_related(Prefetch("performances", queryset=upcoming, to_attr="upcoming"))
        .order_by("title")
    )


def states_for(performances: list[Performance], now: datetime | None = None) -> list[PerformanceState]:
    now = now or timezone.now()
    avail = inventory.availability_for([p.pk for p in performances], now)
    return [
        PerformanceState(p, status_of(p, avail[p.pk].available, now), avail[p.pk].available)
        for p in performances
    ]


def public_price_types(perf: Performance) -> list[PriceType]:
    """The price types a patron can buy for this performance, priced as sold at it."""
    return performance_prices.for_performance(perf, perf.event.price_types.filter(active=True, staff_only=False))


def mark_own_prices(performances: list[Performance]) -> None:
    """Set `own_prices` on each performance whose price for some type differs from the list
    price (a preview, a Saturday night): the event page says so next to that date."""
    ids = set(
        PerformancePrice.objects.filter(performance__in=performances)
        .exclude(price_cents__isnull=True, fee_cents__isnull=True)
        .values_list("performance_id", flat=True)
    )
    for p in performances:
        p.own_prices = p.pk in ids  # type: ignore[attr-defined]


def get_public_performance(pk: int) -> Performance | None:
    return (
        Performance.objects.select_related("event", "event__season")
        .filter(pk=pk, event__active=True)
        .first()
    )
