"""The staff exchange's seat choice: the box office's seat picker for a reserved target.

The exchange service takes one seat per ticket, in the order of the tickets
(`ExchangeRequest.seat_ids`). The clerk ticks seats on the same map and list the point of sale
uses (storefront/_seat_picker.html, house seats for sale); this module turns the ticked seats
into that list — each ticket takes a ticked seat of the category its new price type sells — and
builds the page. Only the categories the tickets move to are offered: the other seats are
shown, not for sale. The checkboxes are the form, so the page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.sales import errors
from wondertix.sales.exchanges import ExchangeRequest, target_price_types
from wondertix.sales.models import Order, Ticket
from wondertix.storefront import seatmap


def reserved_target(request: ExchangeRequest) -> Performance | None:
    """The target performance when it sells seats of a chart, else None."""
    return Performance.objects.filter(pk=request.to_performance_id, seating_chart__isnull=False).select_related("event").first()


def _wanted(order: Order, request: ExchangeRequest, target: Performance) -> list[tuple[Ticket, PriceType | None]]:
    """Each ticket asked for (in the order asked) with the price type it moves to (None: the
    target has no such type; the quote then says what to choose)."""
    chosen, by_name = target_price_types(request, target)
    tickets = {t.pk: t for t in Ticket.objects.filter(order=order, pk__in=request.ticket_ids).select_related("price_type")}
    return [(tickets[pk], chosen or by_name.get(tickets[pk].price_type.name.casefold())) for pk in request.ticket_ids if pk in tickets]


def assign(order: Order, request: ExchangeRequest, ticked: list[int]) -> list[int]:
    """The ticked seats (any order) as one seat per ticket, in the order of the tickets: each
    ticket takes the first ticked seat of its new price type's category. Refuses a choice that
    does not fit (a seat short or left over); the exchange then checks the seats themselves."""
    target = reserved_target(request)
    if target is None:
        return ticked  # general admission: the exchange refuses seats with its own message
    wanted = _wanted(order, request, target)
    category_of = dict(Seat.objects.filter(pk__in=ticked).values_list("pk", "category_id"))
    left = list(ticked)
    out: list[int] = []
    for ticket, pt in wanted:
        if pt is None or pt.seat_category_id is None:
            return ticked  # no price type or a standing area: the exchange says what is wrong
        seat = next((s for s in left if category_of.get(s) == pt.seat_category_id), None)
        if seat is None:
            category = pt.seat_category.name if pt.seat_category else ""
            raise errors.invalid(
                "seats_required", f"Tick a “{category}” seat for ticket {ticket.code} ({pt.name}): one seat per ticket.", field="seat_ids",
            )
        left.remove(seat)
        out.append(seat)
    if left:
        raise errors.invalid(
            "invalid_seats", f"{len(ticked)} seats are ticked for {len(wanted)} ticket{'s' if len(wanted) != 1 else ''}: tick one seat per ticket.", field="seat_ids",
        )
    return out


def page(order: Order, request: ExchangeRequest, ticked: list[int]) -> dict[str, Any] | None:
    """The seat page's context (None when the target is not reserved)."""
    target = reserved_target(request)
    if target is None:
        return None
    wanted = _wanted(order, request, target)
    types = {pt.pk: pt for _, pt in wanted if pt is not None and pt.seat_category_id}
    return {
        "order": order, "target": target, "request_data": request,
        "wanted": [{"ticket": t, "price_type": pt, "category": pt.seat_category if pt and pt.seat_category_id else None} for t, pt in wanted],
        "map": seatmap.patron_map(target, types.values(), ticked, staff=True), "staff": True,
    }
