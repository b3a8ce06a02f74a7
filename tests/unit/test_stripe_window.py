"""Card payments at the window on a Stripe Terminal reader (server-driven), from recorded
responses and Stripe's simulated reader: the clerk sees the reader, the payment is confirmed by
the webhook (or the clerk's page) exactly once, a declined card sells nothing, canceling gives
the seats back, exchanges charge their difference on the reader, refunds go back to the card."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone
from test_stripe_payments import deliver, fake_stripe  # noqa: F401 (fixture)

from wondertix.catalog.models import PriceType
from wondertix.ops.models import AuditEntry
from wondertix.payments import terminal
from wondertix.payments.models import Payment, TerminalPayment, WebhookEvent
from wondertix.sales import inventory
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Exchange, Order, Ticket
from wondertix.sales.refunds import RefundRequest, TicketRefund, refund_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(fake_stripe):  # noqa: F811
    return fake_stripe.add_reader("tmr_window_one", "Window 1")


@pytest.fixture
def window(clerk):
    client = Client()
    client.force_login(clerk)
    return client


def available(perf) -> int:
    return inventory.availability_for([perf.pk])[perf.pk].available


def sell_on_reader(window, perf, reader, quantity: int = 2) -> TerminalPayment:
    page = window.get(f"/staff/pos/{perf.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Card reader" in html and "Window 1" in html and 'name="card_number"' not in html
    data = {f"qty_{perf.adult.pk}": str(quantity), "payment_method": "card", "reader": reader["id"],
            "idempotency_key": page.context["form"].initial["idempotency_key"]}
    response = window.post(f"/staff/pos/{perf.pk}/", data)
    tp = TerminalPayment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/pos/card/{tp.pk}/"
    # A second click (the same form) sends nothing new to the reader.
    assert window.post(f"/staff/pos/{perf.pk}/", data)["Location"] == response["Location"]
    assert TerminalPayment.objects.count() == 1
    return tp


def deliver_events(client, fake, *, twice: bool = True) -> list[str]:
    outcomes = []
    for event in fake.events:
        payload = json.dumps(event)
        outcomes.append(deliver(client, payload).json()["outcome"])
        if twice:
            outcomes.append(deliver(client, payload).json()["outcome"])
    fake.events.clear()
    return outcomes


def test_a_window_sale_on_the_reader_is_paid_by_the_webhook_exactly_once(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    order = tp.order
    assert (order.status, order.channel, order.total_cents, order.tickets.count()) == (Order.PENDING, Order.BOX_OFFICE, 5000, 0)
    assert available(perf) == 8  # held while the patron pays
    intent = fake_stripe.intents[tp.payment_intent]
    assert (intent["amount"], intent["metadata"]["order_token"], intent["metadata"]["wondertix_flow"]) == (5000, order.token, "terminal")
    create = next(r for r in fake_stripe.requests if r["path"] == "/v1/payment_intents")
    assert create["params"]["allowed_payment_method_types[0]"] == "card_present" and create["idempotency_key"]

    page = window.get(f"/staff/pos/card/{tp.pk}/").content.decode()
    assert "Waiting for the card on the reader" in page and "Cancel card payment" in page
    assert "Present an approved test card" in page  # Stripe test mode: the simulated reader

    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    assert fake_stripe.requests[-1]["path"] == f"/v1/test_helpers/terminal/readers/{reader['id']}/present_payment_method"
    assert deliver_events(client, fake_stripe) == ["order_paid", "duplicate"]
    order.refresh_from_db()
    assert order.status == Order.PAID and order.tickets.count() == 2 and available(perf) == 8
    [payment] = order.payments.all()
    assert (payment.provider, payment.reference, payment.amount_cents) == ("stripe", tp.payment_intent, 5000)
    assert window.get(f"/staff/pos/card/{tp.pk}/")["Location"] == f"/staff/pos/orders/{order.pk}/"
    assert AuditEntry.objects.filter(action="pos.sale", object_id=str(order.pk)).exists()
    assert '<dd id="paid-by">Card</dd>' in window.get(f"/staff/pos/orders/{order.pk}/").content.decode()

    # Refunding a ticket of the window sale goes back to the card (the PaymentIntent).
    ticket = order.tickets.first()
    refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], reason="cannot come"), idempotency_key="w-1")
    [call] = [r["params"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert (call["payment_intent"], call["amount"]) == (tp.payment_intent, "2500")
    assert available(perf) == 9


def test_the_clerks_page_confirms_a_payment_whose_webhook_is_late_and_the_webhook_then_changes_nothing(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    # Stripe says approved: the page waits a little for the webhook before confirming itself.
    assert "Approved: confirming" in window.get(f"/staff/pos/card/{tp.pk}/").content.decode()
    assert Ticket.objects.count() == 0
    TerminalPayment.objects.filter(pk=tp.pk).update(succeeded_seen_at=timezone.now() - terminal.WEBHOOK_GRACE)
    assert window.get(f"/staff/pos/card/{tp.pk}/")["Location"] == f"/staff/pos/orders/{tp.order_id}/"
    assert Ticket.objects.count() == 2
    assert deliver_events(client, fake_stripe) == ["order_paid", "duplicate"]  # accounted already: no-op
    assert Ticket.objects.count() == 2 and Payment.objects.count() == 1


def test_a_declined_card_sells_nothing_and_canceling_gives_the_seats_back(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "decline"})
    assert deliver_events(client, fake_stripe) == ["card_declined", "duplicate"]
    page = window.get(f"/staff/pos/card/{tp.pk}/").content.decode()
    assert "Declined" in page and "Your card was declined." in page and "Try the reader again" in page
    assert Ticket.objects.count() == 0 and Payment.objects.count() == 0 and Order.objects.get().status == Order.PENDING

    response = window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "cancel"})
    assert response.status_code == 302
    tp.refresh_from_db()
    assert tp.status == TerminalPayment.CANCELED and Order.objects.get().status == Order.CANCELED
    assert available(perf) == 10 and Ticket.objects.count() == 0 and Payment.objects.count() == 0
    assert fake_stripe.intents[tp.payment_intent]["status"] == "canceled"
    # The same form sent again (the back button) sells nothing and says why.
    again = window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "2", "payment_method": "card", "reader": reader["id"],
                                                     "idempotency_key": tp.order.idempotency_key}, follow=True)
    assert "was canceled; nothing was sold" in again.content.decode() and Order.objects.count() == 1 and available(perf) == 10


def test_another_card_after_a_decline_completes_the_same_sale(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "decline"})
    window.get(f"/staff/pos/card/{tp.pk}/")  # the page sees the reader's decline
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "retry"})
    tp.refresh_from_db()
    assert tp.status == TerminalPayment.WAITING
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    assert deliver_events(client, fake_stripe, twice=False) == ["card_declined", "order_paid"]
    assert Order.objects.get().status == Order.PAID and Ticket.objects.count() == 2


def test_canceling_after_the_card_went_through_keeps_the_sale(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    fake_stripe._present(fake_stripe.readers[reader["id"]], "4242424242424242")  # tapped just before cancel
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "cancel"})
    assert Order.objects.get().status == Order.PAID and Ticket.objects.count() == 2
    assert deliver_events(client, fake_stripe) == ["order_paid", "duplicate"]
    assert Ticket.objects.count() == 2


def test_a_payment_for_a_sale_already_canceled_is_refunded_to_the_card(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    tp = sell_on_reader(window, perf, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "cancel"})
    # Stripe reports a success anyway (a race on its side): the money goes back, nothing is sold.
    intent = dict(fake_stripe.intents[tp.payment_intent], status="succeeded", amount_received=5000)
    fake_stripe.events.append(fake_stripe._event("payment_intent.succeeded", intent))
    assert deliver_events(client, fake_stripe) == ["refunded", "duplicate"]
    assert Ticket.objects.count() == 0 and available(perf) == 10
    assert [r["params"]["payment_intent"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"] == [tp.payment_intent]


def test_stripe_unreachable_leaves_the_sale_pending_and_retry_sends_it(window, make_performance, fake_stripe, reader):  # noqa: F811
    perf = make_performance(capacity=10)
    page = window.get(f"/staff/pos/{perf.pk}/")
    fake_stripe.unreachable = True
    window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "1", "payment_method": "card", "reader": reader["id"],
                                            "idempotency_key": page.context["form"].initial["idempotency_key"]})
    tp = TerminalPayment.objects.get()
    assert tp.payment_intent == "" and "could not be reached" in window.get(f"/staff/pos/card/{tp.pk}/").content.decode()
    fake_stripe.unreachable = False
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "retry"})
    tp.refresh_from_db()
    assert tp.payment_intent.startswith("pi_test_") and tp.status == TerminalPayment.WAITING and tp.message == ""


def test_an_exchange_difference_is_charged_on_the_reader(window, client, make_performance, fake_stripe, reader, clerk):  # noqa: F811
    cheap = make_performance(capacity=10)
    dear = make_performance(capacity=10)
    PriceType.objects.filter(pk=dear.adult.pk).update(price_cents=4000)
    tp = sell_on_reader(window, cheap, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    deliver_events(client, fake_stripe)
    order = Order.objects.get()
    moving = list(order.tickets.values_list("pk", flat=True))

    exchange = exchange_tickets(order.pk, ExchangeRequest(moving, dear.pk, method="card", reader_id=reader["id"]), idempotency_key="ex-r", actor=clerk)
    assert exchange.status == Exchange.PENDING
    ex_tp = TerminalPayment.objects.get(exchange=exchange)
    assert ex_tp.amount_cents == 2 * 1500 and fake_stripe.intents[ex_tp.payment_intent]["metadata"]["exchange_id"] == str(exchange.pk)
    window.post(f"/staff/pos/card/{ex_tp.pk}/act/", {"action": "approve"})
    assert deliver_events(client, fake_stripe) == ["exchange_paid", "duplicate"]
    exchange.refresh_from_db()
    assert exchange.status == Exchange.SUCCEEDED
    assert Ticket.objects.filter(order=order, performance=dear, status=Ticket.VALID).count() == 2
    charge = Payment.objects.get(pk=exchange.charge_id)
    assert (charge.status, charge.reference) == (Payment.SUCCEEDED, ex_tp.payment_intent)
    assert available(cheap) == 10 and available(dear) == 8


def test_a_declined_exchange_difference_is_undone_when_canceled(window, client, make_performance, fake_stripe, reader, clerk):  # noqa: F811
    cheap = make_performance(capacity=10)
    dear = make_performance(capacity=10)
    PriceType.objects.filter(pk=dear.adult.pk).update(price_cents=4000)
    tp = sell_on_reader(window, cheap, reader)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    deliver_events(client, fake_stripe)
    order = Order.objects.get()
    moving = list(order.tickets.values_list("pk", flat=True))
    exchange = exchange_tickets(order.pk, ExchangeRequest(moving, dear.pk, method="card", reader_id=reader["id"]), idempotency_key="ex-d", actor=clerk)
    ex_tp = TerminalPayment.objects.get(exchange=exchange)
    window.post(f"/staff/pos/card/{ex_tp.pk}/act/", {"action": "decline"})
    deliver_events(client, fake_stripe)
    window.post(f"/staff/pos/card/{ex_tp.pk}/act/", {"action": "cancel"})
    exchange.refresh_from_db()
    assert exchange.status == Exchange.FAILED
    assert set(Ticket.objects.filter(pk__in=moving).values_list("status", flat=True)) == {Ticket.VALID}
    assert available(cheap) == 8 and available(dear) == 10
    assert WebhookEvent.objects.filter(event_type="payment_intent.payment_failed").count() == 1


def test_the_exchange_page_offers_the_reader_and_sends_the_clerk_to_it(window, client, make_performance, fake_stripe, reader):  # noqa: F811
    cheap = make_performance(capacity=10)
    dear = make_performance(capacity=10)
    PriceType.objects.filter(pk=dear.adult.pk).update(price_cents=4000)
    tp = sell_on_reader(window, cheap, reader, quantity=1)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    deliver_events(client, fake_stripe)
    order = Order.objects.get()
    form = {"to_performance": str(dear.pk), "ticket": [str(order.tickets.get().pk)]}
    preview = window.post(f"/staff/sales/orders/{order.pk}/exchange/", form).content.decode()
    assert "Card reader" in preview and "Window 1" in preview and 'name="card_number"' not in preview
    key = re.search(r'name="key" value="([^"]+)"', preview).group(1)
    response = window.post(f"/staff/sales/orders/{order.pk}/exchange/", form | {"step": "confirm", "method": "card", "reader": reader["id"], "key": key})
    ex_tp = TerminalPayment.objects.get(exchange__isnull=False)
    assert response["Location"] == f"/staff/pos/card/{ex_tp.pk}/" and ex_tp.amount_cents == 1500
    window.post(f"/staff/pos/card/{ex_tp.pk}/act/", {"action": "approve"})
    deliver_events(client, fake_stripe)
    assert window.get(f"/staff/pos/card/{ex_tp.pk}/")["Location"] == f"/staff/sales/orders/{order.pk}/"
    assert Ticket.objects.filter(order=order, performance=dear, status=Ticket.VALID).count() == 1


def test_a_gift_and_a_subscription_at_the_window_are_paid_on_the_reader(window, client, fake_stripe, reader):  # noqa: F811
    from datetime import timedelta

    from wondertix.catalog.models import Season
    from wondertix.patrons import subscriptions as subs
    from wondertix.patrons.models import Donation, Patron, Subscription

    patron = Patron.objects.create(first_name="Grace", last_name="Hopper", email="grace@example.org")
    response = window.post(f"/staff/contacts/{patron.pk}/gift/", {"amount": "40.00", "method": "card", "key": "gift-key-1", "reader": reader["id"]})
    tp = TerminalPayment.objects.get()
    assert response["Location"] == f"/staff/pos/card/{tp.pk}/" and tp.amount_cents == 4000 and tp.order.status == Order.PENDING
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    assert deliver_events(client, fake_stripe) == ["order_paid", "duplicate"]
    assert Donation.objects.get().amount_cents == 4000
    assert window.get(f"/staff/pos/card/{tp.pk}/")["Location"] == f"/staff/contacts/{patron.pk}/"

    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=300))
    st = subs.save_type(subs.TypeInput(season_id=season.pk, name="Flex 4", price_cents=8000, tickets_included=4))
    response = window.post("/staff/contacts/subscriptions/sell/", {"subscription_type": st.pk, "contact": patron.pk, "payment": "card", "key": "sub-key-1"})
    sub_tp = TerminalPayment.objects.exclude(pk=tp.pk).get()
    assert response["Location"] == f"/staff/pos/card/{sub_tp.pk}/" and sub_tp.reader_id == reader["id"]  # the reader online
    window.post(f"/staff/pos/card/{sub_tp.pk}/act/", {"action": "approve"})
    assert deliver_events(client, fake_stripe) == ["order_paid", "duplicate"]
    sub = Subscription.objects.get()
    assert (sub.patron_id, sub.remaining, sub.order.channel) == (patron.pk, 4, Order.BOX_OFFICE)


def test_reconciliation_cancels_an_abandoned_reader_payment_and_confirms_a_paid_one(window, make_performance, fake_stripe, reader):  # noqa: F811
    from datetime import timedelta

    perf = make_performance(capacity=10)
    abandoned = sell_on_reader(window, perf, reader, quantity=1)
    page = window.get(f"/staff/pos/{perf.pk}/")
    window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "2", "payment_method": "card", "reader": reader["id"],
                                            "idempotency_key": page.context["form"].initial["idempotency_key"]})
    paid = TerminalPayment.objects.exclude(pk=abandoned.pk).get()
    fake_stripe._present(fake_stripe.readers[reader["id"]], "4242424242424242")  # its webhook never arrives
    assert terminal.reconcile() == {}  # too recent: the clerk may still be at it
    TerminalPayment.objects.update(created_at=timezone.now() - timedelta(minutes=terminal.MINUTES + 6))
    assert terminal.reconcile() == {"terminal_canceled": 1, "terminal_succeeded": 1}
    abandoned.refresh_from_db()
    paid.refresh_from_db()
    assert abandoned.order.status == Order.CANCELED and paid.order.status == Order.PAID
    assert Ticket.objects.count() == 2 and available(perf) == 8


def test_the_staff_api_exchange_takes_a_card_difference_on_a_reader(window, client, make_performance, fake_stripe, reader, clerk):  # noqa: F811
    from wondertix.ops import tokens

    cheap = make_performance(capacity=10)
    dear = make_performance(capacity=10)
    PriceType.objects.filter(pk=dear.adult.pk).update(price_cents=4000)
    tp = sell_on_reader(window, cheap, reader, quantity=1)
    window.post(f"/staff/pos/card/{tp.pk}/act/", {"action": "approve"})
    deliver_events(client, fake_stripe)
    order = Order.objects.get()
    body = json.dumps({"ticket_ids": [order.tickets.get().pk], "to_performance_id": dear.pk, "method": "card", "reader_id": reader["id"]})
    headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}", "HTTP_IDEMPOTENCY_KEY": "api-exchange-reader-1"}
    response = Client().post(f"/api/v1/staff/sales/orders/{order.pk}/exchanges", body, content_type="application/json", **headers)
    assert response.status_code == 202, response.content
    ex_tp = TerminalPayment.objects.get(exchange__isnull=False)
    assert response.json()["status"] == "pending" and response.json()["card_payment_id"] == ex_tp.pk and ex_tp.amount_cents == 1500
    window.post(f"/staff/pos/card/{ex_tp.pk}/act/", {"action": "approve"})
    assert deliver_events(client, fake_stripe) == ["exchange_paid", "duplicate"]
    assert Exchange.objects.get().status == Exchange.SUCCEEDED
