"""A signed-in patron exchanges tickets of their own order for another performance of the
same show, online. The exchange itself is the box office's (sales.exchanges): the same lock
on every performance touched, the same capacity re-check, the same settlement and email. This
module only decides what a patron may ask for and how the difference is settled online:

- the new tickets cost more: the patron's card pays the difference (`card`), charged after
  the seats are secured and outside the lock, as sales.exchanges does for the box office;
- they cost less: the difference goes back to the card the order was paid with (`original`);
- the same: nothing moves.

Where cards are not taken in-process (Stripe), a difference to pay is paid on the
processor's own page (sales.exchange_checkout): the exchange is written pending with its seats
secured, and the processor's webhook finishes it exactly once (or it is undone when the page
expires). A processor with neither refuses a difference to pay with a clear message.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, exchange_checkout, seats
from wondertix.sales.exchanges import ExchangeRequest, Quote, exchange_tickets, quote_exchange
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange

REASON = "Exchanged online by the patron"


def exchangeable_tickets(order: Order) -> list[Ticket]:
    """Tickets the patron may move: valid, not yet used, show still ahead."""
    now = timezone.now()
    return list(
        order.tickets.filter(status=Ticket.VALID, checked_in_at__isnull=True, performance__starts_at__gt=now)
        .exclude(performance__status=Performance.CANCELED)
        .select_related("performance__event", "price_type").order_by("performance__starts_at", "pk")
    )


def target_performances(tickets: list[Ticket]) -> list[Performance]:
    """Other performances of the same show(s) on sale now (a reserved one: the patron then
    chooses seats). Sold-out ones are listed too, marked by the page; choosing one is refused
    under the lock."""
    now = timezone.now()
    events = {t.performance.event_id for t in tickets}
    candidates = Performance.objects.filter(event_id__in=events, starts_at__gt=now).select_related("event").order_by("starts_at", "pk")
    return [p for p in candidates if p.is_on_sale(now)]


def price_types_for(performance: Performance) -> list[PriceType]:
    return list(PriceType.objects.filter(event_id=performance.event_id, active=True, staff_only=False, pay_what_you_can=False))


def seat_choices(order: Order, ticket_ids: list[int], performance_id: int, price_type_id: int | None) -> list[dict[str, Any]]:
    """For a reserved target: per ticket (in the order asked), the free seats of the category
    its new price type sells (house seats are not sold online). Empty for general admission."""
    target = Performance.objects.filter(pk=performance_id).first()
    if target is None or target.seating_chart_id is None:
        return []
    tickets = {t.pk: t for t in exchangeable_tickets(order) if t.pk in ticket_ids}
    types = {pt.pk: pt for pt in price_types_for(target)}
    by_name = {pt.name.casefold(): pt for pt in types.values()}
    taken = set(seats.taken_seat_ids(target.pk, timezone.now()))
    rows = []
    for pk in ticket_ids:
        ticket = tickets.get(pk)
        pt = types.get(price_type_id) if price_type_id else (by_name.get(ticket.price_type.name.casefold()) if ticket else None)
        if ticket is None or pt is None or pt.seat_category_id is None:
            continue
        free = (Seat.objects.filter(section__chart_id=target.seating_chart_id, category_id=pt.seat_category_id, house_seat=False)
                .exclude(pk__in=taken).select_related("section").order_by("section__name", "row", "x")[:500])
        rows.append({"ticket": ticket, "options": [(s.pk, seats.describe(s)) for s in free]})
    return rows


def _check(order: Order, ticket_ids: list[int], performance_id: int, price_type_id: int | None) -> None:
    allowed = {t.pk: t for t in exchangeable_tickets(order)}
    if not ticket_ids:
        raise errors.invalid("nothing_to_exchange", "Choose at least one ticket to exchange.", field="tickets")
    if any(pk not in allowed for pk in ticket_ids):
        raise errors.invalid("ticket_not_exchangeable", "Some of those tickets cannot be exchanged online any more.", field="tickets")
    target = next((p for p in target_performances(list(allowed.values())) if p.pk == performance_id), None)
    if target is None or any(allowed[pk].performance.event_id != target.event_id for pk in ticket_ids):
        raise errors.invalid("invalid_performance", "Choose another performance of the same show.", field="performance")
    if price_type_id is not None and price_type_id not in {pt.pk for pt in price_types_for(target)}:
        raise errors.invalid("invalid_price_type", "That ticket type is not sold online for this performance.", field="price_type")


def quote(order: Order, ticket_ids: list[int], performance_id: int, price_type_id: int | None, seat_ids: list[int] | None = None) -> Quote:
    """What the exchange would cost (nothing written)."""
    _check(order, ticket_ids, performance_id, price_type_id)
    if seat_ids and Seat.objects.filter(pk__in=seat_ids, house_seat=True).exists():
        raise errors.invalid("seat_not_for_sale", "That seat is not for sale online: please choose another.", field="seat")
    q = quote_exchange(order.pk, ExchangeRequest(ticket_ids, performance_id, price_type_id, seat_ids=list(seat_ids or [])))
    # An early answer from the counter (the sale path's statement 3 does the same); the check
    # that counts is the one under the lock, in the exchange itself.
    moving_in = sum(1 for p in q.lines if p.old.performance_id != q.target.pk)
    if q.target.capacity - q.target.tickets_sold < moving_in:
        raise sold_out_refusal(q.target)
    if q.difference_cents > 0 and not get_provider(settings.PAYMENT_PROVIDER).synchronous and not exchange_checkout.hosted_available():
        raise errors.invalid("exchange_needs_box_office",
                             "Paying a price difference online is not available yet: please call the box office to make this exchange.")
    return q


def pending_for(order: Order, key: str) -> Exchange | None:
    """The exchange this confirmation (its key) already started, waiting for its payment on
    the processor's page: a double click or a return from that page finds it again."""
    if not key:
        return None
    return Exchange.objects.filter(order=order, idempotency_key=f"patron:{key}", status=Exchange.PENDING, charge__isnull=False).first()


