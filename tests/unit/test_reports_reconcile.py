"""Reports reconcile exactly: for any mix of sales, refunds, donations and exchanges over
several days, every total equals the sum of the underlying rows, and two adjacent periods add
up to the whole (a hypothesis property test)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wondertix.patrons.models import Donation
from wondertix.payments.models import Payment
from wondertix.reports import services as reports
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import ExchangeItem, Refund, RefundItem
from wondertix.sales.refunds import DonationRefund, RefundRequest, TicketRefund, refund_order
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CHANNELS = [Order.ONLINE, Order.API, Order.BOX_OFFICE]

sale = st.tuples(st.just("sell"), st.integers(0, 2), st.sampled_from(["adult", "student"]), st.integers(1, 3), st.sampled_from([0, 500, 2500]), st.sampled_from(CHANNELS))
ticket_refund = st.tuples(st.just("refund_ticket"), st.integers(0, 40), st.booleans(), st.one_of(st.none(), st.integers(0, 3000)))
donation_refund = st.tuples(st.just("refund_donation"), st.integers(0, 40), st.one_of(st.none(), st.integers(1, 3000)))
exchange = st.tuples(st.just("exchange"), st.integers(0, 40), st.integers(0, 2), st.sampled_from(["cash", "waive", "original"]))
next_day = st.tuples(st.just("next_day"))
operations = st.lists(st.one_of(sale, sale, ticket_refund, donation_refund, exchange, next_day), min_size=1, max_size=14)


def _check_everything(perfs: list, days: list) -> None:
    whole = reports.Period()
    summary = reports.summary(whole)
    sold_orders = Order.objects.filter(status__in=reports.SOLD_STATUSES)
    agg = sold_orders.aggregate(total=Sum("total_cents"), refunded=Sum("refunded_cents"))
    charges = Payment.objects.filter(kind=Payment.CHARGE, status=Payment.SUCCEEDED).aggregate(n=Sum("amount_cents"))["n"] or 0
    paid_back = Payment.objects.filter(kind=Payment.REFUND, status=Payment.SUCCEEDED).aggregate(n=Sum("amount_cents"))["n"] or 0

    # Money: orders, refunds and payments agree with the report to the cent.
    assert summary.total.gross_cents == (agg["total"] or 0)
    assert summary.total.refunded_cents == (agg["refunded"] or 0) == summary.refunds_cents
    assert summary.refunds_cents == (Refund.objects.aggregate(n=Sum("amount_cents"))["n"] or 0)
    assert summary.charges_cents == charges and summary.payments_refunded_cents == paid_back
    assert summary.reconciles and summary.total.net_cents == charges - paid_back
    for order in sold_orders:
        p = order.payments.filter(status=Payment.SUCCEEDED)
        net = (p.filter(kind=Payment.CHARGE).aggregate(n=Sum("amount_cents"))["n"] or 0) - (p.filter(kind=Payment.REFUND).aggregate(n=Sum("amount_cents"))["n"] or 0)
        assert net == order.total_cents - order.refunded_cents

    # Tickets: every grouping sums to the same totals, and to the ticket rows.
    kept = Ticket.objects.filter(order__status__in=reports.SOLD_STATUSES).exclude(status=Ticket.EXCHANGED)
    for dimension in reports.DIMENSIONS:
        report = reports.sales_by(whole, dimension)
        assert sum(r.gross_cents for r in report.rows) == report.total.gross_cents == summary.total.tickets.gross_cents
        assert sum(r.refunded_cents for r in report.rows) == report.total.refunded_cents == summary.total.tickets.refunded_cents
        assert report.total.tickets_sold == kept.count()
        assert report.total.tickets_refunded == Ticket.objects.filter(status=Ticket.REFUNDED).count()
        assert report.total.face_cents == sum(t.price_cents - t.discount_cents for t in kept)
        assert report.total.fees_cents == sum(t.fee_cents for t in kept)
    by_perf = {r.key: r for r in reports.sales_by(whole, "performance").rows}
    for perf in perfs:
        perf.refresh_from_db()
        row = by_perf.get(str(perf.pk))
        valid = Ticket.objects.filter(performance=perf, status=Ticket.VALID).count()
        assert perf.tickets_sold == valid
        if row is not None:
            assert row.tickets_sold - row.tickets_refunded == valid
    attendance = {a.performance_id: a for a in reports.attendance(whole)}
    assert sum(a.sold for a in attendance.values()) == Ticket.objects.filter(status=Ticket.VALID).count()

    # Donations: the list adds up to the summary.
    rows = reports.donation_rows(whole)
    assert sum(r.amount_cents for r in rows) == summary.total.donations.gross_cents == (Donation.objects.aggregate(n=Sum("amount_cents"))["n"] or 0)
    assert sum(r.refunded_cents for r in rows) == summary.total.donations.refunded_cents
    assert sum(r.amount_cents for r in reports.refund_rows(whole)) == summary.refunds_cents

    # Date filters: splitting the days into two adjacent periods loses or doubles nothing.
    for split in days[:-1]:
        first = reports.Period(date_to=split)
        rest = reports.Period(date_from=split + timedelta(days=1))
        a, b = reports.summary(first), reports.summary(rest)
        assert a.reconciles and b.reconciles
        assert a.total.net_cents + b.total.net_cents == summary.total.net_cents
        assert a.refunds_cents + b.refunds_cents == summary.refunds_cents
        for dimension in ("performance", "channel"):
            whole_rows = {r.key: (r.tickets_sold, r.gross_cents, r.refunded_cents) for r in reports.sales_by(whole, dimension).rows}
            parts: Counter = Counter()
            for period in (first, rest):
                for r in reports.sales_by(period, dimension).rows:
                    parts[(r.key, 0)] += r.tickets_sold
                    parts[(r.key, 1)] += r.gross_cents
                    parts[(r.key, 2)] += r.refunded_cents
            for key, values in whole_rows.items():
                assert tuple(parts[(key, i)] for i in range(3)) == values


EVERY_KIND = [
    ("sell", 0, "adult", 2, 2500, Order.ONLINE),
    ("sell", 1, "student", 1, 0, Order.BOX_OFFICE),
    ("next_day",),
    ("refund_ticket", 0, True, None),
    ("refund_donation", 0, 1000),
    ("exchange", 1, 2, "cash"),
]


@example(ops=EVERY_KIND)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_every_report_total_is_the_sum_of_its_rows(make_performance, good_card, ops):
    clerk, _ = User.objects.get_or_create(username="clerk")
    base = timezone.make_aware(datetime(2031, 3, 1, 10, 0))
    clock = {"now": base}
    with mock.patch("django.utils.timezone.now", side_effect=lambda: clock["now"]), transaction.atomic():
        perfs = [make_performance(capacity=6, starts_in=timedelta(days=30 + i)) for i in range(3)]
        for i, perf in enumerate(perfs):
            perf.adult.price_cents = 2500 + 1000 * i
            perf.adult.save()
        buyer = Buyer(first_name="Pat", last_name="Ron", email="pat@example.org")
        days = [timezone.localdate(base)]
        for n, op in enumerate(ops):
            tickets = list(Ticket.objects.order_by("pk"))
            try:
                if op[0] == "sell":
                    _, p, kind, qty, donation, channel = op
                    perf = perfs[p]
                    pt = perf.adult if kind == "adult" else perf.student
                    staff = channel == Order.BOX_OFFICE
                    sell([LineRequest(perf.pk, pt.pk, qty)], CheckoutDetails(buyer=buyer, payment=good_card, donation_cents=donation),
                         channel=channel, staff=staff, provider_name="cash" if staff else "test")
                elif op[0] == "refund_ticket" and tickets:
                    t = tickets[op[1] % len(tickets)]
                    refund_order(t.order_id, RefundRequest(tickets=[TicketRefund(t.pk, op[3])], include_fees=op[2]), idempotency_key=f"r{n}", actor=clerk)
                elif op[0] == "refund_donation" and Donation.objects.exists():
                    ds = list(Donation.objects.order_by("pk"))
                    d = ds[op[1] % len(ds)]
                    refund_order(d.order_id, RefundRequest(donations=[DonationRefund(d.pk, op[2])], method="cash"), idempotency_key=f"d{n}", actor=clerk)
                elif op[0] == "exchange" and tickets:
                    t = tickets[op[1] % len(tickets)]
                    exchange_tickets(t.order_id, ExchangeRequest([t.pk], perfs[op[2]].pk, method=op[3], reason="test"), idempotency_key=f"e{n}", actor=clerk)
                elif op[0] == "next_day":
                    clock["now"] += timedelta(days=1)
                    days.append(timezone.localdate(clock["now"]))
            except SaleError:
                pass  # refused requests write nothing; the invariants below must still hold
        if ops[0][0] == "sell":
            assert Order.objects.exists()  # the first sale always fits: the run is not vacuous
        if ops == EVERY_KIND:
            assert RefundItem.objects.filter(ticket__isnull=False).exists() and RefundItem.objects.filter(donation__isnull=False).exists()
            assert ExchangeItem.objects.exists() and len(days) == 2
        _check_everything(perfs, days)
        transaction.set_rollback(True)
