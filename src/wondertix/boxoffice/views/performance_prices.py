"""A performance's own prices and accessibility tags (admins): /staff/performances/<id>/prices/.

Thin: each form is parsed, one service is called (catalog.performance_prices, catalog.access),
and a refusal is shown on the page with a 4xx status; nothing is written on bad input.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from wondertix.boxoffice.forms import MoneyField
from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.boxoffice.views.common import attempt
from wondertix.catalog import access, performance_prices
from wondertix.catalog.models import ACCESS_TAGS, Performance, PerformancePrice

admin_only = require_role(ADMIN)


class OverrideForm(forms.Form):
    price_cents = MoneyField(label="Price at this performance", required=False, help_text="Empty: the usual price.")
    fee_cents = MoneyField(label="Fee at this performance", required=False, help_text="Empty: the usual fee.")
    limit_per_performance = forms.IntegerField(label="Most for this performance", required=False, min_value=0,
                                               max_value=performance_prices.MAX_LIMIT, help_text="Empty: the usual limit.")


class AccessForm(forms.Form):
    tags = forms.MultipleChoiceField(label="Accessibility", required=False, widget=forms.CheckboxSelectMultiple,
                                     choices=list(ACCESS_TAGS.items()))


def _rows(perf: Performance, bound: tuple[int, OverrideForm] | None) -> list[dict[str, Any]]:
    pts = list(perf.event.price_types.all())
    own = {r.price_type_id: r for r in PerformancePrice.objects.filter(performance=perf)}
    effective = {pt.pk: pt for pt in performance_prices.for_performance(perf, pts)}
    rows = []
    for pt in pts:
        row = own.get(pt.pk)
        initial = {k: getattr(row, k) for k in performance_prices.OVERRIDE_FIELDS} if row else {}
        form = bound[1] if bound and bound[0] == pt.pk else OverrideForm(initial=initial, prefix=f"pt{pt.pk}")
        rows.append({"pt": pt, "own": row, "effective": effective[pt.pk], "form": form})
    return rows


def _page(request: HttpRequest, perf: Performance, *, bound: tuple[int, OverrideForm] | None = None,
          access_form: AccessForm | None = None, status: int = 200) -> HttpResponse:
    tags = access.tags_by_performance([perf.pk])[perf.pk]
    return render(request, "boxoffice/events/performance_prices.html", {
        "perf": perf, "rows": _rows(perf, bound), "access_form": access_form or AccessForm(initial={"tags": tags}, prefix="access"),
    }, status=status)


@admin_only
def prices(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    if request.method != "POST":
        return _page(request, perf)
    raw = request.POST.get("price_type", "")
    pt = perf.event.price_types.filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 12 else None
    if pt is None:
        messages.error(request, "Choose one of this event's price types.")
        return _page(request, perf, status=422)
    if request.POST.get("action") == "clear":
        performance_prices.clear_override(perf.pk, pt.pk, actor=request.user)
        messages.success(request, f"“{pt.name}” is back to its usual price, fee and limit at this performance.")
        return redirect("boxoffice:performance-prices", performance_id=perf.pk)
    form = OverrideForm(request.POST, prefix=f"pt{pt.pk}")
    if not form.is_valid():
        return _page(request, perf, bound=(pt.pk, form), status=422)
    done, err = attempt(request, lambda: performance_prices.set_override(perf.pk, pt.pk, form.cleaned_data, actor=request.user), form)
    if err is not None:
        return _page(request, perf, bound=(pt.pk, form), status=err.status)
    messages.success(request, f"Saved “{pt.name}” for this performance." if done else f"“{pt.name}” uses its usual price, fee and limit.")
    return redirect("boxoffice:performance-prices", performance_id=perf.pk)


@admin_only
def access_tags(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    if request.method != "POST":
        return redirect("boxoffice:performance-prices", performance_id=perf.pk)
    form = AccessForm(request.POST, prefix="access")
    if not form.is_valid():
        return _page(request, perf, access_form=form, status=422)
    _, err = attempt(request, lambda: access.set_tags(perf.pk, form.cleaned_data["tags"], actor=request.user), form)
    if err is not None:
        return _page(request, perf, access_form=form, status=err.status)
    messages.success(request, "Accessibility saved.")
    return redirect("boxoffice:performance-prices", performance_id=perf.pk)
