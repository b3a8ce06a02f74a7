"""The storefront with a redirect payment provider (Stripe Checkout, from recorded responses):
the patron is sent to the payment page, the order waits for the provider, then shows tickets."""

from __future__ import annotations

import pytest
from django.core import mail
from test_stripe_payments import deliver, event_for, fake_stripe  # noqa: F401 (fixture)

from wondertix.sales import inventory
from wondertix.sales.models import Order, Ticket

pytestmark = pytest.mark.django_db


def test_checkout_sends_patron_to_payment_page_and_order_waits_for_confirmation(
    client, make_performance, fake_stripe, django_capture_on_commit_callbacks  # noqa: F811
):
    perf = make_performance(capacity=10)
    client.post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "2"})
    page = client.get("/checkout/").content.decode()
    assert 'name="card_number"' not in page
    assert "Continue to payment" in page

    form = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "hold": client.session["storefront.hold"]}
    response = client.post("/checkout/", form)
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    order = Order.objects.get()
    assert order.status == Order.PENDING and Ticket.objects.count() == 0
    assert inventory.availability_for([perf.pk])[perf.pk].available == 8  # still held while paying

    waiting = client.get(f"/orders/{order.token}/").content.decode()
    assert "Awaiting payment confirmation" in waiting
    assert "ticket__qr" not in waiting

    # Submitting again (came back from the payment page) opens no second order or page.
    again = client.post("/checkout/", form)
    assert again["Location"] == response["Location"]
    assert Order.objects.count() == 1 and len(fake_stripe.requests) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, event_for("event_checkout_session_completed", order)).status_code == 200
    order.refresh_from_db()
    assert order.status == Order.PAID
    paid = client.get(f"/orders/{order.token}/").content.decode()
    assert "Awaiting payment confirmation" not in paid
    assert paid.count('class="ticket__qr"') == 2
    assert len(mail.outbox) == 1
    assert client.get("/cart/")["Location"] == f"/orders/{order.token}/"
