"""Door list and check-in (ushers and up)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from wondertix.boxoffice import checkin
from wondertix.boxoffice.door import door_csv, door_list
from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, USHER, require_role
from wondertix.catalog.models import Performance
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Ticket

door_staff = require_role(USHER, BOX_OFFICE, ADMIN)


def _performance(performance_id: int) -> Performance:
    return get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)


@door_staff
def choose(request: HttpRequest) -> HttpResponse:
    """Performances from earlier today onward, soonest first."""
    since = timezone.now() - timedelta(hours=12)
    perfs = Performance.objects.filter(starts_at__gte=since).select_related("event").order_by("starts_at")[:60]
    return render(request, "boxoffice/door/choose.html", {"performances": perfs})


def _stats(perf: Performance) -> dict[str, int]:
    valid = Ticket.objects.filter(performance=perf, status=Ticket.VALID)
    return {"sold": valid.count(), "checked_in": valid.filter(checked_in_at__isnull=False).count()}


@door_staff
def door(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = _performance(performance_id)
    query = request.GET.get("q", "")
    return render(request, "boxoffice/door/list.html", {
        "perf": perf, "parties": door_list(perf, query), "q": query, "stats": _stats(perf),
    })


@door_staff
def door_print(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = _performance(performance_id)
    return render(request, "boxoffice/door/print.html", {"perf": perf, "parties": door_list(perf), "stats": _stats(perf),
                                                         "printed_at": timezone.now()})


@door_staff
def door_export(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = _performance(performance_id)
    response = HttpResponse(door_csv(perf), content_type="text/csv; charset=utf-8")
    local = timezone.localtime(perf.starts_at)
    response["Content-Disposition"] = f'attachment; filename="door-list-{perf.pk}-{local:%Y%m%d-%H%M}.csv"'
    return response


@door_staff
def scan(request: HttpRequest, performance_id: int) -> HttpResponse:
    """The scanner page. Works without JavaScript (type the code); with JavaScript the static
    script sends each code (typed, or read by the camera) without reloading the page and asks for
    JSON, so a scan made while the phone is offline can be queued and sent later with its
    `scanned_at` time."""
    perf = _performance(performance_id)
    result: dict[str, object] | None = None
    status = 200
    if request.method == "POST":
        code = request.POST.get("code", "")
        try:
            scanned_at = checkin.parse_scanned_at(request.POST.get("scanned_at"))
            ticket = checkin.check_in(code, perf, request.user, scanned_at=scanned_at)  # type: ignore[arg-type]
        except SaleError as exc:
            result = {"ok": False, "message": exc.message, "code": checkin.normalize_code(code), "error": exc.code}
            status = exc.status
        else:
            party = ticket.order.buyer_name
            seat = f"{ticket.place} · " if ticket.seat_id else ""
            result = {"ok": True, "message": f"Welcome! {seat}{ticket.price_type.name} — {party}", "code": ticket.code,
                      "accommodation": ticket.order.buyer_accommodation or (ticket.order.patron.accommodation if ticket.order.patron else ""),
                      "checked_in_at": ticket.checked_in_at.isoformat() if ticket.checked_in_at else None, "seat": ticket.place}
        if "application/json" in request.headers.get("Accept", ""):
            return JsonResponse({**result, "stats": _stats(perf)}, status=status)
    return render(request, "boxoffice/door/scan.html", {"perf": perf, "result": result, "stats": _stats(perf)}, status=status)


@door_staff
@require_POST
def undo(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = _performance(performance_id)
    code = request.POST.get("code", "")
    try:
        ticket = checkin.undo_check_in(code, perf, request.user)  # type: ignore[arg-type]
    except SaleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Check-in of ticket {ticket.code} undone.")
    return redirect(_back(request, perf))


@door_staff
@require_POST
def admit_party(request: HttpRequest, performance_id: int) -> HttpResponse:
    """Check in the tickets of a party found by name (all, or the ones ticked)."""
    perf = _performance(performance_id)
    codes = request.POST.getlist("code")
    if not codes:
        messages.error(request, "Choose at least one ticket to check in.")
        return redirect(_back(request, perf))
    admitted, refused = checkin.check_in_many(codes, perf, request.user)  # type: ignore[arg-type]
    if admitted:
        messages.success(request, f"Checked in {len(admitted)} ticket{'s' if len(admitted) != 1 else ''}.")
    for code, message in refused:
        messages.error(request, f"{code}: {message}")
    return redirect(_back(request, perf))


def _back(request: HttpRequest, perf: Performance) -> str:
    back = request.POST.get("back", "")
    return back if back.startswith(f"/staff/door/{perf.pk}/") else f"/staff/door/{perf.pk}/"
