"""Refunds and exchanges whose provider call or commit goes wrong: a retry with the same key,
the staff page's retry and the reconciliation each refund (or charge) exactly once; a
refusal gives everything back."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from wondertix.catalog.models import PriceType
from wondertix.ops import audit
from wondertix.ops.models import AuditEntry
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import ProviderUnavailable, RefundResult
from wondertix.payments.providers.test import TestCardProvider
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange, Refund
from wondertix.sales.refunds import RefundRequest, TicketRefund, refund_order
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


class CardNetwork:
    """The provider's side of refunds: one refund per idempotency key, like Stripe.

    `lose_answers`: that many calls do the refund but their answer never arrives (a timeout).
    `refuse`: every refund is refused (nothing is refunded).
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.refunds: dict[str, int] = {}
        self.lose_answers = 0
        self.refuse = False

    def refund(self, *, reference: str, amount_cents: int, idempotency_key: str) -> RefundResult:
        self.calls.append(idempotency_key)
        if self.refuse:
            return RefundResult(False, message="The card issuer refused the refund.")
        self.refunds.setdefault(idempotency_key, amount_cents)
        if self.lose_answers:
            self.lose_answers -= 1
            raise ProviderUnavailable("The payment service did not answer in time.")
        return RefundResult(True, reference=f"re_{len(self.refunds)}")


@pytest.fixture
def network(monkeypatch):
    net = CardNetwork()
    monkeypatch.setattr(TestCardProvider, "refund", lambda self, **kw: net.refund(**kw))
    return net


def _order(perf, buyer, card, n=2):
    return sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card))


def _available(perf):
    return inventory.availability_for([perf.pk])[perf.pk].available


def _crash_once_when_recording_the_refund(monkeypatch):
    """The commit that records a refund fails once (the process dies, the database fails over)."""
    real = audit.record
    crashed = []

    def record(action, *args, **kwargs):
        if action == "order.refunded" and not crashed:
            crashed.append(action)
            raise RuntimeError("server lost before the refund was recorded")
        return real(action, *args, **kwargs)

    monkeypatch.setattr(audit, "record", record)
    return crashed


def test_a_refund_retried_after_a_crash_between_the_provider_and_the_commit_refunds_once(monkeypatch, network, make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    ticket = order.tickets.first()
    crashed = _crash_once_when_recording_the_refund(monkeypatch)
    request = RefundRequest(tickets=[TicketRefund(ticket.pk)], include_fees=True)

    with pytest.raises(RuntimeError):
        refund_order(order.pk, request, idempotency_key="crash-1", actor=clerk)

    assert crashed and list(network.refunds.values()) == [2700], "the provider refunded before the crash"
    # The money went out: that is on record (pending), and nothing can refund the ticket again.
    pending = Refund.objects.get(idempotency_key="crash-1")
    assert pending.status == Refund.PENDING and pending.amount_cents == 2700
    with pytest.raises(SaleError) as again:
        refund_order(order.pk, request, idempotency_key="crash-2", actor=clerk)
    assert again.value.code == "ticket_already_refunded"

    refund = refund_order(order.pk, request, idempotency_key="crash-1", actor=clerk)

    assert refund.pk == pending.pk and refund.status == Refund.SUCCEEDED
    assert network.calls[0] == network.calls[-1], "the retry sent the provider the same idempotency key"
    assert len(network.refunds) == 1, "the provider refunded once"
    order.refresh_from_db()
    assert Refund.objects.filter(order=order).count() == 1
    assert list(order.payments.filter(kind=Payment.REFUND).values_list("status", "amount_cents")) == [(Payment.SUCCEEDED, 2700)]
    assert order.refunded_cents == 2700 and order.status == Order.PARTIALLY_REFUNDED
    assert _available(perf) == 9, "the seat came back once"
    assert AuditEntry.objects.filter(action="order.refunded").count() == 1


def test_reconcile_completes_a_refund_left_pending_by_a_crash(monkeypatch, network, make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    ticket = order.tickets.first()
    _crash_once_when_recording_the_refund(monkeypatch)
    with pytest.raises(RuntimeError):
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)]), idempotency_key="left-behind", actor=clerk)
    assert _available(perf) == 8, "a pending refund keeps the seat until the money is back"
    # Nobody retries. Later the scheduled reconciliation runs.
    Refund.objects.filter(idempotency_key="left-behind").update(created_at=timezone.now() - timedelta(minutes=10))

    out = io.StringIO()
    call_command("reconcile_payments", stdout=out)

    assert json.loads(out.getvalue())["refunds"] == {"refund_succeeded": 1}
    refund = Refund.objects.get(idempotency_key="left-behind")
    assert refund.status == Refund.SUCCEEDED
    assert len(set(network.calls)) == 1 and len(network.refunds) == 1, "sent again with the same key: refunded once"
    order.refresh_from_db()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.REFUNDED and order.refunded_cents == 2500
    assert _available(perf) == 9
    assert order.payments.get(kind=Payment.REFUND).status == Payment.SUCCEEDED
    # Running it again finds nothing to do.
    out = io.StringIO()
    call_command("reconcile_payments", stdout=out)
    assert "refunds" not in json.loads(out.getvalue())