def sold_out_refusal(target: Performance) -> errors.SaleError:
    local = timezone.localtime(target.starts_at)
    return errors.sold_out(f"Sorry, {target.event.title} on {local:%A, %B} {local.day} is sold out. Your tickets were not changed.")


def card_needed(difference_cents: int) -> bool:
    """Whether the patron types a card here (not when the processor's page takes it)."""
    return difference_cents > 0 and get_provider(settings.PAYMENT_PROVIDER).synchronous


def exchange(order: Order, ticket_ids: list[int], performance_id: int, price_type_id: int | None, *,
             expected_difference_cents: int, card: PaymentDetails | None, key: str, seat_ids: list[int] | None = None) -> Exchange:
    """Exchange, settling the difference the patron was shown. A price that changed since the
    quote is refused (the patron sees the new one); a sold-out target is refused under the
    lock; either way nothing is written. A difference paid on the processor's page returns the
    exchange PENDING: send the patron to `exchange_checkout.page_url`."""
    q = quote(order, ticket_ids, performance_id, price_type_id, seat_ids)
    diff = q.difference_cents
    if diff != expected_difference_cents:
        raise errors.conflict("price_changed", "The price of the new tickets has changed: please check the new difference and confirm again.")
    method = "card" if diff > 0 else "original" if diff < 0 else ""
    hosted = diff > 0 and not get_provider(settings.PAYMENT_PROVIDER).synchronous
    request = ExchangeRequest(ticket_ids, performance_id, price_type_id, method, card, REASON, hosted=hosted, seat_ids=list(seat_ids or []))
    try:
        return exchange_tickets(order.pk, request, idempotency_key=f"patron:{key}")
    except errors.SaleError as exc:
        if exc.code == "sold_out":  # refused under the lock: rolled back, nothing written
            raise sold_out_refusal(q.target) from exc
        raise
