"""Exchanges: move tickets to another performance (or price type) of the same order.

Lock the order, then every performance touched (old and target) in primary-key order; free
the old seats, re-check capacity and price-type limits on the target with the same
inventory.ensure_capacity every sale uses, issue new tickets with new codes, then settle the
price difference (charged by cash or card, or refunded to the original payment or in cash).
A refusal (sold out, bad input) raises before commit: nothing changes.

A difference that goes through the card provider (a card charge, a refund to the original
payment) is never sent while those locks are held: the exchange is written PENDING, the
provider is called after the commit with a key derived from the exchange's own key (the same
on every retry), and a second short transaction finishes it — or, when the provider refuses
(a declined card), undoes it: the old tickets are valid again and the exchange is failed.
Cash and waived differences are settled at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PriceType
from wondertix.idempotency import find_by_key, run_once
from wondertix.money import format_cents
from wondertix.ops import audit
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails, ProviderUnavailable
from wondertix.payments.registry import get_provider
from wondertix.payments.window import charge_at_window
from wondertix.sales import change_emails, errors, inventory, seats
from wondertix.sales.models import Order, Ticket, new_ticket_code
from wondertix.sales.refund_models import Exchange, ExchangeItem
from wondertix.sales.refund_settlement import RECONCILE_AFTER, send_pending_refunds
from wondertix.sales.refunds import REFUNDABLE_STATUSES, pay_back, plan_payments, refundable_cents
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
    # Where the processor takes cards on a reader (Stripe Terminal): the reader to charge.
    reader_id: str = field(default="", compare=False)
    # Where the patron pays the difference on the processor's own page (Stripe Checkout,
    # sales.exchange_checkout): the exchange stays pending until the webhook says paid.
    hosted: bool = field(default=False, compare=False)
    # A reserved target performance: the seat (of its chart) of each ticket, in the order of
    # ticket_ids; the price type must be of the seat's category. Empty for general admission.
    seat_ids: list[int] = field(default_factory=list)

    def fingerprint(self, order_id: int) -> str:
        data = asdict(self)
        data.pop("card", None)
        data.pop("reader_id", None)
        data.pop("hosted", None)
        data.pop("seat_ids", None)
        if self.seat_ids:  # (general admission keeps the fingerprints it always had)
            data["seats"] = sorted(zip(self.ticket_ids, self.seat_ids, strict=False))
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
    seat_id: int | None = None

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
    chosen: seats.ChosenSeats = seats.NONE

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
    if request.seat_ids and len(request.seat_ids) != len(ids):
        raise errors.invalid("seats_required", "Choose one seat for every ticket you exchange.", field="seat_ids")
    seat_of = dict(zip(ids, request.seat_ids, strict=True)) if request.seat_ids else {}
    chosen, by_name = target_price_types(request, target)
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
        if t.performance_id == target.pk and t.price_type_id == pt.pk and seat_of.get(t.pk) == t.seat_id:
            raise errors.invalid("same_ticket", f"Ticket {t.code} is already a “{pt.name}” ticket for that performance.")
        price = _new_price(t, pt)
        lines.append(PlannedTicket(t, pt, price, t.fee_cents, min(t.discount_cents, price), seat_of.get(t.pk)))
    # The same seat rules as a sale (chart, category of the price type, one seat per ticket).
    seat_choice = seats.check_lines(
        [_SeatLine(target.pk, p.price_type.pk, 1, (p.seat_id,) if p.seat_id else ()) for p in lines],
        {target.pk: target}, {p.price_type.pk: p.price_type for p in lines}, staff=True,
    )
    return Quote(order, target, lines, seat_choice)


def target_price_types(request: ExchangeRequest, target: Performance) -> tuple[PriceType | None, dict[str, PriceType]]:
    """The price type the request names for the target (or None), and the target's active
    types by name (casefolded): a ticket moves to the named type, else to its own type's name.
    Priced as sold at the target performance (its overrides win)."""
    chosen = None
    if request.price_type_id is not None:
        chosen = PriceType.objects.filter(pk=request.price_type_id, event_id=target.event_id, active=True).first()
        if chosen is None:
            raise errors.invalid("invalid_price_type", "That ticket type is not sold for the performance you chose.", field="price_type_id")
        chosen = performance_prices.for_performance(target, [chosen])[0]
    by_name = {pt.name.casefold(): pt for pt in performance_prices.for_performance(target, PriceType.objects.filter(event_id=target.event_id, active=True))}
    return chosen, by_name


@dataclass(frozen=True)
class _SeatLine:
    performance_id: int
    price_type_id: int
    quantity: int
    seat_ids: tuple[int, ...]


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
    # Outside every lock: the provider (if the difference goes through it), then finish.
    if request.hosted and exchange.status == Exchange.PENDING and exchange.charge_id is not None:
        return exchange  # paid on the processor's page; its webhook finishes it
    if _on_reader(exchange):
        # The card is taken on a reader: the exchange stays pending until the processor
        # confirms the payment (payments.terminal), which finishes it.
        _send_to_reader(exchange, request.reader_id, actor)
        return exchange
    return settle_exchange(exchange, request.card)


def _on_reader(exchange: Exchange) -> bool:
    if exchange.status != Exchange.PENDING or exchange.charge_id is None:
        return False
    payment = Payment.objects.get(pk=exchange.charge_id)
    return not get_provider(payment.provider).synchronous


def _send_to_reader(exchange: Exchange, reader_id: str, actor: User | None) -> None:
    from wondertix.payments import terminal

    tp = exchange.terminal_payments.exclude(status="canceled").first()
    if tp is None:
        with transaction.atomic():
            tp = terminal.create(exchange.order, reader_id, amount_cents=exchange.difference_cents, actor=actor, exchange=exchange)
    terminal.send(tp)


def finish_card_payment(exchange_id: int, *, ok: bool, reference: str = "", message: str = "") -> Exchange:
    """The card payment of a pending exchange's difference was confirmed (or will not happen):
    finish the exchange, or undo it. Idempotent: a finished exchange is returned as it is."""
    exchange = Exchange.objects.get(pk=exchange_id)
    if exchange.charge_id is None:
        return exchange
    return _finish(exchange_id, {exchange.charge_id: _Answer(ok, reference, message)})


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

    # A card charge or a refund to the original payment goes through the card provider: that
    # happens after this transaction, outside every lock (settle_exchange). Until then the
    # exchange is pending: the old tickets are marked exchanged, the new ones are issued
    # canceled, and the seats the old tickets had on other performances stay sold, so undoing
    # a refused payment never needs a seat someone else may have bought meanwhile.
    via_provider = (diff > 0 and method == "card") or (diff < 0 and method == "original")
    if via_provider and diff > 0:
        _check_card(request.card, request.reader_id, request.hosted)

    # Free the old seats first so an exchange within one performance does not count twice.
    old_ids = [p.old.pk for p in quote.lines]
    Ticket.objects.filter(pk__in=old_ids).update(status=Ticket.EXCHANGED)
    freed: dict[int, int] = {}
    for p in quote.lines:
        freed[p.old.performance_id] = freed.get(p.old.performance_id, 0) - 1
    deferred = {perf_id: -n for perf_id, n in freed.items() if via_provider and perf_id != target.pk}
    inventory.add_sold(performances, {perf_id: n for perf_id, n in freed.items() if perf_id not in deferred})
    demand: dict[tuple[int, int], int] = {}
    for p in quote.lines:
        demand[(target.pk, p.price_type.pk)] = demand.get((target.pk, p.price_type.pk), 0) + 1
    new_types = {p.price_type.pk: p.price_type for p in quote.lines}
    inventory.ensure_capacity(performances, demand, new_types, now=now)
    seats.ensure_category_limits(demand, new_types, now=now)  # a standing area's size, as for a sale

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
    if not via_provider:
        if diff_paid > 0:
            _charge(order, diff_paid, method=method, card=request.card, key=f"exchange:{key}")
        elif diff_paid < 0:
            pay_back(order, -diff_paid, method=method, key=f"exchange:{key}")

    new_status = Ticket.CANCELED if via_provider else Ticket.VALID
    new_tickets = [
        Ticket(order=order, performance=target, price_type=p.price_type, code=new_ticket_code(), price_cents=p.price_cents,
               fee_cents=p.fee_cents, discount_cents=p.discount_cents, status=new_status, seat_id=p.seat_id)
        for p in quote.lines
    ]
    Ticket.objects.bulk_create(new_tickets)
    if any(t.pk is None for t in new_tickets):  # backends without RETURNING: read them back by code
        by_code = {t.code: t for t in Ticket.objects.filter(code__in=[t.code for t in new_tickets])}
        new_tickets = [by_code[t.code] for t in new_tickets]
    inventory.add_sold(performances, {target.pk: len(new_tickets)})
    # Seats: the old ones are given back (at once, or when a pending difference is paid —
    # except a seat the new tickets take again, given back now), the new ones claimed under
    # this lock exactly as a sale claims them (refused seat_taken: everything rolls back).
    wanted = {(target.pk, p.seat_id) for p in quote.lines if p.seat_id}
    released_now = [p.old.pk for p in quote.lines if p.old.seat_id and (not via_provider or (p.old.performance_id, p.old.seat_id) in wanted)]
    seats.release_tickets(released_now)
    seats.claim_for_order(new_tickets, quote.chosen, now=now, hold_id=None)

    subtotal_delta = sum(p.price_cents - p.old.price_cents for p in quote.lines)
    discount_delta = sum(p.discount_cents - p.old.discount_cents for p in quote.lines)
    exchange = Exchange.objects.create(
        order=order, idempotency_key=key, request_fingerprint=fingerprint, to_performance=target,
        difference_cents=diff_paid, method=method, reason=request.reason.strip(), created_by=actor,
        status=Exchange.PENDING if via_provider else Exchange.SUCCEEDED,
        pending_state={
            "before": before, "difference": diff, "subtotal_delta": subtotal_delta, "discount_delta": discount_delta,
            "deferred": {str(k): v for k, v in deferred.items()}, "freed_on_target": -freed.get(target.pk, 0),
            "seats_released": released_now,
        } if via_provider else {},
    )
    ExchangeItem.objects.bulk_create(ExchangeItem(exchange=exchange, old_ticket=p.old, new_ticket=t) for p, t in zip(quote.lines, new_tickets, strict=True))
    order.subtotal_cents += subtotal_delta
    order.discount_cents += discount_delta
    order.total_cents += diff_paid
    order.save(update_fields=["subtotal_cents", "discount_cents", "total_cents"])
    if via_provider and diff_paid > 0:
        exchange.charge = Payment.objects.create(order=order, kind=Payment.CHARGE, provider=settings.PAYMENT_PROVIDER, amount_cents=diff_paid, status=Payment.PENDING)
        exchange.save(update_fields=["charge"])
    elif via_provider:
        plan_payments(order, -diff_paid, method=method, key=f"exchange:{key}", exchange=exchange)
    else:
        _audit_exchanged(exchange, order, before=before, difference=diff)
        change_emails.queue_exchange_email(exchange, order)
    return exchange


def _check_card(card: PaymentDetails | None, reader_id: str = "", hosted: bool = False) -> None:
    """Refuse, before anything is written, a card difference that cannot be taken here."""
    if not get_provider(settings.PAYMENT_PROVIDER).synchronous:
        if hosted:
            return  # the patron pays on the processor's page (sales.exchange_checkout)
        # Taken on a card reader after the commit (payments.terminal).
        if not reader_id:
            raise errors.invalid("reader_required", "Choose the card reader for the price difference.", field="reader")
        return
    if card is None or not card.card_number:
        raise errors.invalid("card_required", "Enter the card number.", field="card_number")


def _audit_exchanged(exchange: Exchange, order: Order, *, before: dict[str, Any], difference: int) -> None:
    audit.record(
        "order.exchanged",
        actor=exchange.created_by,
        obj=order,
        before=before,
        after={
            "status": order.status,
            "total_cents": order.total_cents,
            "exchange_id": exchange.pk,
            "to_performance": exchange.to_performance_id,
            "tickets": sorted(exchange.items.values_list("new_ticket__code", flat=True)),
            "difference_cents": difference,
            "method": exchange.method,
            "reason": exchange.reason,
        },
    )


def _charge(order: Order, amount_cents: int, *, method: str, card: PaymentDetails | None, key: str) -> Payment:
    provider, result = charge_at_window(
        amount_cents=amount_cents, method=method, card=card,
        description=f"{settings.THEATER_NAME} exchange", idempotency_key=key,
    )
    return Payment.objects.create(order=order, kind=Payment.CHARGE, provider=provider, reference=result.reference, amount_cents=amount_cents, status=Payment.SUCCEEDED)


# ---------------------------------------------------------------------------- the provider, outside the locks


@dataclass(frozen=True)
class _Answer:
    ok: bool
    reference: str = ""
    message: str = ""


EXCHANGE_PENDING = (
    "The payment provider did not answer, so this exchange is still pending. "
    "Send the same exchange again (it charges or refunds only once)."
)


def settle_exchange(exchange: Exchange, card: PaymentDetails | None = None) -> Exchange:
    """Send a pending exchange's price difference to the provider (with the key stored for it,
    the same on every retry), then finish it in one short transaction. A card charge needs the
    card again on a retry (card data is never stored)."""
    if exchange.status == Exchange.SUCCEEDED:
        return exchange
    if exchange.status == Exchange.FAILED:
        raise _exchange_refused(exchange)
    answers: dict[int, _Answer | None] = {}
    if exchange.charge_id is not None:
        payment = Payment.objects.get(pk=exchange.charge_id)
        if payment.status == Payment.PENDING:
            if card is None or not card.card_number:
                raise errors.conflict("exchange_pending", "This exchange is waiting for its card payment: enter the card again to finish it.")
            try:
                _, result = charge_at_window(
                    amount_cents=payment.amount_cents, method="card", card=card,
                    description=f"{settings.THEATER_NAME} exchange", idempotency_key=f"exchange:{exchange.idempotency_key}",
                )
                answers[payment.pk] = _Answer(True, result.reference)
            except errors.SaleError as exc:
                answers[payment.pk] = _Answer(False, message=exc.message)
            except ProviderUnavailable:
                answers[payment.pk] = None
    else:
        sent = send_pending_refunds(Payment.objects.filter(refund_source__exchange=exchange, status=Payment.PENDING))
        for pk, refunded in sent.items():
            answers[pk] = None if refunded is None else _Answer(refunded.ok, refunded.reference, refunded.message)
    exchange = _finish(exchange.pk, answers)
    if exchange.status == Exchange.SUCCEEDED:
        return exchange
    if exchange.status == Exchange.FAILED:
        raise _exchange_refused(exchange)
    raise errors.conflict("exchange_pending", exchange.message or EXCHANGE_PENDING)


def _exchange_refused(exchange: Exchange) -> errors.SaleError:
    return errors.payment_failed("payment_declined", exchange.message or "The payment provider refused the price difference. Nothing was changed.")


def _exchange_payments(exchange: Exchange) -> Any:
    if exchange.charge_id is not None:
        return Payment.objects.filter(pk=exchange.charge_id)
    return Payment.objects.filter(refund_source__exchange=exchange)


def _finish(exchange_id: int, answers: dict[int, _Answer | None]) -> Exchange:
    with transaction.atomic():
        order_id = Exchange.objects.values_list("order_id", flat=True).get(pk=exchange_id)
        order = Order.objects.select_for_update().get(pk=order_id)
        exchange = Exchange.objects.select_for_update().get(pk=exchange_id)
        if exchange.status != Exchange.PENDING:
            return exchange
        for payment_id, answer in answers.items():
            if answer is not None and answer.ok:
                Payment.objects.filter(pk=payment_id, status=Payment.PENDING).update(status=Payment.SUCCEEDED, reference=answer.reference[:120])
        payments = _exchange_payments(exchange)
        refusal = next((a for a in answers.values() if a is not None and not a.ok), None)
        if refusal is not None:
            message = (refusal.message or "The payment provider refused the price difference.")[:300]
            if payments.filter(status=Payment.SUCCEEDED).exists():
                exchange.message = f"Part of the difference was refunded; the rest was refused: {message}"[:300]
                exchange.save(update_fields=["message"])
            else:
                _undo(exchange, order, message)
        elif not payments.filter(status=Payment.PENDING).exists():
            _complete(exchange, order)
        return exchange


def _complete(exchange: Exchange, order: Order) -> None:
    """The difference was paid: the new tickets become valid, the old seats go back on sale."""
    state = exchange.pending_state
    Ticket.objects.filter(pk__in=exchange.items.values_list("new_ticket_id", flat=True)).update(status=Ticket.VALID)
    seats.release_tickets(exchange.items.values_list("old_ticket_id", flat=True))  # the old seats go back on sale
    deferred = {int(k): v for k, v in state.get("deferred", {}).items()}
    if deferred:
        performances = inventory.lock_performances(set(deferred))
        inventory.add_sold(performances, {perf_id: -n for perf_id, n in deferred.items()})
    exchange.status = Exchange.SUCCEEDED
    exchange.message = ""
    exchange.save(update_fields=["status", "message"])
    _audit_exchanged(exchange, order, before=state.get("before", {}), difference=state.get("difference", exchange.difference_cents))
    change_emails.queue_exchange_email(exchange, order)


def _undo(exchange: Exchange, order: Order, message: str) -> None:
    """The provider refused: the old tickets are valid again, the new ones never were."""
    state = exchange.pending_state
    items = list(exchange.items.all())
    new_ids = [i.new_ticket_id for i in items]
    old_ids = [i.old_ticket_id for i in items]
    performances = inventory.lock_performances({exchange.to_performance_id})
    inventory.add_sold(performances, {exchange.to_performance_id: state.get("freed_on_target", 0) - len(new_ids)})
    # The items go, so the old tickets can be exchanged again; the new tickets were never valid.
    ExchangeItem.objects.filter(exchange=exchange).delete()
    Ticket.objects.filter(pk__in=new_ids, status=Ticket.CANCELED).delete()  # with their seat claims
    Ticket.objects.filter(pk__in=old_ids, status=Ticket.EXCHANGED).update(status=Ticket.VALID)
    _reclaim(state.get("seats_released", []))
    order.subtotal_cents -= state.get("subtotal_delta", 0)
    order.discount_cents -= state.get("discount_delta", 0)
    order.total_cents -= exchange.difference_cents
    order.save(update_fields=["subtotal_cents", "discount_cents", "total_cents"])
    _exchange_payments(exchange).filter(status=Payment.PENDING).update(status=Payment.FAILED, message=message)
    exchange.status = Exchange.FAILED
    exchange.message = message
    exchange.save(update_fields=["status", "message"])
    audit.record(
        "order.exchange_failed",
        actor=exchange.created_by,
        obj=order,
        before=state.get("before", {}),
        after={"exchange_id": exchange.pk, "difference_cents": exchange.difference_cents, "message": message},
    )


def _reclaim(ticket_ids: list[int]) -> None:
    """An undone exchange's old tickets take back the seats they gave up early (seats the new
    tickets held until now, under the target's lock: nobody else can have them)."""
    back = list(Ticket.objects.filter(pk__in=ticket_ids, seat__isnull=False))
    if back:
        by_perf: dict[int, list[int]] = {}
        for t in back:
            by_perf.setdefault(t.performance_id, []).append(t.seat_id)  # type: ignore[arg-type]
        seats.claim(by_perf, seats.NONE, now=timezone.now(), owners={(t.performance_id, t.seat_id): t.pk for t in back}, hold_expires_at=None)  # type: ignore[misc]


def reconcile_exchanges(*, now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Finish exchanges whose refund of the difference was left pending (sent again with the
    same keys). A pending card charge needs the card and is left for the clerk to finish."""
    now = now or timezone.now()
    stale = Exchange.objects.filter(status=Exchange.PENDING, created_at__lt=now - RECONCILE_AFTER).order_by("created_at", "pk")[:limit]
    outcomes: Counter[str] = Counter()
    for exchange in stale:
        if exchange.charge_id is not None:
            if "checkout" not in (exchange.pending_state or {}):  # paid on a page: payments.services reconciles it
                outcomes["exchange_needs_card"] += 1
            continue
        try:
            settle_exchange(exchange)
        except errors.SaleError as exc:
            outcomes[exc.code] += 1
            continue
        outcomes["exchange_succeeded"] += 1
    return dict(outcomes)
