"""The one-call order API with Stripe: the order is written pending and the answer carries the
Stripe page to pay on (recorded responses); the webhook completes it, a retry changes nothing."""

from __future__ import annotations

import json

import pytest
from test_stripe_gifts_subscriptions import paid_event
from test_stripe_payments import deliver, fake_stripe  # noqa: F401 (fixture)

from wondertix.sales import inventory
from wondertix.sales.models import Order, Ticket

pytestmark = pytest.mark.django_db


def order_body(perf) -> dict:
    return {"lines": [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": 2}],
            "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}}


def test_an_api_order_is_pending_with_its_payment_page_until_the_webhook(client, make_performance, fake_stripe):  # noqa: F811
    perf = make_performance(capacity=10)
    headers = {"Idempotency-Key": "api-stripe-order-1"}
    response = client.post("/api/v1/orders", data=json.dumps(order_body(perf)), content_type="application/json", headers=headers)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["total_cents"] == 5400 and body["tickets"] == []
    assert body["payment_url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert inventory.availability_for([perf.pk])[perf.pk].available == 8  # held while the patron pays
    again = client.post("/api/v1/orders", data=json.dumps(order_body(perf)), content_type="application/json", headers=headers)
    assert again.status_code == 202 and again.json()["token"] == body["token"] and again.json()["payment_url"] == body["payment_url"]
    assert Order.objects.count() == 1 and len(fake_stripe.requests) == 1

    order = Order.objects.get()
    assert deliver(client, paid_event(order)).json()["outcome"] == "order_paid"
    paid = client.get(f"/api/v1/orders/{order.token}").json()
    assert paid["status"] == "paid" and len(paid["tickets"]) == 2 and Ticket.objects.count() == 2
