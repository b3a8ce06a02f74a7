"""Exchanges: move tickets to another performance (or price type) of the same order.

Lock the order, then every performance touched (old and target) in primary-key order; free
the old seats, re-check capacity and price-type limits on the target with the same
inventory.ensure_capacity every sale uses, issue new tickets with new codes, then settle the
price difference (charged by cash or card, or refunded to the original payment or in cash).
A refusal (sold out, bad input, declined card) raises before commit: nothing changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.catalog.models import Performance, PriceType
from wondertix.idempotency import find_by_key, run_once
from wondertix.money import format_cents
from wondertix.ops import audit
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.window import charge_at_window
from wondertix.sales import errors, inventory
from wondertix.sales.models import Order, Ticket, new_ticket_code
from wondertix.sales.refund_models import Exchange, ExchangeItem
from wondertix.sales.refunds import REFUNDABLE_STATUSES, pay_back, refundable_cents
from wondertix.sales.services import request_fingerprint

CHARGE_METHODS = ("cash", "card", "waive")
REFUND_METHODS = ("original", "cash")


@dataclass
class ExchangeRequest:
    ticket_ids: list[int]
    to_performance_id: int
    # None: the price type with the same name on the target's event.
    price_type_id: int | None = None
    # When the new tickets cost more: cash | card | waive; when less: original | cash.
    method: str = ""
    card: PaymentDetails | None = field(default=None, compare=False)
    reason: str = ""

    def fingerprint(self, order_id: int) -> str:
        data = asdict(self)
        data.pop("card", None)
        data["ticket_ids"] = sorted(self.ticket_ids)
        data["order"] = order_id
        return request_fingerprint(data)


@dataclass
class PlannedTicket:
    old: Ticket
    price_type: PriceType
    price_cents: int
    fee_cents: int
    discount_cents: int

    @property
    def old_value(self) -> int:
        return self.old.price_cents - self.old.discount_cents

    @property
    def new_value(self) -> int:
        return self.price_cents - self.discount_cents


@dataclass
class Quote:
    order: Order
    target: Performance
    lines: list[PlannedTicket]

    @property
    def difference_cents(self) -> int:
        return sum(p.new_value - p.old_value for p in self.lines)


def _new_price(old: Ticket, pt: PriceType) -> int:
    if old.price_cents == 0:
        return 0  # a comp or subscription ticket stays free when it moves
    if pt.pay_what_you_can:
        return min(max(old.price_cents, pt.min_price_cents), pt.max_price_cents)
    return pt.price_cents


def _plan(order: Order, request: ExchangeRequest, target: Performance, now: object) -> Quote:
    ids = list(request.ticket_ids)
    if not ids:
        raise errors.invalid("nothing_to_exchange", "Choose at least one ticket to exchange.")
    if len(set(ids)) != len(ids):
        raise errors.invalid("duplicate_ticket", "Each ticket can be listed only once.")
    tickets = list(Ticket.objects.filter(order=order, pk__in=ids).select_related("price_type", "performance"))
    if len(tickets) != len(ids):
        raise errors.invalid("ticket_not_in_order", f"Some of those tickets are not part of order {order.reference}.")
    if target.status == Performance.CANCELED:
        raise errors.invalid("performance_canceled", "The performance you chose has been canceled.")
    if target.starts_at <= now:  # type: ignore[operator]
        raise errors.invalid("performance_past", "The performance you chose has already started.")
    chosen = None
    if request.price_type_id is not None:
        chosen = PriceType.objects.filter(pk=request.price_type_id, event_id=target.event_id, active=True).first()
        if chosen is None:
            raise errors.invalid("invalid_price_type", "That ticket type is not sold for the performance you chose.", field="price_type_id")
    by_name = {pt.name.casefold(): pt for pt in PriceType.objects.filter(event_id=target.event_id, active=True)}
    lines = []
    for t in sorted(tickets, key=lambda t: t.pk):
        if t.status != Ticket.VALID:
            raise errors.invalid("ticket_not_valid", f"Ticket {t.code} is {t.get_status_display().lower()} and cannot be exchanged.")
        if t.checked_in_at is not None:
            raise errors.invalid("ticket_used", f"Ticket {t.code} was already checked in at the door.")
        pt = chosen or by_name.get(t.price_type.name.casefold())
        if pt is None:
            raise errors.invalid(
                "choose_price_type",
                f"“{target.event.title}” has no “{t.price_type.name}” tickets; choose a ticket type for the new performance.",
                field="price_type_id",
            )
        if t.performance_id == target.pk and t.price_type_id == pt.pk:
            raise errors.invalid("same_ticket", f"Ticket {t.code} is already a “{pt.name}” ticket for that performance.")
        price = _new_price(t, pt)
        lines.append(PlannedTicket(t, pt, price, t.fee_cents, min(t.discount_cents, price)))
    return Quote(order, target, lines)


def quote_exchange(order_id: int, request: ExchangeRequest) -> Quote:
    """What an exchange would cost, without writing (for the confirmation page)."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise errors.not_found("order_not_found", "That order does not exist.")
    target = Performance.objects.filter(pk=request.to_performance_id).select_related("event").first()
    if target is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    return _plan(order, request, target, timezone.now())


