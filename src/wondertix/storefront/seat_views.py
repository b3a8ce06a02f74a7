"""The performance page of a reserved performance: choose seats on the map (or in the list),
or ask for the best N seats together. Seats are held through the same hold path as places.

Works without JavaScript: the list of checkboxes is the form. The page is served compressed
(Django's gzip, which pads against BREACH) — a 2,000-seat chart is mostly repetitive markup.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from wondertix.catalog import seating
from wondertix.catalog import services as catalog
from wondertix.catalog.models import Performance
from wondertix.sales import errors
from wondertix.storefront import cart as carts
from wondertix.storefront import seatmap


def _price_types(perf: Performance) -> list[Any]:
    # Seats are sold at fixed category prices; pay-what-you-can stays a general-admission offer.
    return [pt for pt in catalog.public_price_types(perf) if pt.seat_category_id and not pt.pay_what_you_can]


def _mine(request: HttpRequest, perf: Performance) -> list[int]:
    """The seats this patron's cart holds for the performance (shown ticked)."""
    cart = carts.load(request.session)
    return [s for line in cart.lines if line.performance.pk == perf.pk for s in line.seat_ids] if cart.state == carts.ACTIVE else []


def reserved_performance(request: HttpRequest, perf: Performance, state: catalog.PerformanceState, page: Any, hold: Any) -> HttpResponse:
    """`page(request, template, context, status)` renders; `hold(request, perf_id, lines)` puts
    the lines in the cart (the storefront's own hold-and-keep-the-rest step)."""
    price_types = _price_types(perf)
    mine = _mine(request, perf)  # held by this patron: shown ticked and free to them
    chosen = mine
    error = ""
    status = 200
    offered: list[int] = []
    if request.method == "POST":
        if not state.buyable:
            status = 409
            error = "Seats for this performance cannot be chosen now."
        else:
            try:
                if request.POST.get("action") == "best":
                    result = _best(request, perf, price_types, hold)
                    if isinstance(result, list):
                        offered = result
                    else:
                        return result
                else:
                    ids = seatmap.parse_seat_ids(request.POST.getlist("seat"))
                    chosen = ids
                    types = {int(k[3:]): str(request.POST.get(k, "")) for k in request.POST if k.startswith("pt_") and k[3:].isdigit()}
                    hold(request, perf.pk, seatmap.lines_for_seats(perf, ids, price_types, types))
                    return redirect("storefront:cart")
            except errors.SaleError as exc:
                error = exc.message
                status = exc.status
    pmap = seatmap.patron_map(perf, price_types, offered or chosen, mine=mine)
    return page(request, "storefront/performance_seats.html", {
        "perf": perf, "state": state, "map": pmap, "error": error, "offered": bool(offered),
        "quantity_choices": range(1, 11), "editable": state.buyable,
    }, status)


def _best(request: HttpRequest, perf: Performance, price_types: list[Any], hold: Any) -> HttpResponse | list[int]:
    """Best available N together: held at once (→ cart); if none are together, the best single
    seats are ticked on the page with the reason, for the patron to take or change."""
    raw = request.POST.get("quantity", "")
    if not raw.isdigit() or not 1 <= int(raw) <= 10:
        raise errors.invalid("invalid_quantity", "Choose how many seats: 1 to 10.", field="quantity")
    quantity = int(raw)
    best = seating.best_available(perf, quantity)
    if not best.together:
        messages.warning(request, best.message + " They are ticked below: add them to your cart, or choose others.")
        return best.seat_ids
    hold(request, perf.pk, seatmap.lines_for_seats(perf, best.seat_ids, price_types, {}))
    names = seatmap.seat_names(best.seat_ids)
    messages.success(request, f"{best.message} Held for you: " + "; ".join(names[i] for i in best.seat_ids) + ".")
    return redirect("storefront:cart")
