"""The staff home page: today's performances and a tile for every area."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, USHER, require_role, roles_of
from wondertix.catalog.models import Performance


def todays_performances() -> list[Performance]:
    today = timezone.localdate()
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(today, time.min), zone)
    end = start + timedelta(days=1)
    return list(
        Performance.objects.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related("event")
        .order_by("starts_at")
    )


@require_role(USHER, BOX_OFFICE, ADMIN)
def dashboard(request: HttpRequest) -> HttpResponse:
    roles = roles_of(request.user)
    return render(
        request,
        "boxoffice/dashboard.html",
        {
            "today": todays_performances(),
            "can_sell": bool(roles & {ADMIN, BOX_OFFICE}),
            "is_admin": ADMIN in roles,
        },
    )