def _existing(key: str, fingerprint: str) -> Exchange | None:
    return find_by_key(Exchange.objects, key, fingerprint, message="This exchange key was already used for a different exchange.")


def exchange_tickets(order_id: int, request: ExchangeRequest, *, idempotency_key: str, actor: User | None = None) -> Exchange:
    key = (idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise errors.invalid("invalid_idempotency_key", "An exchange request needs an idempotency key of 1 to 100 characters.")
    if len(request.reason) > 300:
        raise errors.invalid("invalid_reason", "Please keep the reason under 300 characters.", field="reason")
    fingerprint = request.fingerprint(order_id)
    exchange, _ = run_once(
        lambda: _existing(key, fingerprint),
        lambda: _exchange_locked(order_id, request, key=key, fingerprint=fingerprint, actor=actor),
    )
    return exchange


def _exchange_locked(order_id: int, request: ExchangeRequest, *, key: str, fingerprint: str, actor: User | None) -> Exchange:
    now = timezone.now()
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise errors.not_found("order_not_found", "That order does not exist.")
    existing = _existing(key, fingerprint)
    if existing is not None:
        return existing
    if order.status not in REFUNDABLE_STATUSES:
        raise errors.invalid("order_not_paid", f"Order {order.reference} is {order.get_status_display().lower()}; only paid orders can be exchanged.")
    # Lock the tickets being moved: a door scan locks the ticket it admits, so an exchange
    # can neither move a ticket that was just admitted nor let one it moves be admitted.
    old_perf_ids = set(
        Ticket.objects.select_for_update(no_key=True).filter(order=order, pk__in=request.ticket_ids).order_by("pk").values_list("performance_id", flat=True)
    )
    performances = inventory.lock_performances(old_perf_ids | {request.to_performance_id})
    target = performances[request.to_performance_id]
    quote = _plan(order, request, target, now)
    diff = quote.difference_cents

    method = request.method
    if diff > 0 and method not in CHARGE_METHODS:
        raise errors.invalid("invalid_method", f"The new tickets cost {format_cents(diff)} more: take cash, a card, or waive the difference.", field="method")
    if diff < 0 and method not in REFUND_METHODS:
        raise errors.invalid("invalid_method", f"The new tickets cost {format_cents(-diff)} less: refund to the original payment or in cash.", field="method")
    if diff < 0 and -diff > refundable_cents(order):
        raise errors.invalid(
            "refund_exceeds_paid",
            f"Only {format_cents(refundable_cents(order))} of order {order.reference} can still be refunded; the exchange would return {format_cents(-diff)}.",
        )
    if diff > 0 and method == "waive" and not request.reason.strip():
        raise errors.invalid("reason_required", "Say why the price difference is waived.", field="reason")
    if diff == 0:
        method = ""

    # Free the old seats first so an exchange within one performance does not count twice.
    old_ids = [p.old.pk for p in quote.lines]
    Ticket.objects.filter(pk__in=old_ids).update(status=Ticket.EXCHANGED)
    freed: dict[int, int] = {}
    for p in quote.lines:
        freed[p.old.performance_id] = freed.get(p.old.performance_id, 0) - 1
    inventory.add_sold(performances, freed)
    demand: dict[tuple[int, int], int] = {}
    for p in quote.lines:
        demand[(target.pk, p.price_type.pk)] = demand.get((target.pk, p.price_type.pk), 0) + 1
    inventory.ensure_capacity(performances, demand, {p.price_type.pk: p.price_type for p in quote.lines}, now=now)

    if diff > 0 and method == "waive":
        # The house absorbs the difference as a discount on the new tickets: value unchanged.
        owed = diff
        for p in quote.lines:
            extra = min(owed, p.price_cents - p.discount_cents)
            p.discount_cents += extra
            owed -= extra
        diff_paid = 0
    else:
        diff_paid = diff

    before = {"status": order.status, "total_cents": order.total_cents, "tickets": sorted(p.old.code for p in quote.lines)}
    if diff_paid > 0:
        _charge(order, diff_paid, method=method, card=request.card, key=f"exchange:{key}")
    elif diff_paid < 0:
        pay_back(order, -diff_paid, method=method, key=f"exchange:{key}")

    new_tickets = [
        Ticket(order=order, performance=target, price_type=p.price_type, code=new_ticket_code(), price_cents=p.price_cents, fee_cents=p.fee_cents, discount_cents=p.discount_cents)
        for p in quote.lines
    ]
    Ticket.objects.bulk_create(new_tickets)
    if any(t.pk is None for t in new_tickets):  # backends without RETURNING: read them back by code
        by_code = {t.code: t for t in Ticket.objects.filter(code__in=[t.code for t in new_tickets])}
        new_tickets = [by_code[t.code] for t in new_tickets]
    inventory.add_sold(performances, {target.pk: len(new_tickets)})

    exchange = Exchange.objects.create(
        order=order, idempotency_key=key, request_fingerprint=fingerprint, to_performance=target,
        difference_cents=diff_paid, method=method, reason=request.reason.strip(), created_by=actor,
    )
    ExchangeItem.objects.bulk_create(ExchangeItem(exchange=exchange, old_ticket=p.old, new_ticket=t) for p, t in zip(quote.lines, new_tickets, strict=True))
    order.subtotal_cents += sum(p.price_cents - p.old.price_cents for p in quote.lines)
    order.discount_cents += sum(p.discount_cents - p.old.discount_cents for p in quote.lines)
    order.total_cents += diff_paid
    order.save(update_fields=["subtotal_cents", "discount_cents", "total_cents"])
    audit.record(
        "order.exchanged",
        actor=actor,
        obj=order,
        before=before,
        after={
            "status": order.status,
            "total_cents": order.total_cents,
            "exchange_id": exchange.pk,
            "to_performance": target.pk,
            "tickets": sorted(t.code for t in new_tickets),
            "difference_cents": diff,
            "method": method,
            "reason": exchange.reason,
        },
    )
    return exchange


def _charge(order: Order, amount_cents: int, *, method: str, card: PaymentDetails | None, key: str) -> Payment:
    provider, result = charge_at_window(
        amount_cents=amount_cents, method=method, card=card,
        description=f"{settings.THEATER_NAME} exchange", idempotency_key=key,
    )
    return Payment.objects.create(order=order, kind=Payment.CHARGE, provider=provider, reference=result.reference, amount_cents=amount_cents, status=Payment.SUCCEEDED)
