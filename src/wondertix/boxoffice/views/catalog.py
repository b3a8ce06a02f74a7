"""Events, performances, price types, seasons and discount codes (admins)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from wondertix.boxoffice import forms as f
from wondertix.boxoffice.roles import ADMIN, require_role
from wondertix.boxoffice.views.common import attempt, form_page, refused_status
from wondertix.catalog import staff, staff_seating
from wondertix.catalog.models import Event, Performance, PriceType, Season, SeasonPrice
from wondertix.money import format_cents, parse_id
from wondertix.sales import cancellation
from wondertix.sales.models import DiscountCode, Order

admin_only = require_role(ADMIN)

EVENT_FIELDS = ["title", "slug", "season", "description", "image_url", "image_alt", "duration_minutes"]
PERF_FIELDS = ["starts_at", "capacity", "on_sale_from", "on_sale_until", "note"]
PT_FIELDS = ["name", "description", "price_cents", "fee_cents", "limit_per_performance", "pay_what_you_can",
             "min_price_cents", "max_price_cents", "staff_only", "sort_order", "seat_category"]
SEASON_FIELDS = ["name", "slug", "starts_on", "ends_on", "active"]
SEASON_PRICE_FIELDS = ["name", "price_cents", "fee_cents", "limit_per_performance", "staff_only", "sort_order"]
DISCOUNT_FIELDS = ["code", "description", "kind", "value", "usage_limit", "min_tickets", "valid_from", "valid_until"]


SEATING_INTRO = ("Seating: general admission sells the capacity you enter; a seating chart sells its seats "
                 "(capacity is then the chart's). Seating cannot change once tickets are sold or held.")


def _flag(request: HttpRequest) -> bool:
    return request.POST.get("active") == "1"


# ---------------------------------------------------------------------------- events


@admin_only
def event_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "all")
    events = Event.objects.select_related("season").annotate(n_perfs=Count("performances")).order_by("-active", "title")
    if show == "active":
        events = events.filter(active=True)
    elif show == "inactive":
        events = events.filter(active=False)
    return render(request, "boxoffice/events/list.html", {"events": events, "show": show})


@admin_only
def event_new(request: HttpRequest) -> HttpResponse:
    form = f.EventForm(request.POST or None, initial={"season": request.GET.get("season")})
    if request.method == "POST" and form.is_valid():
        event, err = attempt(request, lambda: staff.create_event(f.changes_from(form, EVENT_FIELDS), actor=request.user), form)
        if event is not None:
            messages.success(request, f"Created “{event.title}”. Add performances and price types, then activate it.")
            return redirect(f"/staff/events/{event.pk}/")
        return form_page(request, form, title="New event", back="/staff/events/", status=refused_status(err))
    return form_page(request, form, title="New event", back="/staff/events/", submit="Create event",
                     intro="New events start inactive: nothing is on sale until you activate it.",
                     status=422 if form.errors else 200)


def _unsellable(performances: list[Performance], price_types: list[PriceType]) -> None:
    """Mark each performance that no active price type can sell (`perf.no_prices`): a reserved
    one needs a price for a category of its chart, a general-admission one a price without a
    category. The sale path refuses the others; the house manager should see it before patrons do."""
    charts = {pt.seat_category.chart_id for pt in price_types if pt.active and pt.seat_category is not None}
    plain = any(pt.active and pt.seat_category_id is None for pt in price_types)
    for perf in performances:
        perf.no_prices = (perf.seating_chart_id not in charts) if perf.seating_chart_id else not plain  # type: ignore[attr-defined]


@admin_only
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("season"), pk=event_id)
    performances = list(event.performances.select_related("seating_chart__venue").order_by("starts_at"))
    price_types = list(event.price_types.select_related("seat_category__chart__venue"))
    _unsellable(performances, price_types)
    return render(request, "boxoffice/events/detail.html", {
        "event": event,
        "performances": performances,
        "price_types": price_types,
        "seasons": Season.objects.all(),
    })


@admin_only
def event_edit(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    form = f.EventForm(request.POST or None, instance=event)
    back = f"/staff/events/{event_id}/"
    if request.method == "POST" and form.is_valid():
        done, err = attempt(request, lambda: staff.update_event(event_id, f.changes_from(form, EVENT_FIELDS), actor=request.user), form)
        if done is not None:
            messages.success(request, "Event saved.")
            return redirect(back)
        return form_page(request, form, title=f"Edit {event.title}", back=back, status=refused_status(err))
    return form_page(request, form, title=f"Edit {event.title}", back=back, status=422 if form.errors else 200)


@admin_only
@require_POST
def event_active(request: HttpRequest, event_id: int) -> HttpResponse:
    active = _flag(request)
    event, _ = attempt(request, lambda: staff.set_event_active(event_id, active, actor=request.user))
    if event is not None:
        messages.success(request, f"“{event.title}” is now {'active and on sale' if active else 'inactive (hidden from the storefront)'}.")
    return redirect(f"/staff/events/{event_id}/")


@admin_only
@require_POST
def event_season(request: HttpRequest, event_id: int) -> HttpResponse:
    raw = request.POST.get("season_id", "")
    season_id = parse_id(raw)
    event, _ = attempt(request, lambda: staff.add_event_to_season(event_id, season_id, actor=request.user))
    if event is not None:
        messages.success(request, "Season saved." if season_id else "Removed from its season.")
    back = request.POST.get("back", "")
    return redirect(back if back.startswith("/staff/") else f"/staff/events/{event_id}/")


# ---------------------------------------------------------------------------- performances


@admin_only
def performance_new(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    form = f.PerformanceForm(request.POST or None)
    back = f"/staff/events/{event_id}/"
    title = f"New performance of {event.title}"
    if request.method == "POST" and form.is_valid():
        changes = f.changes_from(form, PERF_FIELDS)
        perf, err = attempt(request, lambda: staff_seating.create_performance(event_id, changes, form.chart_id(), actor=request.user), form)
        if perf is not None:
            messages.success(request, f"Added {perf}" + (f", selling the seats of “{perf.seating_chart}” ({perf.capacity} places)." if perf.seating_chart_id else "."))
            return redirect(back)
        return form_page(request, form, title=title, back=back, submit="Add performance", intro=SEATING_INTRO, status=refused_status(err))
    return form_page(request, form, title=title, back=back, submit="Add performance", intro=SEATING_INTRO,
                     status=422 if form.errors else 200)


@admin_only
def performance_edit(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event", "seating_chart__venue"), pk=performance_id)
    form = f.PerformanceForm(request.POST or None, instance=perf)
    back = f"/staff/events/{perf.event_id}/"
    title = f"Edit {perf}"
    intro = f"{perf.tickets_sold} sold of {perf.capacity}. Capacity cannot go below what is sold."
    if perf.seating_chart_id is not None:
        intro = (f"{perf.tickets_sold} sold of {perf.capacity}. Seats are sold from the chart “{perf.seating_chart}”: "
                 "its seats and standing places are the capacity.")
    intro += " The seating cannot change once tickets are sold or held."
    if request.method == "POST" and form.is_valid():
        changes = f.changes_from(form, PERF_FIELDS)
        done, err = attempt(request, lambda: staff_seating.update_performance(performance_id, changes, form.chart_id(), actor=request.user), form)
        if done is not None:
            messages.success(request, "Performance saved.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, intro=intro, status=refused_status(err))
    return form_page(request, form, title=title, back=back, intro=intro, status=422 if form.errors else 200)


@admin_only
def performance_copy(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    form = f.CopyPerformanceForm(request.POST or None, initial={"starts_at": staff.default_copy_time(perf)})
    back = f"/staff/events/{perf.event_id}/"
    title = f"Copy {perf}"
    if request.method == "POST" and form.is_valid():
        copy, err = attempt(request, lambda: staff.copy_performance(performance_id, form.cleaned_data["starts_at"], actor=request.user), form)
        if copy is not None:
            messages.success(request, f"Copied to {copy}.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, status=refused_status(err))
    return form_page(request, form, title=title, back=back, submit="Copy performance",
                     intro="Same capacity, seating chart and note; the online sale window moves with the new date.",
                     status=422 if form.errors else 200)


@admin_only
def performance_cancel(request: HttpRequest, performance_id: int) -> HttpResponse:
    """The confirmation page (what canceling does: orders, tickets, refund total), and the one
    action that cancels, refunds every buyer and emails them (sales.cancellation)."""
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    form = f.CancelPerformanceForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done, err = attempt(request, lambda: cancellation.cancel_and_refund(performance_id, data["reason"], method=data["method"],
                                                                             actor=request.user), form)  # type: ignore[arg-type]
        if done is not None:
            if done.failed:
                messages.warning(request, f"{len(done.failed)} order(s) could not be refunded: "
                                 + "; ".join(f"{Order(pk=k).reference}: {v}" for k, v in done.failed.items())
                                 + " Run the action again to retry them.")
            messages.success(request, f"Performance canceled. Refunded {done.tickets} ticket(s) on {len(done.refunded_orders)} order(s), "
                                      f"{format_cents(done.amount_cents)} in total; each buyer with an email address is told.")
            return redirect("boxoffice:performance-cancel", performance_id=performance_id)
        status = refused_status(err)
    elif form.errors:
        status = 422
    perf.refresh_from_db()
    return render(request, "boxoffice/events/cancel.html",
                  {"perf": perf, "form": form, "plan": cancellation.plan(performance_id), "buyers": staff.buyers_of(performance_id)},
                  status=status)


# ---------------------------------------------------------------------------- price types


@admin_only
def price_type_new(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    form = f.PriceTypeForm(request.POST or None)
    back = f"/staff/events/{event_id}/"
    title = f"New price type for {event.title}"
    if request.method == "POST" and form.is_valid():
        pt, err = attempt(request, lambda: staff.create_price_type(event_id, f.changes_from(form, PT_FIELDS), actor=request.user), form)
        if pt is not None:
            messages.success(request, f"Added price type “{pt.name}”.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, status=refused_status(err))
    return form_page(request, form, title=title, back=back, submit="Add price type", status=422 if form.errors else 200)


@admin_only
def price_type_edit(request: HttpRequest, price_type_id: int) -> HttpResponse:
    pt = get_object_or_404(PriceType.objects.select_related("event"), pk=price_type_id)
    form = f.PriceTypeForm(request.POST or None, instance=pt)
    back = f"/staff/events/{pt.event_id}/"
    title = f"Edit {pt.name} ({pt.event.title})"
    if request.method == "POST" and form.is_valid():
        done, err = attempt(request, lambda: staff.update_price_type(price_type_id, f.changes_from(form, PT_FIELDS), actor=request.user), form)
        if done is not None:
            messages.success(request, "Price type saved. Tickets already sold keep their price.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, status=refused_status(err))
    return form_page(request, form, title=title, back=back, status=422 if form.errors else 200)


@admin_only
@require_POST
def price_type_active(request: HttpRequest, price_type_id: int) -> HttpResponse:
    active = _flag(request)
    pt, _ = attempt(request, lambda: staff.set_price_type_active(price_type_id, active, actor=request.user))
    if pt is None:
        pt = get_object_or_404(PriceType, pk=price_type_id)
    else:
        messages.success(request, f"“{pt.name}” is now {'on sale' if active else 'off sale'}.")
    return redirect(f"/staff/events/{pt.event_id}/")


# ---------------------------------------------------------------------------- seasons


@admin_only
def season_list(request: HttpRequest) -> HttpResponse:
    seasons = Season.objects.annotate(n_events=Count("events"))
    return render(request, "boxoffice/seasons/list.html", {"seasons": seasons})


@admin_only
def season_new(request: HttpRequest) -> HttpResponse:
    form = f.SeasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        season, err = attempt(request, lambda: staff.create_season(f.changes_from(form, SEASON_FIELDS), actor=request.user), form)
        if season is not None:
            messages.success(request, f"Created season “{season.name}”. Add its default prices.")
            return redirect(f"/staff/seasons/{season.pk}/")
        return form_page(request, form, title="New season", back="/staff/seasons/", status=refused_status(err))
    return form_page(request, form, title="New season", back="/staff/seasons/", submit="Create season",
                     status=422 if form.errors else 200)


@admin_only
def season_detail(request: HttpRequest, season_id: int) -> HttpResponse:
    season = get_object_or_404(Season, pk=season_id)
    return render(request, "boxoffice/seasons/detail.html", {
        "season": season,
        "events": season.events.all(),
        "other_events": Event.objects.exclude(season=season).order_by("title"),
        "prices": season.default_prices.all(),
        "price_form": f.SeasonPriceForm(),
    })


@admin_only
def season_edit(request: HttpRequest, season_id: int) -> HttpResponse:
    season = get_object_or_404(Season, pk=season_id)
    form = f.SeasonForm(request.POST or None, instance=season)
    back = f"/staff/seasons/{season_id}/"
    if request.method == "POST" and form.is_valid():
        done, err = attempt(request, lambda: staff.update_season(season_id, f.changes_from(form, SEASON_FIELDS), actor=request.user), form)
        if done is not None:
            messages.success(request, "Season saved.")
            return redirect(back)
        return form_page(request, form, title=f"Edit {season.name}", back=back, status=refused_status(err))
    return form_page(request, form, title=f"Edit {season.name}", back=back, status=422 if form.errors else 200)


@admin_only
@require_POST
def season_active(request: HttpRequest, season_id: int) -> HttpResponse:
    active = _flag(request)
    season, _ = attempt(request, lambda: staff.set_season_active(season_id, active, actor=request.user))
    if season is not None:
        messages.success(request, f"“{season.name}” is now {'active' if active else 'inactive'}.")
    return redirect(f"/staff/seasons/{season_id}/")


@admin_only
def season_price_new(request: HttpRequest, season_id: int) -> HttpResponse:
    season = get_object_or_404(Season, pk=season_id)
    form = f.SeasonPriceForm(request.POST or None)
    back = f"/staff/seasons/{season_id}/"
    title = f"New default price for {season.name}"
    if request.method == "POST" and form.is_valid():
        row, err = attempt(request, lambda: staff.save_season_price(season_id, f.changes_from(form, SEASON_PRICE_FIELDS), actor=request.user), form)
        if row is not None:
            messages.success(request, f"Default price “{row.name}” saved; new events in this season get it.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, status=refused_status(err))
    return form_page(request, form, title=title, back=back, submit="Add default price", status=422 if form.errors else 200)


@admin_only
def season_price_edit(request: HttpRequest, price_id: int) -> HttpResponse:
    row = get_object_or_404(SeasonPrice.objects.select_related("season"), pk=price_id)
    form = f.SeasonPriceForm(request.POST or None, instance=row)
    back = f"/staff/seasons/{row.season_id}/"
    title = f"Edit default price {row.name}"
    if request.method == "POST" and form.is_valid():
        done, err = attempt(request, lambda: staff.save_season_price(row.season_id, f.changes_from(form, SEASON_PRICE_FIELDS),
                                                                    actor=request.user, price_id=price_id), form)
        if done is not None:
            messages.success(request, "Default price saved (existing events keep their own prices).")
            return redirect(back)
        return form_page(request, form, title=title, back=back, status=refused_status(err))
    return form_page(request, form, title=title, back=back, status=422 if form.errors else 200)


# ---------------------------------------------------------------------------- discount codes


@admin_only
def discount_list(request: HttpRequest) -> HttpResponse:
    codes = DiscountCode.objects.prefetch_related("price_types__event")
    return render(request, "boxoffice/discounts/list.html", {"codes": codes})


def _discount_ids(form: f.DiscountCodeForm) -> list[int]:
    return [pt.pk for pt in form.cleaned_data.get("price_types") or []]


@admin_only
def discount_new(request: HttpRequest) -> HttpResponse:
    form = f.DiscountCodeForm(request.POST or None)
    back = "/staff/discounts/"
    if request.method == "POST" and form.is_valid():
        code, err = attempt(request, lambda: staff.create_discount(f.changes_from(form, DISCOUNT_FIELDS), _discount_ids(form), actor=request.user), form)
        if code is not None:
            messages.success(request, f"Created code {code.code}.")
            return redirect(back)
        return form_page(request, form, title="New discount code", back=back, status=refused_status(err))
    return form_page(request, form, title="New discount code", back=back, submit="Create code", status=422 if form.errors else 200)


@admin_only
def discount_edit(request: HttpRequest, discount_id: int) -> HttpResponse:
    code = get_object_or_404(DiscountCode, pk=discount_id)
    form = f.DiscountCodeForm(request.POST or None, instance=code)
    back = "/staff/discounts/"
    title = f"Edit code {code.code}"
    intro = f"Used by {code.times_used} order{'s' if code.times_used != 1 else ''}."
    if request.method == "POST" and form.is_valid():
        done, err = attempt(request, lambda: staff.update_discount(discount_id, f.changes_from(form, DISCOUNT_FIELDS), _discount_ids(form),
                                                                  actor=request.user), form)
        if done is not None:
            messages.success(request, "Code saved.")
            return redirect(back)
        return form_page(request, form, title=title, back=back, intro=intro, status=refused_status(err))
    return form_page(request, form, title=title, back=back, intro=intro, status=422 if form.errors else 200)


@admin_only
@require_POST
def discount_active(request: HttpRequest, discount_id: int) -> HttpResponse:
    active = _flag(request)
    code, _ = attempt(request, lambda: staff.set_discount_active(discount_id, active, actor=request.user))
    if code is not None:
        messages.success(request, f"{code.code} is now {'active' if active else 'inactive'}.")
    return redirect("/staff/discounts/")


@admin_only
@require_POST
def season_add_event(request: HttpRequest, season_id: int) -> HttpResponse:
    raw = request.POST.get("event_id", "")
    event_id = parse_id(raw)
    if event_id is None:
        messages.error(request, "Choose an event to add.")
        return redirect(f"/staff/seasons/{season_id}/")
    event, _ = attempt(request, lambda: staff.add_event_to_season(event_id, season_id, actor=request.user))
    if event is not None:
        messages.success(request, f"Added “{event.title}” to the season, with its default prices.")
    return redirect(f"/staff/seasons/{season_id}/")
