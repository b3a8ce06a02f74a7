"""Canceling a performance is one staff action: a confirmation page with what it will do, then
the performance comes off sale, every buyer is refunded through the refund path, the seats are
freed and every buyer gets one email — and running it again (or after an interruption) refunds
and emails nobody twice."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.test import Client

from wondertix.catalog.models import Performance
from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.providers.test import TestCardProvider
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Refund
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    user = User.objects.create_user("house-manager", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def three_orders(make_performance, good_card, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=20)
    orders = []
    with django_capture_on_commit_callbacks(execute=True):
        for n, qty in enumerate((1, 2, 3), start=1):
            buyer = Buyer(first_name=f"Buyer{n}", last_name="Patron", email=f"buyer{n}@example.org")
            orders.append(sell([LineRequest(perf.pk, perf.adult.pk, qty)], CheckoutDetails(buyer=buyer, payment=good_card)))
    mail.outbox.clear()  # the confirmations
    perf.refresh_from_db()
    assert perf.tickets_sold == 6
    return perf, orders


def _cancel(admin, perf, django_capture_on_commit_callbacks, **extra):
    with django_capture_on_commit_callbacks(execute=True):
        return admin.post(f"/staff/performances/{perf.pk}/cancel/", {"reason": "Lead actor ill", "method": "original", **extra})


def test_confirmation_page_shows_orders_tickets_and_refund_total(admin, three_orders):
    perf, _ = three_orders
    page = admin.get(f"/staff/performances/{perf.pk}/cancel/").content.decode()
    assert '<dd id="cancel-orders">3</dd>' in page
    assert '<dd id="cancel-tickets">6</dd>' in page
    assert '<dd id="cancel-total">$162.00</dd>' in page  # 6 × ($25 + $2 fee)
    assert "Cancel the performance and refund 3 orders ($162.00)" in page
    perf.refresh_from_db()
    assert perf.status == Performance.ON_SALE  # looking changes nothing


def test_canceling_with_three_orders_refunds_three_frees_the_seats_and_sends_three_emails(admin, three_orders, django_capture_on_commit_callbacks):
    perf, orders = three_orders
    response = _cancel(admin, perf, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    perf.refresh_from_db()
    assert perf.status == Performance.CANCELED and not perf.is_on_sale()
    assert perf.tickets_sold == 0
    assert not Ticket.objects.filter(performance=perf, status=Ticket.VALID).exists()
    refunds = Refund.objects.filter(canceled_performance=perf)
    assert refunds.count() == 3 and set(refunds.values_list("status", flat=True)) == {Refund.SUCCEEDED}
    for order, qty in zip(orders, (1, 2, 3), strict=True):
        order.refresh_from_db()
        assert order.status == Order.REFUNDED and order.refunded_cents == qty * 2700
        back = order.payments.get(kind=Payment.REFUND)
        assert (back.status, back.provider, back.amount_cents) == (Payment.SUCCEEDED, "test", qty * 2700)
    assert sorted(m.to[0] for m in mail.outbox) == ["buyer1@example.org", "buyer2@example.org", "buyer3@example.org"]
    for message in mail.outbox:
        assert message.subject.startswith("[TEST — NOT VALID] Canceled: Show")
        assert "has been canceled" in message.body and "We have refunded $" in message.body
        html, kind = message.alternatives[0]
        assert kind == "text/html" and "has been canceled" in html
    assert OutboxEmail.objects.filter(kind=OutboxEmail.PERFORMANCE_CANCELED, status=OutboxEmail.SENT).count() == 3
    assert AuditEntry.objects.filter(action="performance.canceled").count() == 1

    # The action again (a double click, a reload): nobody is refunded or emailed twice.
    again = _cancel(admin, perf, django_capture_on_commit_callbacks)
    assert again.status_code in (200, 302)
    assert Refund.objects.filter(canceled_performance=perf).count() == 3
    assert len(mail.outbox) == 3
    assert Payment.objects.filter(kind=Payment.REFUND).count() == 3


def test_an_interrupted_cancellation_is_finished_by_running_it_again(admin, three_orders, django_capture_on_commit_callbacks, monkeypatch):
    perf, orders = three_orders
    real_refund = TestCardProvider.refund
    calls = {"n": 0}

    def flaky_refund(self, **kwargs):  # the card network stops answering after the first refund
        calls["n"] += 1
        if calls["n"] > 1:
            raise ProviderUnavailable("no answer")
        return real_refund(self, **kwargs)

    monkeypatch.setattr(TestCardProvider, "refund", flaky_refund)
    first = _cancel(admin, perf, django_capture_on_commit_callbacks)
    assert first.status_code == 302
    perf.refresh_from_db()
    assert perf.status == Performance.CANCELED
    statuses = sorted(Refund.objects.filter(canceled_performance=perf).values_list("status", flat=True))
    assert statuses == [Refund.PENDING, Refund.PENDING, Refund.SUCCEEDED]
    assert len(mail.outbox) == 1  # only the buyer whose money went out is told so far
    page = admin.get(f"/staff/performances/{perf.pk}/cancel/").content.decode()
    assert "2 refunds of this cancellation are waiting for the payment provider" in page

    monkeypatch.setattr(TestCardProvider, "refund", real_refund)
    _cancel(admin, perf, django_capture_on_commit_callbacks)
    refunds = Refund.objects.filter(canceled_performance=perf)
    assert refunds.count() == 3 and set(refunds.values_list("status", flat=True)) == {Refund.SUCCEEDED}
    perf.refresh_from_db()
    assert perf.tickets_sold == 0
    assert sorted(m.to[0] for m in mail.outbox) == ["buyer1@example.org", "buyer2@example.org", "buyer3@example.org"]


def test_canceling_needs_a_reason_and_writes_nothing_without_one(admin, three_orders, django_capture_on_commit_callbacks):
    perf, _ = three_orders
    response = _cancel(admin, perf, django_capture_on_commit_callbacks, reason="")
    assert response.status_code == 422
    perf.refresh_from_db()
    assert perf.status == Performance.ON_SALE and perf.tickets_sold == 6
    assert not Refund.objects.exists() and mail.outbox == []
