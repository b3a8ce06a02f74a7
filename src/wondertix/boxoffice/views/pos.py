"""Point of sale at the box office window (box office and admins)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from wondertix.boxoffice import forms as f
from wondertix.boxoffice import pos
from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, require_role
from wondertix.boxoffice.views import pos_card as card_views
from wondertix.boxoffice.views.common import attempt
from wondertix.catalog import performance_prices, seating
from wondertix.catalog.models import Performance
from wondertix.money import parse_amount, parse_count, parse_id
from wondertix.patrons.models import Patron
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import errors, inventory
from wondertix.sales.models import Order
from wondertix.storefront import seatmap

sellers = require_role(BOX_OFFICE, ADMIN)


@sellers
def choose(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    perfs = Performance.objects.filter(starts_at__gte=timezone.now() - timedelta(hours=3)).select_related("event")
    if query:
        perfs = perfs.filter(event__title__icontains=query)
    chosen = list(perfs.order_by("starts_at")[:80])
    avail = inventory.availability_for([p.pk for p in chosen])
    rows = [{"perf": p, "avail": avail[p.pk]} for p in chosen]
    return render(request, "boxoffice/pos/choose.html", {"rows": rows, "q": query})


def _contacts(query: str) -> list[Patron]:
    query = query.strip()
    if len(query) < 2:
        return []
    cond = Q()
    for word in query.split()[:4]:
        cond &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word) | Q(phone__icontains=word)
    return list(Patron.objects.filter(cond).exclude(email=pos.WALK_UP_EMAIL).order_by("last_name", "first_name")[:20])


def _int(value: str) -> int:
    try:
        return parse_count(value)
    except ValueError as exc:
        raise errors.invalid("invalid_quantity", str(exc), field="quantity") from None


@sellers
def sell(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    price_types = performance_prices.for_performance(perf, perf.event.price_types.filter(active=True))
    patron_id = request.POST.get("patron_id") or request.GET.get("patron") or ""
    patron_pk = parse_id(patron_id)
    patron = Patron.objects.filter(pk=patron_pk).first() if patron_pk else None
    form = f.PosPaymentForm(request.POST or None, initial={"patron_id": patron.pk if patron else None,
                                                           "idempotency_key": uuid.uuid4().hex})
    status = 200
    reserved = perf.seating_chart_id is not None
    ticked: list[int] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticked = _ticked(request) if reserved else []
            quantities = {pt.pk: _int(request.POST.get(f"qty_{pt.pk}", "")) for pt in price_types}
            overrides = {}
            for pt in price_types:
                raw = request.POST.get(f"price_{pt.pk}", "").strip()
                if raw:
                    try:
                        overrides[pt.pk] = parse_amount(raw)
                    except ValueError as exc:
                        raise errors.invalid("invalid_price", f"{pt.name}: {exc}", field="price_overrides") from None
        except errors.SaleError as exc:
            messages.error(request, exc.message)
            status = exc.status
        else:
            sale = pos.PosSale(
                performance_id=perf.pk, quantities=quantities, payment_method=data["payment_method"],
                patron_id=patron.pk if patron else None,
                first_name=data["first_name"], last_name=data["last_name"], email=data["email"], phone=data["phone"],
                accommodation=data["accommodation"], price_overrides=overrides, reason=data["reason"],
                card=PaymentDetails(card_number=data["card_number"], exp_month=data["exp_month"], exp_year=data["exp_year"], cvc=data["cvc"]),
                idempotency_key=data["idempotency_key"] or None, cash_tendered_cents=data["cash_tendered"],
                reader_id=request.POST.get("reader", "").strip()[:120], seat_ids=ticked,
            )
            if sale.reader_id:
                request.session[card_views.READER_KEY] = sale.reader_id
            order, err = attempt(request, lambda: pos.sell_at_box_office(sale, actor=request.user))  # type: ignore[arg-type]
            if order is not None and order.status == Order.PENDING:
                return redirect("boxoffice:pos-card", payment_id=order.terminal_payments.first().pk)  # type: ignore[union-attr]
            if order is not None and order.status == Order.CANCELED:
                # The same form again after its card payment was canceled: nothing was sold.
                messages.error(request, f"The card payment of order {order.reference} was canceled; nothing was sold. Start the sale again.")
                return redirect("boxoffice:pos-sell", performance_id=perf.pk)
            if order is not None:
                messages.success(request, f"Sold {order.tickets.count()} ticket(s): order {order.reference}.")
                return redirect(f"/staff/pos/orders/{order.pk}/")
            status = err.status if err else 422
    elif form.errors:
        status = 422
    if reserved and request.method == "GET" and request.GET.get("best", "").isdigit():
        ticked = _best(request, perf)
    avail = inventory.availability_for([perf.pk])[perf.pk]
    left = inventory.price_type_availability(perf, price_types)
    rows = [{"pt": pt, "left": min(avail.available, _or(left[pt.pk], avail.available)), "qty": request.POST.get(f"qty_{pt.pk}", ""), "price": request.POST.get(f"price_{pt.pk}", "")}
            for pt in price_types]
    return render(request, "boxoffice/pos/sell.html", {
        "perf": perf, "rows": rows, "avail": avail, "form": form, "patron": patron,
        "contact_q": request.GET.get("contact_q", ""), "contacts": _contacts(request.GET.get("contact_q", "")),
        # Its own ids (hold_reason…): the sale form has a reason field too, and ids are unique on a page.
        "holds": pos.active_house_holds(perf), "hold_form": f.HouseSeatsForm(performance=perf, auto_id="hold_%s"),
        # The buyer's season subscriptions; redeeming posts to the back office's redeem page.
        "subscriptions": pos.subscriptions_for(patron, perf) if patron else [],
        "redeem_key": uuid.uuid4().hex, "price_types": price_types,
        **card_views.reader_choice(request),
        # Reserved seating: the same seat picker as the storefront, with house seats for sale.
        "map": seatmap.patron_map(perf, price_types, ticked, staff=True) if reserved else None, "staff": True,
        "best_choices": range(1, 11),
    }, status=status)


def _ticked(request: HttpRequest) -> list[int]:
    values = request.POST.getlist("seat")
    return seatmap.parse_seat_ids(values) if values else []


def _best(request: HttpRequest, perf: Performance) -> list[int]:
    """Best available for the window (house seats included): ticked on the map, not held."""
    try:
        best = seating.best_available(perf, int(request.GET["best"]), staff=True)
    except errors.SaleError as exc:
        messages.error(request, exc.message)
        return []
    messages.info(request, best.message + " They are ticked on the map.")
    return best.seat_ids


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


@sellers
def order_done(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=order_id)
    tickets = order.tickets.select_related("performance__event", "price_type", "seat__section")
    return render(request, "boxoffice/pos/done.html", {"order": order, "tickets": tickets, "receipt": pos.receipt_for(order)})


@sellers
@require_POST
def hold_seats(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    if perf.seating_chart_id is not None:
        # Reserved: the seats ticked on the sale form's map, with the sale form's reason.
        hold, _ = attempt(request, lambda: pos.hold_house_seats(perf, None, 0, request.POST.get("reason", ""), actor=request.user,  # type: ignore[arg-type]
                                                                seat_ids=_ticked(request)))
        if hold is not None:
            messages.success(request, f"Holding {sum(x.quantity for x in hold.lines.all())} seat(s) back from sale.")
        return redirect(f"/staff/pos/{perf.pk}/")
    form = f.HouseSeatsForm(request.POST, performance=perf)
    if not form.is_valid():
        messages.error(request, "To hold seats, choose a price type, a number of seats and give a reason.")
    else:
        d = form.cleaned_data
        hold, _ = attempt(request, lambda: pos.hold_house_seats(perf, d["price_type"].pk, d["quantity"], d["reason"], actor=request.user))  # type: ignore[arg-type]
        if hold is not None:
            messages.success(request, f"Holding {d['quantity']} seat(s) back from sale.")
    return redirect(f"/staff/pos/{perf.pk}/")


@sellers
@require_POST
def release_seats(request: HttpRequest, hold_id: int) -> HttpResponse:
    form = f.ReleaseForm(request.POST)
    back = request.POST.get("back", "")
    back = back if back.startswith("/staff/pos/") else "/staff/pos/"
    if not form.is_valid():
        messages.error(request, "Please give a reason for releasing the seats.")
        return redirect(back)
    hold, _ = attempt(request, lambda: pos.release_house_seats(hold_id, form.cleaned_data["reason"], actor=request.user))  # type: ignore[arg-type]
    if hold is not None:
        messages.success(request, "Seats released for sale.")
    return redirect(back)
