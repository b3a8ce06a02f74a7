"""Online gifts and subscriptions with Stripe: the same pending order + exactly-once webhook as
tickets (recorded Stripe responses, signed webhooks, each delivered twice); refunds go back to
the card."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone
from test_stripe_payments import deliver, fake_stripe  # noqa: F401 (fixture)
from tests.support.recorded_stripe import recorded

from wondertix.catalog.models import Season
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Donation, Subscription
from wondertix.payments.models import CheckoutSession, Payment, WebhookEvent
from wondertix.sales.models import Order
from wondertix.sales.refunds import DonationRefund, RefundRequest, refund_order

pytestmark = pytest.mark.django_db


def paid_event(order: Order, name: str = "event_checkout_session_completed", **changes) -> str:
    """What Stripe sends about this order's page (its session id, token and total)."""
    event = recorded(name)
    session = event["data"]["object"]
    checkout = CheckoutSession.objects.get(order=order)
    session.update({"id": checkout.session_id, "client_reference_id": order.token, "amount_total": order.total_cents, "amount_subtotal": order.total_cents})
    session["metadata"] = {"order_token": order.token, "order_reference": order.reference}
    event["id"] = f"evt_test_{name}_{order.token}"  # one event per order, as Stripe sends
    session["payment_intent"] = intent_of(order)
    session.update(changes)
    return json.dumps(event)


def intent_of(order: Order) -> str:
    return f"pi_test_order_{order.pk}"


def submission(client, url: str) -> str:
    return re.search(r'name="submission" value="([^"]+)"', client.get(url).content.decode()).group(1)


def gift(client, **overrides) -> dict[str, str]:
    return {"amount": "25", "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.org",
            "submission": submission(client, "/donate/")} | overrides


def test_donate_page_offers_the_payment_page_not_card_fields(client, fake_stripe):  # noqa: F811
    page = client.get("/donate/").content.decode()
    assert "not available" not in page
    assert 'name="card_number"' not in page and "secure page" in page


def test_a_gift_alone_is_paid_by_the_webhook_exactly_once(client, fake_stripe, django_capture_on_commit_callbacks):  # noqa: F811
    data = gift(client)
    response = client.post("/donate/", data)
    assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    order = Order.objects.get()
    assert (order.status, order.total_cents, order.donation_cents, order.tickets.count()) == (Order.PENDING, 2500, 2500, 0)
    assert not Donation.objects.exists() and not Payment.objects.exists()
    [call] = fake_stripe.requests
    assert call["params"]["line_items[0][price_data][unit_amount]"] == "2500"
    assert call["params"]["cancel_url"].endswith("/donate/")
    # A double submit opens no second order and no second page.
    assert client.post("/donate/", data)["Location"] == response["Location"]
    assert Order.objects.count() == 1 and len(fake_stripe.requests) == 1

    payload = paid_event(order)
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, payload)
    second = deliver(client, payload)
    assert first.json()["outcome"] == "order_paid" and second.json()["outcome"] == "duplicate"
    assert [m.subject for m in mail.outbox] == [f"Thank you for your gift — {settings.THEATER_NAME} receipt {order.reference}"]
    order.refresh_from_db()
    assert order.status == Order.PAID
    [donation] = Donation.objects.all()
    assert (donation.order_id, donation.amount_cents) == (order.pk, 2500)
    [payment] = Payment.objects.all()
    assert (payment.provider, payment.reference, payment.amount_cents) == ("stripe", intent_of(order), 2500)
    assert WebhookEvent.objects.count() == 1
    assert "Awaiting payment confirmation" not in client.get(f"/orders/{order.token}/").content.decode()


def test_an_abandoned_gift_page_expires_the_pending_order(client, fake_stripe):  # noqa: F811
    client.post("/donate/", gift(client))
    order = Order.objects.get()
    assert deliver(client, paid_event(order, "event_checkout_session_expired")).json()["outcome"] == "order_canceled"
    order.refresh_from_db()
    assert order.status == Order.CANCELED and not Donation.objects.exists() and not Payment.objects.exists()


def test_a_gift_below_the_smallest_online_gift_writes_nothing(client, fake_stripe):  # noqa: F811
    response = client.post("/donate/", gift(client, amount="0.50"))
    assert response.status_code == 422
    assert not Order.objects.exists() and fake_stripe.requests == []


