"""Refunds: partial and full, idempotent, seats back on sale, money back through the provider."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from wondertix.catalog.models import Performance
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Donation
from wondertix.payments.models import Payment
from wondertix.reports import services as reports
from wondertix.sales import inventory
from wondertix.sales.cancellation import refund_performance_buyers
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Refund, RefundSource
from wondertix.sales.refunds import (
    DonationRefund,
    RefundRequest,
    TicketRefund,
    refund_order,
)
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return User.objects.create_user("clerk", password="x" * 12, is_staff=True)


def _buy(perf, buyer, card, n=3, donation=0, pt=None):
    return sell([LineRequest(perf.pk, (pt or perf.adult).pk, n)], CheckoutDetails(buyer=buyer, payment=card, donation_cents=donation))


def _available(perf):
    return inventory.availability_for([perf.pk])[perf.pk].available


def _snapshot():
    return (
        AuditEntry.objects.count(),
        Refund.objects.count(),
        Payment.objects.count(),
        list(Ticket.objects.order_by("pk").values_list("status", flat=True)),
        list(Order.objects.order_by("pk").values_list("status", "refunded_cents")),
        list(Performance.objects.order_by("pk").values_list("tickets_sold", flat=True)),
        list(Donation.objects.order_by("pk").values_list("refunded_cents", flat=True)),
    )


def test_refund_one_of_three_tickets_frees_a_seat_and_marks_the_order_partially_refunded(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 3)
    assert _available(perf) == 7
    ticket = order.tickets.first()

    refund = refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)]), idempotency_key="r-1", actor=clerk)

    order.refresh_from_db()
    ticket.refresh_from_db()
    assert _available(perf) == 8
    assert ticket.status == Ticket.REFUNDED
    assert order.status == Order.PARTIALLY_REFUNDED
    assert refund.amount_cents == 2500 and order.refunded_cents == 2500  # face value, fee kept
    payment = order.payments.get(kind=Payment.REFUND)
    assert payment.amount_cents == 2500 and payment.provider == "test" and payment.reference.startswith("test_re_")
    assert RefundSource.objects.get(payment=payment).charge.kind == Payment.CHARGE
    entry = AuditEntry.objects.get(action="order.refunded")
    assert entry.actor == clerk and entry.before["status"] == Order.PAID and entry.after["status"] == Order.PARTIALLY_REFUNDED
    # Reports reflect it: one ticket refunded, its face value out of the net.
    row = reports.sales_by(reports.Period(), "performance").rows[0]
    assert (row.tickets_sold, row.tickets_refunded) == (3, 1)
    assert row.refunded_cents == 2500
    assert row.net_cents == 3 * 2700 - 2500


def test_repeating_the_same_refund_request_changes_nothing(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 3)
    request = RefundRequest(tickets=[TicketRefund(order.tickets.first().pk)])
    first = refund_order(order.pk, request, idempotency_key="same", actor=clerk)
    before = _snapshot()
    again = refund_order(order.pk, request, idempotency_key="same", actor=clerk)
    assert again.pk == first.pk
    assert _snapshot() == before
    assert _available(perf) == 8


def test_a_key_reused_for_a_different_refund_is_refused(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 3)
    first, second = order.tickets.all()[:2]
    refund_order(order.pk, RefundRequest(tickets=[TicketRefund(first.pk)]), idempotency_key="k", actor=clerk)
    with pytest.raises(SaleError) as exc:
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(second.pk)]), idempotency_key="k", actor=clerk)
    assert exc.value.code == "idempotency_key_reused"


def test_refunding_every_ticket_with_fees_refunds_the_order(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 2)
    request = RefundRequest(tickets=[TicketRefund(t.pk) for t in order.tickets.all()], include_fees=True, method="cash")
    refund = refund_order(order.pk, request, idempotency_key="all", actor=clerk)
    order.refresh_from_db()
    assert refund.amount_cents == order.total_cents == 2 * 2700
    assert refund.fees_cents == 400
    assert order.status == Order.REFUNDED
    assert order.payments.get(kind=Payment.REFUND).provider == "cash"
    assert _available(perf) == 10


def test_fee_can_be_refunded_later_but_never_twice(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 1)
    ticket = order.tickets.get()
    refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)]), idempotency_key="face", actor=clerk)
    fee = refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], include_fees=True), idempotency_key="fee", actor=clerk)
    assert fee.amount_cents == 200
    order.refresh_from_db()
    assert order.status == Order.REFUNDED and order.refunded_cents == order.total_cents
    with pytest.raises(SaleError) as exc:
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], include_fees=True), idempotency_key="again", actor=clerk)
    assert exc.value.code in ("already_refunded", "ticket_already_refunded")


def test_partial_donation_refund_and_more_than_was_given_is_refused(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 1, donation=5000)
    donation = order.donations.get()
    refund_order(order.pk, RefundRequest(donations=[DonationRefund(donation.pk, 2000)]), idempotency_key="d1", actor=clerk)
    donation.refresh_from_db()
    assert donation.refunded_cents == 2000
    before = _snapshot()
    with pytest.raises(SaleError) as exc:
        refund_order(order.pk, RefundRequest(donations=[DonationRefund(donation.pk, 3001)]), idempotency_key="d2", actor=clerk)
    assert exc.value.code == "refund_exceeds_paid"
    assert "$30.00" in exc.value.message
    assert _snapshot() == before


def test_refunding_more_than_was_paid_for_a_ticket_writes_nothing(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 3)
    ticket = order.tickets.first()
    before = _snapshot()
    with pytest.raises(SaleError) as exc:
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk, amount_cents=2701)], include_fees=True), idempotency_key="big", actor=clerk)
    assert exc.value.code == "refund_exceeds_paid"
    assert "$27.00" in exc.value.message
    assert _snapshot() == before
    assert not Refund.objects.filter(idempotency_key="big").exists()


def test_partial_amount_keeps_the_rest_but_returns_the_seat(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _buy(perf, buyer, good_card, 1)
    ticket = order.tickets.get()
    refund = refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk, amount_cents=1500)]), idempotency_key="p", actor=clerk)
    assert refund.amount_cents == 1500
    assert _available(perf) == 10
    order.refresh_from_db()
    assert order.status == Order.PARTIALLY_REFUNDED


def test_ticket_from_another_order_is_refused(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    a = _buy(perf, buyer, good_card, 1)
    b = _buy(perf, buyer, good_card, 1)
    with pytest.raises(SaleError) as exc:
        refund_order(a.pk, RefundRequest(tickets=[TicketRefund(b.tickets.get().pk)]), idempotency_key="x", actor=clerk)
    assert exc.value.code == "ticket_not_in_order"


def test_comp_tickets_refund_for_nothing_but_free_their_seats(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=5)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer), channel=Order.BOX_OFFICE, staff=True, price_overrides={perf.adult.pk: 0}, provider_name="cash")
    assert order.total_cents == 0 and not order.payments.exists()
    refund_order(order.pk, RefundRequest(tickets=[TicketRefund(t.pk) for t in order.tickets.all()]), idempotency_key="comp", actor=clerk)
    order.refresh_from_db()
    assert order.status == Order.REFUNDED and _available(perf) == 5
    assert not order.payments.exists()


def test_refund_all_buyers_of_a_canceled_performance(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    orders = [_buy(perf, buyer, good_card, n) for n in (1, 2)]
    with pytest.raises(SaleError) as exc:
        refund_performance_buyers(perf.pk, actor=clerk)
    assert exc.value.code == "performance_not_canceled"
    Performance.objects.filter(pk=perf.pk).update(status=Performance.CANCELED)
    result = refund_performance_buyers(perf.pk, actor=clerk)
    assert sorted(result.refunded_orders) == sorted(o.pk for o in orders)
    assert result.tickets == 3 and result.amount_cents == 3 * 2700
    for o in orders:
        o.refresh_from_db()
        assert o.status == Order.REFUNDED
    perf.refresh_from_db()
    assert perf.tickets_sold == 0
    # Running it again finds nobody left to refund.
    assert refund_performance_buyers(perf.pk, actor=clerk).refunded_orders == []
