"""Staff editing of a performance's seating from the back office: the performance form's
"Seating" choice (general admission or a seating chart).

The chart is always put on through `seating.use_chart` (capacity then follows the chart; a
performance with tickets sold or held keeps its seating, `chart_in_use`). The chart change and
the form's other fields are one transaction: a refusal writes nothing at all.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from wondertix.catalog import seating, staff
from wondertix.catalog.models import Performance
from wondertix.catalog.seating_models import SeatingChart
from wondertix.ops import audit
from wondertix.ops.audit import Actor
from wondertix.sales import errors
from wondertix.sales.errors import SaleError


def _chart(chart_id: int | None) -> SeatingChart | None:
    if chart_id is None:
        return None
    chart = SeatingChart.objects.filter(pk=chart_id).first()
    if chart is None:
        raise errors.invalid("chart_not_found", "No seating chart has that id.", field="seating")
    return chart


def put_chart(perf: Performance, chart: SeatingChart | None, *, actor: Actor) -> Performance:
    """`use_chart` with the audit entry the staff API writes too; `chart_in_use` names the form's field."""
    before = perf.seating_chart_id
    try:
        perf = seating.use_chart(perf, chart)
    except SaleError as exc:
        if exc.code == "chart_in_use":
            exc.field = "seating"
        raise
    after = chart.pk if chart else None
    if before != after:
        audit.record("performance.seating_chart", actor=actor, obj=perf, before={"chart": before}, after={"chart": after})
    return perf


def create_performance(event_id: int, data: dict[str, Any], chart_id: int | None, *, actor: Actor) -> Performance:
    """A new performance, general admission (capacity as given) or selling a chart (capacity
    from the chart: what the form says is ignored)."""
    chart = _chart(chart_id)
    data = dict(data)
    if chart is not None:
        data["capacity"] = seating.chart_capacity(chart) or 1  # use_chart sets the same figure
    with transaction.atomic():
        perf = staff.create_performance(event_id, data, actor=actor)
        if chart is not None:
            perf = put_chart(perf, chart, actor=actor)
    return perf


def update_performance(perf_id: int, changes: dict[str, Any], chart_id: int | None, *, actor: Actor) -> Performance:
    """Edit a performance and its seating together. A reserved performance's capacity is its
    chart's, so the form's capacity applies only to general admission."""
    chart = _chart(chart_id)
    changes = dict(changes)
    with transaction.atomic():
        perf = Performance.objects.filter(pk=perf_id).first()
        if perf is None:
            raise errors.not_found("unknown_performance", "That performance does not exist.")
        perf = put_chart(perf, chart, actor=actor)
        if chart is not None or changes.get("capacity") is None:
            changes.pop("capacity", None)
        return staff.update_performance(perf_id, changes, actor=actor)
