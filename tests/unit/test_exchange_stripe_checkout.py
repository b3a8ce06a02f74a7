"""A signed-in patron's exchange that owes a difference, with Stripe (recorded responses,
signed webhooks): the difference is paid on Stripe Checkout, the webhook finishes the exchange
exactly once, an expired page changes nothing, and a payment arriving after the seats were
given up is refunded to the card with the patron's tickets as they were."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone
from test_patron_account import _confirm, _quote, _signed_in, show  # noqa: F401 (fixture)
from test_stripe_payments import deliver, fake_stripe  # noqa: F401 (fixture)
from tests.support.recorded_stripe import recorded

from wondertix.catalog.models import Performance
from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.payments.models import Payment, WebhookEvent
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def _buy(perf, buyer, card, n: int) -> Order:
    with override_settings(PAYMENT_PROVIDER="test"):
        order = sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card))
    OutboxEmail.objects.update(status=OutboxEmail.SENT)  # the confirmation: not what these tests read
    mail.outbox.clear()
    return order


def _event(exchange: Exchange, name: str, *, intent: str = "pi_test_exchange_difference", amount: int | None = None) -> str:
    """What Stripe sends about the exchange's payment page."""
    event = recorded(name)
    session = event["data"]["object"]
    order = exchange.order
    page = exchange.pending_state["checkout"]
    total = exchange.difference_cents if amount is None else amount
    session.update({"id": page["session_id"], "client_reference_id": order.token, "amount_total": total, "amount_subtotal": total, "payment_intent": intent})
    session["metadata"] = {"order_token": order.token, "order_reference": order.reference, "exchange_id": str(exchange.pk)}
    event["id"] = f"evt_test_{name}_exchange_{exchange.pk}"
    return json.dumps(event)


def _tickets(order: Order) -> list[tuple[int, str, int]]:
    return list(Ticket.objects.filter(order=order).order_by("pk").values_list("pk", "status", "performance_id"))


def _sold(*perfs: Performance) -> tuple[int, ...]:
    return tuple(Performance.objects.get(pk=p.pk).tickets_sold for p in perfs)


def _start(client, order, moving, target, price_type, fake):
    quote = _quote(client, order, moving, target, price_type)
    assert quote.status_code == 200, quote.content.decode()[:500]
    page = quote.content.decode()
    assert "To pay: the difference of $" in page and "secure page" in page and 'name="card_number"' not in page
    started = _confirm(client, order, quote, card=False)
    assert started.status_code == 302 and started["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    return quote, started


def test_the_difference_is_paid_on_stripe_and_the_webhook_exchanges_exactly_once(show, buyer, good_card, fake_stripe):  # noqa: F811
    first, second, premium = show
    order = _buy(first, buyer, good_card, 3)
    client = _signed_in(order.patron)
    moving = list(order.tickets.order_by("pk")[:2])
    quote, started = _start(client, order, moving, second, premium, fake_stripe)

    [call] = fake_stripe.requests
    exchange = Exchange.objects.get()
    assert call["params"]["line_items[0][price_data][unit_amount]"] == "3000"  # only the difference
    assert call["params"]["metadata[exchange_id]"] == str(exchange.pk)
    assert call["params"]["metadata[order_token]"] == order.token
    # Pending: the new seats are secured while the patron pays, nothing is valid yet.
    assert exchange.status == Exchange.PENDING
    assert Ticket.objects.filter(order=order, performance=second, status=Ticket.VALID).count() == 0
    assert _sold(first, second) == (3, 2)
    # A double submit opens no second exchange and no second page.
    again = _confirm(client, order, quote, card=False)
    assert again["Location"] == started["Location"] and Exchange.objects.count() == 1 and len(fake_stripe.requests) == 1

    payload = _event(exchange, "event_checkout_session_completed")
    first_delivery, second_delivery = deliver(Client(), payload), deliver(Client(), payload)
    assert (first_delivery.json()["outcome"], second_delivery.json()["outcome"]) == ("exchange_paid", "duplicate")

    exchange.refresh_from_db()
    assert exchange.status == Exchange.SUCCEEDED
    assert Ticket.objects.filter(order=order, performance=second, price_type=premium, status=Ticket.VALID).count() == 2
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in moving]).values_list("status", flat=True)) == {Ticket.EXCHANGED}
    assert _sold(first, second) == (1, 2)
    charges = list(order.payments.filter(kind=Payment.CHARGE).order_by("pk").values_list("amount_cents", "status", "reference"))
    assert charges[-1] == (3000, Payment.SUCCEEDED, "pi_test_exchange_difference") and len(charges) == 2
    assert not order.payments.filter(kind=Payment.REFUND).exists()
    order.refresh_from_db()
    assert order.total_cents == 3 * 2700 + 3000
    outbox.send_due()
    assert [m.to for m in mail.outbox] == [["ada@example.org"]] and "new tickets" in mail.outbox[0].subject.lower()


