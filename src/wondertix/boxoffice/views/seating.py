"""Seating charts for staff (admin role): the list, a file upload (JSON or CSV) and the JSON export."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.catalog import chartfile
from wondertix.catalog.seating_models import SeatingChart
from wondertix.ops import audit

admin_only = require_role(ADMIN)
MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def _read(request: HttpRequest) -> chartfile.ChartIn:
    upload = request.FILES.get("file")
    if upload is None:
        raise chartfile.ChartFileError("file", "choose a .json or .csv file")
    if upload.size is None or upload.size > MAX_UPLOAD_BYTES:
        raise chartfile.ChartFileError("file", "the file is larger than 5 MB")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise chartfile.ChartFileError("file", "the file is not UTF-8 text") from None
    venue = request.POST.get("venue", "").strip()
    name = request.POST.get("name", "").strip()
    if (upload.name or "").lower().endswith(".csv"):
        if not venue or not name:
            raise chartfile.ChartFileError("venue", "a CSV chart needs the venue and the chart's name")
        return chartfile.parse_csv(text, venue=venue, name=name)
    chart = chartfile.parse_json(text)
    return chart.model_copy(update={k: v for k, v in (("venue", venue), ("name", name)) if v})


@admin_only
def charts(request: HttpRequest) -> HttpResponse:
    error = ""
    status = 200
    if request.method == "POST":
        try:
            saved = chartfile.save(_read(request))
        except chartfile.ChartFileError as exc:
            error, status = f"{exc.where}: {exc.problem}. Nothing was imported.", 422
        else:
            audit.record("seating_chart.imported", actor=request.user, obj=saved, after={"venue": saved.venue.name, "name": saved.name})  # type: ignore[arg-type]
            messages.success(request, f"Imported the chart “{saved.name}” for {saved.venue.name}.")
            return redirect("boxoffice:seating-charts")
    listed = SeatingChart.objects.select_related("venue").annotate(seats=Count("sections__seats")).order_by("venue__name", "name")
    return render(request, "boxoffice/seating/charts.html", {"charts": listed, "error": error, "form_data": request.POST}, status=status)


@admin_only
def chart_export(request: HttpRequest, chart_id: int) -> HttpResponse:
    chart = get_object_or_404(SeatingChart.objects.select_related("venue"), pk=chart_id)
    response = HttpResponse(chartfile.dumps(chart), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="seating-chart-{chart.pk}.json"'
    return response
