"""Exchanges: the difference is charged or refunded, capacity holds on the target."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from wondertix.catalog.models import Performance, PriceType
from wondertix.ops.models import AuditEntry
from wondertix.payments.models import Payment
from wondertix.reports import services as reports
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets, quote_exchange
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return User.objects.create_user("clerk", password="x" * 12, is_staff=True)


def _buy(perf, buyer, card, n):
    return sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card))


def _pricier(make_performance, capacity=10):
    perf = make_performance(capacity=capacity)
    PriceType.objects.filter(pk=perf.adult.pk).update(price_cents=4000)
    perf.adult.refresh_from_db()
    return perf


def _state():
    return (
        AuditEntry.objects.count(),
        Payment.objects.count(),
        list(Ticket.objects.order_by("pk").values_list("pk", "status", "performance_id")),
        list(Order.objects.order_by("pk").values_list("total_cents", "subtotal_cents", "status")),
        list(Performance.objects.order_by("pk").values_list("tickets_sold", flat=True)),
    )


def test_exchange_two_tickets_to_a_more_expensive_performance_charges_the_difference(make_performance, buyer, good_card, clerk):
    cheap = make_performance(capacity=10)
    dear = _pricier(make_performance)
    order = _buy(cheap, buyer, good_card, 3)
    moving = [t.pk for t in order.tickets.all()[:2]]
    request = ExchangeRequest(moving, dear.pk, method="card", card=good_card)
    assert quote_exchange(order.pk, request).difference_cents == 2 * (4000 - 2500)

    exchange = exchange_tickets(order.pk, request, idempotency_key="ex-1", actor=clerk)

    assert exchange.difference_cents == 3000
    order.refresh_from_db()
    assert order.total_cents == 3 * 2700 + 3000
    charges = list(order.payments.filter(kind=Payment.CHARGE).values_list("amount_cents", flat=True))
    assert charges == [3 * 2700, 3000]
    old = Ticket.objects.filter(pk__in=moving)
    assert set(old.values_list("status", flat=True)) == {Ticket.EXCHANGED}
    new = Ticket.objects.filter(order=order, performance=dear, status=Ticket.VALID)
    assert new.count() == 2
    assert not set(new.values_list("code", flat=True)) & set(old.values_list("code", flat=True))
    avail = inventory.availability_for([cheap.pk, dear.pk])
    assert avail[cheap.pk].available == 9 and avail[dear.pk].available == 8
    assert AuditEntry.objects.filter(action="order.exchanged", actor=clerk).count() == 1
    # Reports move the sale: the cheap show keeps one ticket, the dear one gains two.
    rows = {r.key: r for r in reports.sales_by(reports.Period(), "performance").rows}
    assert rows[str(cheap.pk)].tickets_sold == 1 and rows[str(cheap.pk)].gross_cents == 2700
    assert rows[str(dear.pk)].tickets_sold == 2 and rows[str(dear.pk)].gross_cents == 2 * 4200
    assert reports.summary(reports.Period()).reconciles
    # Repeating the request changes nothing.
    before = _state()
    assert exchange_tickets(order.pk, request, idempotency_key="ex-1", actor=clerk).pk == exchange.pk
    assert _state() == before


def test_exchange_to_a_sold_out_performance_is_refused_and_changes_nothing(make_performance, buyer, good_card, clerk):
    here = make_performance(capacity=10)
    full = _pricier(make_performance, capacity=2)
    order = _buy(here, buyer, good_card, 2)
    _buy(full, buyer, good_card, 2)
    before = _state()
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([t.pk for t in order.tickets.all()], full.pk, method="cash"), idempotency_key="ex-2", actor=clerk)
    assert exc.value.code == "sold_out"
    assert "sold out" in exc.value.message
    assert _state() == before


def test_cheaper_target_refunds_the_difference_to_the_original_card(make_performance, buyer, good_card, clerk):
    dear = _pricier(make_performance)
    cheap = make_performance(capacity=10)
    order = _buy(dear, buyer, good_card, 1)
    ex = exchange_tickets(order.pk, ExchangeRequest([order.tickets.get().pk], cheap.pk, method="original"), idempotency_key="down", actor=clerk)
    assert ex.difference_cents == -1500
    refund_payment = order.payments.get(kind=Payment.REFUND)
    assert refund_payment.amount_cents == 1500 and refund_payment.provider == "test"
    order.refresh_from_db()
    assert order.total_cents == 4200 - 1500 and order.status == Order.PAID
    assert reports.summary(reports.Period()).reconciles


def test_a_difference_needs_a_payment_method_and_waiving_needs_a_reason(make_performance, buyer, good_card, clerk):
    cheap = make_performance(capacity=10)
    dear = _pricier(make_performance)
    order = _buy(cheap, buyer, good_card, 1)
    ticket = order.tickets.get()
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([ticket.pk], dear.pk), idempotency_key="m", actor=clerk)
    assert exc.value.code == "invalid_method"
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([ticket.pk], dear.pk, method="waive"), idempotency_key="w", actor=clerk)
    assert exc.value.code == "reason_required"
    ex = exchange_tickets(order.pk, ExchangeRequest([ticket.pk], dear.pk, method="waive", reason="Our mistake"), idempotency_key="w2", actor=clerk)
    assert ex.difference_cents == 0
    order.refresh_from_db()
    assert order.total_cents == 2700  # the house absorbed the difference as a discount
    assert reports.summary(reports.Period()).reconciles


def test_declined_card_for_the_difference_changes_nothing(make_performance, buyer, good_card, clerk):
    from wondertix.payments.providers.base import PaymentDetails

    cheap = make_performance(capacity=10)
    dear = _pricier(make_performance)
    order = _buy(cheap, buyer, good_card, 1)
    before = _state()
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([order.tickets.get().pk], dear.pk, method="card", card=PaymentDetails(card_number="4000000000000002")), idempotency_key="d", actor=clerk)
    assert exc.value.status == 402
    # Tickets, order and seats as before. The attempt stays on record: the card was tried after
    # the exchange was written pending (outside the locks), so it is a failed exchange with a
    # failed payment and an audit entry, not nothing.
    after = _state()
    assert after[2:] == before[2:]
    assert list(Exchange.objects.values_list("status", flat=True)) == [Exchange.FAILED]
    assert list(Payment.objects.filter(status=Payment.FAILED).values_list("kind", "amount_cents")) == [(Payment.CHARGE, 1500)]
    assert AuditEntry.objects.filter(action="order.exchange_failed").count() == 1


def test_change_price_type_within_the_same_performance_respects_its_limit(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=4, student_limit=1)
    order = _buy(perf, buyer, good_card, 2)
    a, b = order.tickets.all()
    exchange_tickets(order.pk, ExchangeRequest([a.pk], perf.pk, price_type_id=perf.student.pk, method="original"), idempotency_key="s1", actor=clerk)
    perf.refresh_from_db()
    assert perf.tickets_sold == 2  # the seat moved, it was not taken twice
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([b.pk], perf.pk, price_type_id=perf.student.pk, method="original"), idempotency_key="s2", actor=clerk)
    assert exc.value.code == "sold_out" and "Student" in exc.value.message


def test_exchanged_or_checked_in_tickets_cannot_move(make_performance, buyer, good_card, clerk):
    from django.utils import timezone

    here = make_performance(capacity=10)
    there = make_performance(capacity=10, starts_in=timedelta(days=9))
    order = _buy(here, buyer, good_card, 2)
    a, b = order.tickets.all()
    exchange_tickets(order.pk, ExchangeRequest([a.pk], there.pk), idempotency_key="e1", actor=clerk)
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([a.pk], there.pk), idempotency_key="e2", actor=clerk)
    assert exc.value.code == "ticket_not_valid"
    Ticket.objects.filter(pk=b.pk).update(checked_in_at=timezone.now())
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([b.pk], there.pk), idempotency_key="e3", actor=clerk)
    assert exc.value.code == "ticket_used"