def test_an_expired_page_changes_nothing(show, buyer, good_card, fake_stripe):  # noqa: F811
    first, second, premium = show
    order = _buy(first, buyer, good_card, 2)
    before = (_tickets(order), _sold(first, second), Order.objects.get(pk=order.pk).total_cents)
    client = _signed_in(order.patron)
    _start(client, order, list(order.tickets.all()), second, premium, fake_stripe)
    exchange = Exchange.objects.get()

    payload = _event(exchange, "event_checkout_session_expired")
    assert deliver(Client(), payload).json()["outcome"] == "exchange_undone"
    assert deliver(Client(), payload).json()["outcome"] == "duplicate"
    exchange.refresh_from_db()
    assert exchange.status == Exchange.FAILED
    assert (_tickets(order), _sold(first, second), Order.objects.get(pk=order.pk).total_cents) == before
    assert not order.payments.filter(status=Payment.SUCCEEDED, amount_cents=exchange.difference_cents).exists()
    # The tickets can be exchanged again.
    assert "Exchange tickets" in client.get("/account/").content.decode()


def test_a_payment_after_the_seats_were_sold_is_refunded_and_the_tickets_stay(show, buyer, good_card, fake_stripe):  # noqa: F811
    first, second, premium = show
    order = _buy(first, buyer, good_card, 2)
    client = _signed_in(order.patron)
    _start(client, order, list(order.tickets.all()), second, premium, fake_stripe)
    exchange = Exchange.objects.get()
    assert deliver(Client(), _event(exchange, "event_checkout_session_expired")).json()["outcome"] == "exchange_undone"
    # Meanwhile the target performance sells out.
    rest = second.capacity - Performance.objects.get(pk=second.pk).tickets_sold
    _buy(second, Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card, rest)
    before = (_tickets(order), _sold(first, second), Order.objects.get(pk=order.pk).total_cents)

    payload = _event(exchange, "event_checkout_session_completed", intent="pi_test_late_difference")
    assert deliver(Client(), payload).json()["outcome"] == "refunded"
    assert deliver(Client(), payload).json()["outcome"] == "duplicate"

    refunds = [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert len(refunds) == 1 and refunds[0]["params"]["payment_intent"] == "pi_test_late_difference"
    assert refunds[0]["params"]["amount"] == "3000"
    assert (_tickets(order), _sold(first, second), Order.objects.get(pk=order.pk).total_cents) == before
    assert list(order.payments.filter(reference="pi_test_late_difference").values_list("kind", "amount_cents")) == [(Payment.CHARGE, 3000)]
    assert order.payments.filter(kind=Payment.REFUND, amount_cents=3000, status=Payment.SUCCEEDED).count() == 1
    assert WebhookEvent.objects.filter(event_id__contains=f"exchange_{exchange.pk}").count() == 2
    outbox.send_due()
    [email] = mail.outbox
    assert email.to == ["ada@example.org"] and "did not go through" in email.subject
    assert "$30.00 you paid was refunded to your card" in email.body and "were not changed" in email.body


def test_a_payment_for_another_amount_is_refunded_and_the_exchange_stays_pending(show, buyer, good_card, fake_stripe):  # noqa: F811
    first, second, premium = show
    order = _buy(first, buyer, good_card, 2)
    client = _signed_in(order.patron)
    _start(client, order, list(order.tickets.all()), second, premium, fake_stripe)
    exchange = Exchange.objects.get()
    payload = _event(exchange, "event_checkout_session_completed", amount=100)
    assert deliver(Client(), payload).json()["outcome"] == "refunded"
    exchange.refresh_from_db()
    assert exchange.status == Exchange.PENDING
    assert Ticket.objects.filter(order=order, status=Ticket.VALID).count() == 0  # still pending, not applied


def test_expiry_after_the_page_was_reopened_is_ignored_for_the_old_page(show, buyer, good_card, fake_stripe):  # noqa: F811
    first, second, premium = show
    order = _buy(first, buyer, good_card, 1)
    client = _signed_in(order.patron)
    _start(client, order, list(order.tickets.all()), second, premium, fake_stripe)
    exchange = Exchange.objects.get()
    event = json.loads(_event(exchange, "event_checkout_session_expired"))
    event["data"]["object"]["id"] = "cs_test_some_earlier_page"
    event["id"] = "evt_test_old_page"
    assert deliver(Client(), json.dumps(event)).json()["outcome"] == "nothing_to_do"
    exchange.refresh_from_db()
    assert exchange.status == Exchange.PENDING


def _age_page(exchange: Exchange) -> str:
    """The exchange's page ended long ago and its webhook never arrived."""
    page = exchange.pending_state["checkout"]
    page["expires_at"] = (timezone.now() - timedelta(hours=1)).isoformat()
    Exchange.objects.filter(pk=exchange.pk).update(pending_state=exchange.pending_state | {"checkout": page})
    return page["session_id"]


def test_reconcile_finishes_a_paid_exchange_page_and_undoes_an_expired_one(show, buyer, good_card, fake_stripe):  # noqa: F811
    from wondertix.payments.services import reconcile_stale_checkouts

    first, second, premium = show
    paid_order = _buy(first, buyer, good_card, 1)
    _start(_signed_in(paid_order.patron), paid_order, list(paid_order.tickets.all()), second, premium, fake_stripe)
    other = _buy(first, Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card, 1)
    _start(_signed_in(other.patron), other, list(other.tickets.all()), second, premium, fake_stripe)
    paid_exchange, gone_exchange = Exchange.objects.order_by("pk")
    paid_session, gone_session = _age_page(paid_exchange), _age_page(gone_exchange)
    complete = recorded("checkout_session_complete")
    complete.update({"id": paid_session, "amount_total": 1500, "payment_intent": "pi_test_reconciled", "metadata": {"order_token": paid_order.token}})
    fake_stripe.reply("GET", f"/v1/checkout/sessions/{paid_session}", complete)
    expired = recorded("checkout_session_expired")
    expired.update({"id": gone_session, "metadata": {"order_token": other.token}})
    fake_stripe.reply("GET", f"/v1/checkout/sessions/{gone_session}", expired)

    assert reconcile_stale_checkouts() == {"exchange_paid": 1, "exchange_undone": 1}
    assert reconcile_stale_checkouts() == {}
    paid_exchange.refresh_from_db()
    gone_exchange.refresh_from_db()
    assert (paid_exchange.status, gone_exchange.status) == (Exchange.SUCCEEDED, Exchange.FAILED)
    assert Ticket.objects.filter(order=paid_order, performance=second, status=Ticket.VALID).count() == 1
    assert Ticket.objects.filter(order=other, performance=first, status=Ticket.VALID).count() == 1
    assert _sold(first, second) == (1, 1)
    # The late webhook of the reconciled payment changes nothing.
    late = _event(paid_exchange, "event_checkout_session_completed", intent="pi_test_reconciled")
    assert deliver(Client(), late).json()["outcome"] == "exchange_paid"
    assert not [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
