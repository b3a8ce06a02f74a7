"""Report pages and CSV exports, mounted at /staff/reports/ (box office and admins)."""

from __future__ import annotations

from datetime import date

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, require_role
from wondertix.reports import services
from wondertix.reports.tables import REPORTS

staff_only = require_role(BOX_OFFICE, ADMIN)


class PeriodError(ValueError):
    pass


def period_from(params: dict) -> services.Period:
    """?from=YYYY-MM-DD&to=YYYY-MM-DD, dates in the theater's zone, both optional."""
    values: dict[str, date | None] = {}
    for key in ("from", "to"):
        raw = (params.get(key) or "").strip()
        if not raw:
            values[key] = None
            continue
        try:
            values[key] = services.parse_report_date(raw)
        except ValueError as exc:
            raise PeriodError(str(exc)) from None
    if values["from"] and values["to"] and values["from"] > values["to"]:
        raise PeriodError("The start date is after the end date.")
    return services.Period(values["from"], values["to"])


def _period_or_error(request: HttpRequest) -> tuple[services.Period, str]:
    try:
        return period_from(request.GET), ""
    except PeriodError as exc:
        return services.Period(), str(exc)


@staff_only
def index(request: HttpRequest) -> HttpResponse:
    period, error = _period_or_error(request)
    summary = services.summary(period)
    from wondertix.reports.tables import summary_table

    return render(request, "reports/index.html", {
        "period": period, "error": error, "summary": summary, "table": summary_table(period), "reports": REPORTS,
        "query": request.GET.urlencode(), "today": timezone.localdate(),
    }, status=422 if error else 200)


@staff_only
def report(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in REPORTS:
        raise Http404("No such report.")
    period, error = _period_or_error(request)
    table = REPORTS[slug][1](period)
    return render(request, "reports/report.html", {
        "table": table, "period": period, "error": error, "slug": slug, "reports": REPORTS, "query": request.GET.urlencode(),
    }, status=422 if error else 200)


@staff_only
def report_csv(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in REPORTS:
        raise Http404("No such report.")
    try:
        period = period_from(request.GET)
    except PeriodError as exc:
        return HttpResponse(str(exc), status=422, content_type="text/plain; charset=utf-8")
    table = REPORTS[slug][1](period)
    response = HttpResponse(table.to_csv(), content_type="text/csv; charset=utf-8")
    suffix = f"_{period.date_from or 'start'}_{period.date_to or 'now'}" if period.date_from or period.date_to else ""
    response["Content-Disposition"] = f'attachment; filename="{slug}{suffix}.csv"'
    return response
