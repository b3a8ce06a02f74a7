"""A performance's own price through the redirect payment path (Stripe Checkout, recorded
responses): the pending order and the tickets the webhook issues carry the override."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from test_stripe_payments import deliver, event_for, fake_stripe  # noqa: F401 (fixture)

from wondertix.catalog import performance_prices
from wondertix.sales.models import Order

pytestmark = pytest.mark.django_db


def test_stripe_checkout_charges_and_issues_at_the_performance_price(
    client, make_performance, fake_stripe, django_capture_on_commit_callbacks  # noqa: F811
):
    perf = make_performance(capacity=10)
    admin = User.objects.create_user("house-manager", is_staff=True)
    performance_prices.set_override(perf.pk, perf.adult.pk, {"price_cents": 1500, "fee_cents": 100}, actor=admin)
    client.post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "2"})
    form = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "hold": client.session["storefront.hold"]}
    assert client.post("/checkout/", form).status_code == 302
    order = Order.objects.get()
    assert (order.status, order.subtotal_cents, order.fees_cents, order.total_cents) == (Order.PENDING, 3000, 200, 3200)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event_for("event_checkout_session_completed", order)).status_code == 200
    order.refresh_from_db()
    assert order.status == Order.PAID
    assert sorted(order.tickets.values_list("price_cents", "fee_cents")) == [(1500, 100), (1500, 100)]
