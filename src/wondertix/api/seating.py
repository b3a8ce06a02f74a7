"""Seating in the API: seat maps with availability, best available seats (public), and chart
import/export for staff (admin role). Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.decorators.gzip import gzip_page
from ninja import Body, Field, Path, Query, Router, Schema
from ninja.decorators import decorate_view

from wondertix.api.auth import StaffToken
from wondertix.api.schemas import MAX_ID, answers
from wondertix.boxoffice.roles import ADMIN
from wondertix.catalog import chartfile, seating
from wondertix.catalog import services as catalog
from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.catalog.seating_models import SeatingChart
from wondertix.ops import audit
from wondertix.sales import errors

public = Router(tags=["public"])
staff = Router(tags=["staff"])
admin = StaffToken(ADMIN)

PerformanceId = Path(..., ge=1, le=MAX_ID, description="A performance id")
ChartId = Path(..., ge=1, le=MAX_ID, description="A seating chart id")


class SeatCategoryOut(Schema):
    id: int
    name: str
    rank: int = Field(..., description="1 = best")
    color: str
    standing: bool = Field(..., description="A standing area: tickets without a seat")
    price_type_ids: list[int] = Field(..., description="The performance's price types for this category")


class MapSeatOut(Schema):
    id: int
    row: str
    label: str
    x: int
    y: int
    category_id: int
    status: str = Field(..., description="available, held, sold or house (kept back, not for sale online)")
    accessible: bool
    companion: bool
    restricted_view: bool


class MapSectionOut(Schema):
    id: int
    name: str
    seats: list[MapSeatOut]


class SeatMapOut(Schema):
    performance_id: int
    chart_id: int
    venue: str
    chart: str
    categories: list[SeatCategoryOut]
    sections: list[MapSectionOut]
    counts: dict[str, int] = Field(..., description="Seats by status")


class BestSeatOut(Schema):
    id: int
    section: str
    row: str
    label: str
    category_id: int


class BestSeatsOut(Schema):
    together: bool = Field(..., description="false: no such block is left; `seats` are the best single seats instead")
    message: str
    category_id: int | None
    seats: list[BestSeatOut]


def _public_performance(performance_id: int) -> Performance:
    perf = catalog.get_public_performance(performance_id)
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    return perf


@public.get(
    "/performances/{performance_id}/seats",
    response={200: SeatMapOut, **answers(404, 422, 503)},
    summary="A reserved performance's seat map, with each seat's status",
    description="`no_seating_chart` (404): the performance is general admission. A display, not a promise: "
    "the seats are taken when a hold or an order is made (`seat_taken` if someone was quicker). "
    "Sent gzip-compressed to clients that accept it (a 2,000-seat map: about 15 KB instead of 330 KB).",
)
@decorate_view(gzip_page)
def seat_map(request: HttpRequest, performance_id: int = PerformanceId) -> dict[str, Any]:
    perf = _public_performance(performance_id)
    smap = seating.seat_map(perf)
    prices: dict[int, list[int]] = {}
    for pt_id, cat_id in catalog_price_types(perf):
        prices.setdefault(cat_id, []).append(pt_id)
    return {
        "performance_id": perf.pk, "chart_id": smap.chart.pk, "venue": smap.chart.venue.name, "chart": smap.chart.name,
        "categories": [
            {"id": c.pk, "name": c.name, "rank": c.rank, "color": c.color, "standing": c.standing, "price_type_ids": prices.get(c.pk, [])}
            for c in smap.categories
        ],
        "sections": smap.sections,
        "counts": smap.counts,
    }


def catalog_price_types(perf: Performance) -> list[tuple[int, int]]:
    return list(
        PriceType.objects.filter(event_id=perf.event_id, active=True, staff_only=False, seat_category__chart_id=perf.seating_chart_id)
        .order_by("sort_order", "id").values_list("pk", "seat_category_id")
    )


@public.get(
    "/performances/{performance_id}/best-seats",
    response={200: BestSeatsOut, **answers(404, 409, 422, 503)},
    summary="The best available seats side by side",
    description="The best-ranked category with `quantity` adjacent free seats in one row (nearest the stage, "
    "then nearest the middle). If none is left together, `together` is false and `seats` are the best "
    "single seats. `sold_out` (409): fewer seats than asked are left. Nothing is held: hold them with POST /holds.",
)
def best_seats(
    request: HttpRequest,
    performance_id: int = PerformanceId,
    quantity: int = Query(..., ge=1, le=20, description="How many seats"),
    category_id: int | None = Query(None, ge=1, le=MAX_ID, description="Only seats of this category"),
) -> dict[str, Any]:
    perf = _public_performance(performance_id)
    best = seating.best_available(perf, quantity, category_id=category_id)
    seats = Seat.objects.filter(pk__in=best.seat_ids).select_related("section").order_by("section__sort_order", "y", "x")
    return {
        "together": best.together, "message": best.message, "category_id": best.category_id,
        "seats": [{"id": s.pk, "section": s.section.name, "row": s.row, "label": s.label, "category_id": s.category_id} for s in seats],
    }


class ChartOut(Schema):
    id: int
    venue: str
    name: str
    seats: int
    capacity: int


class ChartUseIn(Schema):
    chart_id: int | None = Field(..., ge=1, le=MAX_ID, strict=True, description="The chart to sell from; null: general admission")


def _chart_out(chart: SeatingChart) -> dict[str, Any]:
    return {"id": chart.pk, "venue": chart.venue.name, "name": chart.name,
            "seats": Seat.objects.filter(section__chart=chart).count(), "capacity": seating.chart_capacity(chart)}


@staff.post(
    "/charts",
    response={201: ChartOut, **answers(400, 401, 422, 503)},
    auth=admin,
    summary="Import a seating chart (the JSON document of docs/seating.md)",
    description="The whole document is checked first: `invalid_chart` (422) names the field at fault "
    "(`field`, e.g. `sections[0].seats[3].x`) and nothing is written.",
)
def import_chart(request: HttpRequest, payload: dict[str, Any] = Body(..., description="A chart document (format `wondertix-seating-chart`, version 1)")) -> tuple[int, dict[str, Any]]:
    import json

    try:
        chart = chartfile.save(chartfile.parse_json(json.dumps(payload)))
    except chartfile.ChartFileError as exc:
        raise errors.invalid("invalid_chart", f"{exc.where}: {exc.problem}. Nothing was imported.", field=exc.where) from None
    audit.record("seating_chart.imported", actor=request.user, obj=chart, after={"venue": chart.venue.name, "name": chart.name})  # type: ignore[arg-type]
    return 201, _chart_out(chart)


@staff.get("/charts/{chart_id}", response={200: dict[str, Any], **answers(401, 404, 422, 503)}, auth=admin, summary="Export a seating chart as JSON")
def export_chart(request: HttpRequest, chart_id: int = ChartId) -> dict[str, Any]:
    chart = SeatingChart.objects.select_related("venue").filter(pk=chart_id).first()
    if chart is None:
        raise errors.not_found("chart_not_found", "No seating chart has that id.")
    return chartfile.export(chart)


@staff.put(
    "/performances/{performance_id}/chart",
    response={200: ChartOut | None, **answers(400, 401, 404, 409, 422, 503)},
    auth=admin,
    summary="Sell a performance from a seating chart (or make it general admission)",
    description="Capacity becomes the chart's seats plus its standing areas. `chart_in_use` (409): tickets are sold or held.",
)
def use_chart(request: HttpRequest, payload: ChartUseIn, performance_id: int = PerformanceId) -> Any:
    perf = Performance.objects.filter(pk=performance_id).first()
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    chart = None
    if payload.chart_id is not None:
        chart = SeatingChart.objects.select_related("venue").filter(pk=payload.chart_id).first()
        if chart is None:
            raise errors.not_found("chart_not_found", "No seating chart has that id.")
    before = perf.seating_chart_id
    seating.use_chart(perf, chart)
    audit.record("performance.seating_chart", actor=request.user, obj=perf, before={"chart": before}, after={"chart": payload.chart_id})  # type: ignore[arg-type]
    return _chart_out(chart) if chart else None
