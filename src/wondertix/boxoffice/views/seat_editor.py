"""The seat-map editor (admin role): the page, its one save endpoint, a new empty chart, a
duplicate, and a file imported into an existing chart. Every write goes through
`chartedit.save_chart` (the import's validation, then the in-use rules) or `chartfile.save`."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from wondertix.boxoffice.views.seating import _read, admin_only
from wondertix.catalog import chartedit, chartfile
from wondertix.catalog.seating_models import SeatingChart
from wondertix.ops import audit

MAX_SAVE_BYTES = 5 * 1024 * 1024


def _chart(chart_id: int) -> SeatingChart:
    return get_object_or_404(SeatingChart.objects.select_related("venue"), pk=chart_id)


@admin_only
def editor(request: HttpRequest, chart_id: int) -> HttpResponse:
    chart = _chart(chart_id)
    in_use = chart.performances.count()
    return render(request, "boxoffice/seating/editor.html", {
        "chart": chart, "document": chartedit.editor_document(chart), "in_use": in_use,
    })


@admin_only
@require_POST
def save(request: HttpRequest, chart_id: int) -> JsonResponse:
    """The editor's save: the whole chart as JSON. 200 with the reloaded chart, 422 with the
    field at fault, 409 with the sold or held seats a change would orphan."""
    chart = _chart(chart_id)
    if len(request.body) > MAX_SAVE_BYTES:
        return JsonResponse({"error": "invalid_chart", "field": "(the file)", "message": "The chart is larger than 5 MB."}, status=422)
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return JsonResponse({"error": "invalid_chart", "field": "(the file)", "message": f"Not valid JSON ({exc})."}, status=422)
    try:
        saved = chartedit.save_chart(chart.pk, data, actor=request.user)
    except chartfile.ChartFileError as exc:
        return JsonResponse({"error": "invalid_chart", "field": exc.where, "message": f"{exc.where}: {exc.problem}. Nothing was saved."}, status=422)
    except chartedit.ChartInUse as exc:
        return JsonResponse({"error": "chart_in_use", "message": str(exc), "seats": exc.seats}, status=409)
    return JsonResponse({"message": saved.message, **chartedit.editor_document(saved.chart)})


@admin_only
@require_POST
def new_chart(request: HttpRequest) -> HttpResponse:
    """An empty chart (one category, no seats) to draw in the editor."""
    doc = {
        "format": chartfile.FORMAT, "version": chartfile.VERSION,
        "venue": request.POST.get("venue", "").strip(), "name": request.POST.get("name", "").strip(),
        "categories": [{"name": "Seats", "rank": 1}], "sections": [],
    }
    try:
        chart = chartfile.save(chartfile.validate(doc))
    except chartfile.ChartFileError as exc:
        messages.error(request, f"{exc.where}: {exc.problem}. No chart was created.")
        return redirect("boxoffice:seating-charts")
    audit.record("seating_chart.created", actor=request.user, obj=chart, after={"venue": chart.venue.name, "name": chart.name})  # type: ignore[arg-type]
    return redirect("boxoffice:seating-chart-edit", chart.pk)


@admin_only
@require_POST
def duplicate(request: HttpRequest, chart_id: int) -> HttpResponse:
    """A copy of the chart under a new name (the export imported again: an exact copy)."""
    chart = _chart(chart_id)
    doc = chartfile.export(chart)
    doc["name"] = request.POST.get("name", "").strip() or f"{chart.name} (copy)"
    try:
        copy = chartfile.save(chartfile.validate(doc))
    except chartfile.ChartFileError as exc:
        messages.error(request, f"{exc.where}: {exc.problem}. Nothing was copied.")
        return redirect("boxoffice:seating-chart-edit", chart.pk)
    audit.record("seating_chart.duplicated", actor=request.user, obj=copy, before={"chart_id": chart.pk}, after={"name": copy.name})  # type: ignore[arg-type]
    messages.success(request, f"Copied “{chart.name}” to “{copy.name}”.")
    return redirect("boxoffice:seating-chart-edit", copy.pk)


@admin_only
@require_POST
def import_into(request: HttpRequest, chart_id: int) -> HttpResponse:
    """A JSON or CSV file replaces this chart's contents, through the editor's save (so a
    chart in use keeps its sold and held seats). The chart keeps its own venue and name."""
    chart = _chart(chart_id)
    try:
        doc = _read(request).model_dump()
        doc["venue"], doc["name"] = chart.venue.name, chart.name
        saved = chartedit.save_chart(chart.pk, doc, actor=request.user)
    except chartfile.ChartFileError as exc:
        messages.error(request, f"{exc.where}: {exc.problem}. Nothing was imported.")
    except chartedit.ChartInUse as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, saved.message)
    return redirect("boxoffice:seating-chart-edit", chart.pk)
