"""Every delete asks first (admins): GET shows what will go and whether it can (with the
reason when it cannot); only the POST from that page, which carries `confirm=yes`, deletes. A
POST without it (an old one-click form, a stray request) shows the same question and deletes
nothing. The services re-check under their locks (catalog.staff)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.boxoffice.views.common import attempt, refused_status
from wondertix.catalog import staff
from wondertix.catalog.models import Performance, PriceType, Season, SeasonPrice
from wondertix.money import format_cents
from wondertix.sales.models import DiscountCode, Ticket

admin_only = require_role(ADMIN)
CONFIRM = "yes"


@dataclass
class Question:
    what: str  # "the season “2026/27”"
    consequence: str  # what deleting does
    blocked: str  # why it cannot be deleted ("" when it can)
    delete: Callable[[], object]
    done: str  # the message once deleted
    back: str  # where "Keep it" and the finished delete go


def _ask(request: HttpRequest, q: Question, *, cancel_url: str = "") -> HttpResponse:
    status = 200
    if request.method == "POST" and request.POST.get("confirm") == CONFIRM and not q.blocked:
        done, err = attempt(request, q.delete)
        if err is None:
            messages.success(request, q.done)
            return redirect(q.back)
        q.blocked, status = err.message, refused_status(err)
    elif request.method == "POST":
        status = 409 if q.blocked else 400  # nothing deleted: the question is shown again
    return render(request, "boxoffice/confirm_delete.html", {"q": q, "confirm": CONFIRM, "cancel_url": cancel_url}, status=status)


@admin_only
@require_http_methods(["GET", "POST"])
def season_delete(request: HttpRequest, season_id: int) -> HttpResponse:
    season = get_object_or_404(Season, pk=season_id)
    prices = season.default_prices.count()
    return _ask(request, Question(
        what=f"the season “{season.name}”",
        consequence=f"The season and its {prices} default price{'s' if prices != 1 else ''} are removed for good.",
        blocked=staff.season_in_use(season),
        delete=lambda: staff.delete_season(season_id, actor=request.user),
        done=f"Deleted the season “{season.name}”.",
        back=reverse("boxoffice:seasons") if request.method == "POST" else reverse("boxoffice:season", args=[season_id]),
    ))


@admin_only
@require_http_methods(["GET", "POST"])
def season_price_delete(request: HttpRequest, price_id: int) -> HttpResponse:
    row = get_object_or_404(SeasonPrice.objects.select_related("season"), pk=price_id)
    return _ask(request, Question(
        what=f"the default price “{row.name}” ({format_cents(row.price_cents)}) of {row.season.name}",
        consequence="Events added to the season from now on will not get this price. Events that have it keep their own price type.",
        blocked="",
        delete=lambda: staff.delete_season_price(price_id, actor=request.user),
        done=f"Default price “{row.name}” removed.",
        back=reverse("boxoffice:season", args=[row.season_id]),
    ))


@admin_only
@require_http_methods(["GET", "POST"])
def price_type_delete(request: HttpRequest, price_type_id: int) -> HttpResponse:
    pt = get_object_or_404(PriceType.objects.select_related("event"), pk=price_type_id)
    in_use = Ticket.objects.filter(price_type=pt).exists() or pt.hold_lines.filter(expires_at__gt=timezone.now()).exists()
    return _ask(request, Question(
        what=f"the price type “{pt.name}” of {pt.event.title}",
        consequence="It disappears from the storefront and the window for every performance of the event.",
        blocked=f"“{pt.name}” has tickets sold or held and cannot be deleted. Take it off sale instead." if in_use else "",
        delete=lambda: staff.delete_price_type(price_type_id, actor=request.user),
        done=f"Deleted price type “{pt.name}”.",
        back=reverse("boxoffice:event", args=[pt.event_id]),
    ))


@admin_only
@require_http_methods(["GET", "POST"])
def discount_delete(request: HttpRequest, discount_id: int) -> HttpResponse:
    code = get_object_or_404(DiscountCode, pk=discount_id)
    return _ask(request, Question(
        what=f"the discount code {code.code}",
        consequence="Patrons who type it will be told it is not valid.",
        blocked=(f"{code.code} has been used by {code.times_used} order{'s' if code.times_used != 1 else ''} and cannot be deleted. "
                 "Deactivate it instead." if code.times_used else ""),
        delete=lambda: staff.delete_discount(discount_id, actor=request.user),
        done=f"Deleted code {code.code}.",
        back=reverse("boxoffice:discounts"),
    ))


@admin_only
@require_http_methods(["GET", "POST"])
def performance_delete(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    issued = Ticket.objects.filter(performance=perf).count()
    return _ask(request, Question(
        what=f"the performance {perf}",
        consequence="Nothing has been sold for it. Deleting removes it for good.",
        blocked=(f"This performance has {issued} ticket{'s' if issued != 1 else ''} on record and cannot be deleted. Cancel it instead."
                 if issued or perf.tickets_sold else ""),
        delete=lambda: staff.delete_performance(performance_id, actor=request.user),
        done="Performance deleted.",
        back=reverse("boxoffice:event", args=[perf.event_id]),
    ), cancel_url=reverse("boxoffice:performance-cancel", args=[performance_id]) if issued else "")
