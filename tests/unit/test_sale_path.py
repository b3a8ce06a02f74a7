"""The sale service: capacity, price-type limits, holds, pricing and idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Hold, Order, Ticket
from wondertix.sales.services import CheckoutDetails, LineRequest, checkout, create_hold, sell

pytestmark = pytest.mark.django_db


def _details(buyer, card, **kw):
    return CheckoutDetails(buyer=buyer, payment=card, **kw)


def test_sale_issues_tickets_and_moves_availability(make_performance, buyer, good_card):
    perf = make_performance(capacity=10)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], _details(buyer, good_card))
    assert order.status == Order.PAID
    assert order.tickets.count() == 2
    assert order.total_cents == 2 * (2500 + 200)
    assert order.payments.get().amount_cents == order.total_cents
    assert inventory.availability_for([perf.pk])[perf.pk].available == 8


def test_last_seat_is_sold_exactly_once(make_performance, buyer, good_card):
    perf = make_performance(capacity=3)
    sell([LineRequest(perf.pk, perf.adult.pk, 3)], _details(buyer, good_card))
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.adult.pk, 1)], _details(buyer, good_card))
    assert exc.value.code == "sold_out"
    assert Ticket.objects.filter(performance=perf).count() == 3


def test_price_type_limit_is_enforced(make_performance, buyer, good_card):
    perf = make_performance(capacity=10, student_limit=3)
    sell([LineRequest(perf.pk, perf.student.pk, 2)], _details(buyer, good_card))
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.student.pk, 2)], _details(buyer, good_card))
    assert exc.value.code == "sold_out"
    assert "Student" in exc.value.message


def test_unexpired_hold_counts_and_expired_hold_frees_seats(make_performance, buyer, good_card):
    perf = make_performance(capacity=4)
    hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 4)])
    with pytest.raises(SaleError):
        sell([LineRequest(perf.pk, perf.adult.pk, 1)], _details(buyer, good_card))
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    hold.lines.update(expires_at=timezone.now() - timedelta(seconds=1))
    order = sell([LineRequest(perf.pk, perf.adult.pk, 4)], _details(buyer, good_card))
    assert order.tickets.count() == 4


def test_checkout_of_expired_hold_is_refused_and_writes_nothing(make_performance, buyer, good_card):
    perf = make_performance(capacity=4)
    hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 2)])
    hold.lines.update(expires_at=timezone.now() - timedelta(seconds=1))
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(SaleError) as exc:
        checkout(hold.token, _details(buyer, good_card))
    assert exc.value.code == "hold_expired"
    assert Order.objects.count() == 0 and Ticket.objects.count() == 0


def test_checkout_converts_hold_and_cannot_be_replayed(make_performance, buyer, good_card):
    perf = make_performance(capacity=4)
    hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 2)])
    order = checkout(hold.token, _details(buyer, good_card))
    assert order.tickets.count() == 2
    assert inventory.availability_for([perf.pk])[perf.pk].available == 2
    with pytest.raises(SaleError) as exc:
        checkout(hold.token, _details(buyer, good_card))
    assert exc.value.code == "cart_already_checked_out"
    assert Order.objects.count() == 1


def test_declined_card_releases_the_seats(make_performance, buyer):
    perf = make_performance(capacity=4)
    hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 2)])
    declined = PaymentDetails(card_number="4000 0000 0000 0002")
    with pytest.raises(SaleError) as exc:
        checkout(hold.token, _details(buyer, declined))
    assert exc.value.code == "payment_declined"
    assert "declined" in exc.value.message
    assert Order.objects.count() == 0
    assert inventory.availability_for([perf.pk])[perf.pk].available == 4


def test_same_idempotency_key_sells_once(make_performance, buyer, good_card):
    perf = make_performance(capacity=10)
    lines = [LineRequest(perf.pk, perf.adult.pk, 2)]
    first = sell(lines, _details(buyer, good_card), idempotency_key="key-123456")
    second = sell(lines, _details(buyer, good_card), idempotency_key="key-123456")
    assert first.pk == second.pk
    assert Ticket.objects.count() == 2
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.adult.pk, 3)], _details(buyer, good_card), idempotency_key="key-123456")
    assert exc.value.code == "idempotency_key_reused"


@pytest.mark.parametrize("quantity", [0, -1, 21])
def test_bad_quantities_are_refused(make_performance, buyer, good_card, quantity):
    perf = make_performance()
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.adult.pk, quantity)], _details(buyer, good_card))
    assert exc.value.code == "invalid_quantity"
    assert Order.objects.count() == 0


def test_tampered_price_is_refused(make_performance, buyer, good_card):
    perf = make_performance()
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.adult.pk, 1, unit_price_cents=1)], _details(buyer, good_card))
    assert exc.value.code == "price_mismatch"


def test_pay_what_you_can_respects_minimum(make_performance, buyer, good_card):
    perf = make_performance()
    with pytest.raises(SaleError) as exc:
        sell([LineRequest(perf.pk, perf.pwyc.pk, 1, unit_price_cents=100)], _details(buyer, good_card))
    assert exc.value.code == "invalid_price"
    order = sell([LineRequest(perf.pk, perf.pwyc.pk, 1, unit_price_cents=1200)], _details(buyer, good_card))
    assert order.subtotal_cents == 1200