@pytest.fixture
def package(db):
    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=300))
    clerk = User.objects.create_user("subs-admin", password="x" * 12, is_staff=True)
    return subs.save_type(subs.TypeInput(season_id=season.pk, name="Flex 4", price_cents=8000, tickets_included=4, limit_sold=1), actor=clerk)


def subscribe(client, package, **overrides) -> dict[str, str]:
    return {"subscription_type": str(package.pk), "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
            "submission": submission(client, "/subscriptions/")} | overrides


def test_a_subscription_bought_online_is_issued_by_the_webhook_exactly_once(client, fake_stripe, package, django_capture_on_commit_callbacks):  # noqa: F811
    page = client.get("/subscriptions/").content.decode()
    assert "cannot be bought online" not in page and 'name="card_number"' not in page
    response = client.post("/subscriptions/", subscribe(client, package))
    assert response.status_code == 302 and response["Location"].startswith("https://checkout.stripe.com/")
    order = Order.objects.get()
    assert (order.status, order.total_cents, order.subtotal_cents) == (Order.PENDING, 8000, 8000)
    assert not Subscription.objects.exists()
    assert "issued as soon as the payment is confirmed" in client.get(f"/orders/{order.token}/").content.decode()

    payload = paid_event(order)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, payload).json()["outcome"] == "order_paid"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    [email] = mail.outbox  # the subscription's own email, not a gift receipt
    assert "gift" not in email.subject.lower() and email.to == ["ada@example.org"]
    [sub] = Subscription.objects.all()
    assert (sub.order_id, sub.remaining, sub.price_cents) == (order.pk, 4, 8000)
    page = client.get(f"/orders/{order.token}/").content.decode()
    assert "Your season subscription" in page and "Flex 4" in page and "Thank you for your gift" not in page
    assert Payment.objects.get().amount_cents == 8000


def test_a_subscription_sold_out_before_its_payment_arrived_is_refunded_to_the_card(client, fake_stripe, package):  # noqa: F811
    client.post("/subscriptions/", subscribe(client, package))
    client.post("/subscriptions/", subscribe(client, package, email="bob@example.org"))
    first, second = Order.objects.order_by("pk")
    assert deliver(client, paid_event(first)).json()["outcome"] == "order_paid"
    # The limit (1) is reached: the second payment cannot become a subscription.
    assert deliver(client, paid_event(second)).json()["outcome"] == "refunded"
    second.refresh_from_db()
    assert second.status == Order.CANCELED and Subscription.objects.count() == 1
    refund_call = [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert len(refund_call) == 1 and refund_call[0]["params"]["amount"] == "8000"


def test_refunds_of_a_gift_and_a_subscription_go_back_to_the_card(client, fake_stripe, package):  # noqa: F811
    client.post("/donate/", gift(client))
    client.post("/subscriptions/", subscribe(client, package))
    donated, subscribed = Order.objects.order_by("pk")
    for order in (donated, subscribed):
        deliver(client, paid_event(order))

    gift_refund = refund_order(donated.pk, RefundRequest(donations=[DonationRefund(Donation.objects.get().pk)], reason="asked"), idempotency_key="g-1")
    sub_refund = refund_order(subscribed.pk, RefundRequest(subscriptions=[Subscription.objects.get().pk], reason="moving away"), idempotency_key="s-1")

    calls = [r["params"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert [(c["payment_intent"], c["amount"]) for c in calls] == [(intent_of(donated), "2500"), (intent_of(subscribed), "8000")]
    assert gift_refund.status == sub_refund.status == "succeeded"
    donated.refresh_from_db()
    subscribed.refresh_from_db()
    assert donated.status == subscribed.status == Order.REFUNDED
    assert Subscription.objects.get().status == Subscription.REFUNDED


def test_the_donate_service_with_stripe_writes_a_pending_gift_with_its_payment_page(fake_stripe, buyer):  # noqa: F811
    from wondertix.patrons.donations import donate
    from wondertix.payments.providers.base import PaymentDetails

    order = donate(3000, buyer, payment=PaymentDetails(), idempotency_key="service-gift-1")
    assert (order.status, order.total_cents) == (Order.PENDING, 3000)
    assert order.checkout_session.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert donate(3000, buyer, payment=PaymentDetails(), idempotency_key="service-gift-1").pk == order.pk
    assert Order.objects.count() == 1 and len(fake_stripe.requests) == 1
