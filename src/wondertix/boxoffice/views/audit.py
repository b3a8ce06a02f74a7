"""The audit log (admins): who did what, when, with the state before and after."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from wondertix.boxoffice.forms import AuditFilterForm
from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.ops.models import AuditEntry


def _start_of(day) -> datetime:  # noqa: ANN001
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


@require_role(ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    entries = AuditEntry.objects.select_related("actor").order_by("-created_at", "-id")
    if form.is_valid():
        d = form.cleaned_data
        if d["actor"]:
            entries = entries.filter(actor_label__icontains=d["actor"].strip())
        if d["action"]:
            entries = entries.filter(action__startswith=d["action"].strip())
        if d["object_type"]:
            entries = entries.filter(object_type__icontains=d["object_type"].strip())
        if d["object_id"]:
            entries = entries.filter(object_id=d["object_id"].strip())
        if d["date_from"]:
            entries = entries.filter(created_at__gte=_start_of(d["date_from"]))
        if d["date_to"]:
            entries = entries.filter(created_at__lt=_start_of(d["date_to"]) + timedelta(days=1))
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()[:200]
    return render(request, "boxoffice/audit/list.html", {"form": form, "page": page, "query": query.urlencode(), "actions": actions})