def test_a_partial_refund_retried_from_the_page_with_the_same_key_refunds_once(network, make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    ticket = order.tickets.first()
    key = staff.get(f"/staff/sales/orders/{order.pk}/").context["key"]
    form = {"ticket": [str(ticket.pk)], f"amount_{ticket.pk}": "10.00", "method": "original", "reason": "Late start", "key": key}
    network.lose_answers = 1  # the provider refunds $10.00, but its answer is lost

    first = staff.post(f"/staff/sales/orders/{order.pk}/refund/", form)

    assert first.status_code == 409
    html = first.content.decode()
    assert "still pending" in html
    shown = re.search(r'name="key" value="([^"]+)"', html).group(1)
    assert shown == key, "the page shown after the error keeps the key, so sending it again is a retry"

    second = staff.post(f"/staff/sales/orders/{order.pk}/refund/", {**form, "key": shown}, follow=True)

    assert second.status_code == 200 and "Refunded $10.00" in second.content.decode()
    assert len(network.refunds) == 1 and list(network.refunds.values()) == [1000], "one $10.00 refund at the provider"
    order.refresh_from_db()
    assert Refund.objects.filter(order=order).count() == 1
    assert order.refunded_cents == 1000
    assert list(order.payments.filter(kind=Payment.REFUND).values_list("status", "amount_cents")) == [(Payment.SUCCEEDED, 1000)]


def test_a_refused_refund_changes_nothing_and_the_next_try_gets_a_new_key(network, make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    ticket = order.tickets.first()
    key = staff.get(f"/staff/sales/orders/{order.pk}/").context["key"]
    network.refuse = True

    page = staff.post(f"/staff/sales/orders/{order.pk}/refund/", {"ticket": [str(ticket.pk)], "method": "original", "key": key})

    assert page.status_code == 402 and "refused the refund" in page.content.decode()
    assert page.context["key"] != key, "nothing was refunded: the next try is a new refund"
    order.refresh_from_db()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.VALID and order.status == Order.PAID and order.refunded_cents == 0
    assert _available(perf) == 8
    assert Refund.objects.get(idempotency_key=key).status == Refund.FAILED
    assert not order.payments.filter(kind=Payment.REFUND, status=Payment.SUCCEEDED).exists()
    assert not AuditEntry.objects.filter(action="order.refunded").exists()
    assert AuditEntry.objects.filter(action="order.refund_failed").count() == 1
    # The provider takes it this time, under the new key: one refund.
    network.refuse = False
    retry = staff.post(f"/staff/sales/orders/{order.pk}/refund/", {"ticket": [str(ticket.pk)], "method": "original", "key": page.context["key"]})
    assert retry.status_code == 302, retry.context and retry.context.get("refund_error")
    order.refresh_from_db()
    assert order.refunded_cents == 2500 and _available(perf) == 9 and len(network.refunds) == 1


def test_cash_refunds_use_the_same_steps(make_performance, buyer, good_card, clerk):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    refund = refund_order(order.pk, RefundRequest(tickets=[TicketRefund(t.pk) for t in order.tickets.all()], include_fees=True, method="cash"), idempotency_key="cash-1", actor=clerk)
    assert refund.status == Refund.SUCCEEDED
    payment = order.payments.get(kind=Payment.REFUND)
    assert (payment.provider, payment.status, payment.amount_cents) == ("cash", Payment.SUCCEEDED, 5400)
    order.refresh_from_db()
    assert order.status == Order.REFUNDED and _available(perf) == 10


# ---------------------------------------------------------------------------- exchanges


def _dear(make_performance):
    perf = make_performance(capacity=10)
    PriceType.objects.filter(pk=perf.adult.pk).update(price_cents=4000)
    perf.adult.refresh_from_db()
    return perf


def test_an_exchange_whose_refund_of_the_difference_was_lost_is_finished_by_a_retry_once(network, make_performance, buyer, good_card, clerk):
    dear = _dear(make_performance)
    cheap = make_performance(capacity=10)
    order = _order(dear, buyer, good_card, 1)
    ticket = order.tickets.get()
    request = ExchangeRequest([ticket.pk], cheap.pk, method="original")
    network.lose_answers = 1  # the provider refunds the $15.00 difference; its answer is lost

    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, request, idempotency_key="down-1", actor=clerk)

    assert exc.value.code == "exchange_pending" and exc.value.status == 409
    pending = Exchange.objects.get(idempotency_key="down-1")
    assert pending.status == Exchange.PENDING
    ticket.refresh_from_db()
    assert ticket.status == Ticket.EXCHANGED, "the old ticket cannot be used or moved again meanwhile"
    assert not Ticket.objects.filter(performance=cheap, status=Ticket.VALID).exists(), "the new ticket is not valid before the money is settled"
    assert _available(dear) == 9, "the old seat stays sold until the exchange is finished"

    exchange = exchange_tickets(order.pk, request, idempotency_key="down-1", actor=clerk)

    assert exchange.pk == pending.pk and exchange.status == Exchange.SUCCEEDED
    assert len(network.refunds) == 1 and list(network.refunds.values()) == [1500] and len(set(network.calls)) == 1
    assert list(order.payments.filter(kind=Payment.REFUND).values_list("status", "amount_cents")) == [(Payment.SUCCEEDED, 1500)]
    assert Ticket.objects.filter(performance=cheap, status=Ticket.VALID).count() == 1
    assert (_available(dear), _available(cheap)) == (10, 9)
    order.refresh_from_db()
    assert order.total_cents == 4200 - 1500
    assert AuditEntry.objects.filter(action="order.exchanged").count() == 1


def test_reconcile_finishes_an_exchange_left_pending(network, make_performance, buyer, good_card, clerk):
    dear = _dear(make_performance)
    cheap = make_performance(capacity=10)
    order = _order(dear, buyer, good_card, 1)
    network.lose_answers = 1
    with pytest.raises(SaleError):
        exchange_tickets(order.pk, ExchangeRequest([order.tickets.get().pk], cheap.pk, method="original"), idempotency_key="down-2", actor=clerk)
    Exchange.objects.filter(idempotency_key="down-2").update(created_at=timezone.now() - timedelta(minutes=10))

    out = io.StringIO()
    call_command("reconcile_payments", stdout=out)

    assert json.loads(out.getvalue())["exchanges"] == {"exchange_succeeded": 1}
    assert Exchange.objects.get(idempotency_key="down-2").status == Exchange.SUCCEEDED
    assert len(network.refunds) == 1 and (_available(dear), _available(cheap)) == (10, 9)


def test_an_exchange_card_charge_retried_from_the_page_charges_once(monkeypatch, make_performance, buyer, good_card, staff):
    cheap = make_performance(capacity=10)
    dear = _dear(make_performance)
    order = _order(cheap, buyer, good_card, 1)
    ticket = order.tickets.get()
    charges: dict[str, int] = {}
    lost = [1]
    real_charge = TestCardProvider.charge

    def charge(self, *, amount_cents, details, description, idempotency_key):
        result = real_charge(self, amount_cents=amount_cents, details=details, description=description, idempotency_key=idempotency_key)
        if idempotency_key.startswith("exchange:"):
            charges.setdefault(idempotency_key, amount_cents)
            if lost:
                lost.pop()
                raise ProviderUnavailable("The payment service did not answer in time.")
        return result

    monkeypatch.setattr(TestCardProvider, "charge", charge)
    preview = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", {"step": "preview", "ticket": [str(ticket.pk)], "to_performance": str(dear.pk)})
    key = preview.context["key"]
    card = {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}
    form = {"step": "confirm", "key": key, "ticket": [str(ticket.pk)], "to_performance": str(dear.pk), "price_type": "", "method": "card", "reason": "", **card}

    first = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", form)

    assert first.status_code == 409 and "still pending" in first.content.decode()
    html = first.content.decode()
    assert f'name="key" value="{key}"' in html, "the page offers the same exchange again, with the same key"

    second = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", form, follow=True)

    assert second.status_code == 200 and "charged $15.00" in second.content.decode()
    assert charges == {f"exchange:{key}": 1500}, "one charge at the provider"
    assert list(order.payments.filter(kind=Payment.CHARGE).values_list("status", "amount_cents")) == [(Payment.SUCCEEDED, 2700), (Payment.SUCCEEDED, 1500)]
    assert Exchange.objects.get().status == Exchange.SUCCEEDED
    assert (_available(cheap), _available(dear)) == (10, 9)


def test_a_provider_error_that_is_not_an_answer_keeps_the_refund_pending(monkeypatch, make_performance, buyer, good_card, clerk):
    """Stripe answering 500 (or not at all) is not a refusal: the refund may have gone out."""
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    ticket = order.tickets.first()
    answers = [RefundResult(False, message="Stripe had an internal error.", unknown=True), RefundResult(True, reference="re_1")]
    monkeypatch.setattr(TestCardProvider, "refund", lambda self, **kw: answers.pop(0))
    request = RefundRequest(tickets=[TicketRefund(ticket.pk)])

    with pytest.raises(SaleError) as exc:
        refund_order(order.pk, request, idempotency_key="maybe", actor=clerk)

    assert exc.value.code == "refund_pending"
    assert Refund.objects.get(idempotency_key="maybe").status == Refund.PENDING
    assert refund_order(order.pk, request, idempotency_key="maybe", actor=clerk).status == Refund.SUCCEEDED
    assert _available(perf) == 9


@pytest.mark.parametrize(("status", "body", "unknown"), [
    (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}, True),
    (429, {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}}, True),
    (400, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such payment_intent"}}, False),
])
def test_stripe_refund_errors_say_whether_the_outcome_is_known(monkeypatch, settings, status, body, unknown):
    import stripe
    from tests.unit.test_stripe_payments import RecordedStripe

    settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
    client = RecordedStripe()
    client.reply("POST", "/v1/refunds", body, status=status)
    monkeypatch.setattr(stripe, "default_http_client", client)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    from wondertix.payments.providers.stripe import StripeProvider

    result = StripeProvider().refund(reference="pi_123", amount_cents=500, idempotency_key="refund:k:1")

    assert not result.ok and result.unknown is unknown
