"""A discount code that brings the total to $0: once the server has priced the order at $0
and the patron has seen that total, the checkout behaves like a free order (no card)."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from test_storefront import contact, hold_tickets, hold_token, text_of
from test_stripe_payments import fake_stripe  # noqa: F401 (fixture)

from wondertix.catalog.models import PriceType
from wondertix.payments.models import Payment
from wondertix.sales import inventory
from wondertix.sales.models import DiscountCode, Order

pytestmark = pytest.mark.django_db


def no_card(**overrides):
    return {k: v for k, v in contact(**overrides).items() if not k.startswith("card_")}


@pytest.fixture
def comp_perf(make_performance):
    """Adult tickets without a booking fee, so a 100 % code makes the order free."""
    perf = make_performance(capacity=10)
    PriceType.objects.filter(pk=perf.adult.pk).update(fee_cents=0)
    DiscountCode.objects.create(code="COMPED", kind=DiscountCode.PERCENT, value=100, usage_limit=5)
    DiscountCode.objects.create(code="HALF", kind=DiscountCode.PERCENT, value=50)
    return perf


def test_discount_to_zero_is_confirmed_without_card_fields_then_placed_without_a_charge(
    client, comp_perf, django_capture_on_commit_callbacks
):
    hold_tickets(client, comp_perf, adult=2)
    first = client.get("/checkout/")
    assert 'name="card_number"' in first.content.decode()  # $50.00 to pay before the code

    # The patron types the code and no card: nothing is refused for the missing card; the
    # server prices the order at $0 and asks to confirm it as a free order.
    confirm = client.post("/checkout/", no_card(discount_code="comped", hold=hold_token(client), expected_total="5000"))
    assert confirm.status_code == 200
    html, text = confirm.content.decode(), text_of(confirm)
    assert "Please check your new total: $0.00" in text
    assert "Your order is now free: no payment is needed, and no card." in text
    assert "Your discount covers the whole order: no payment needed." in text
    assert 'name="card_number"' not in html and 'name="card_cvc"' not in html
    assert 'name="donation_amount"' not in html  # like a free order: the gift page is linked
    assert re.search(r'<button[^>]*type="submit"[^>]*>\s*Get my tickets\s*</button>', html)
    assert "Pay $" not in text
    assert 'name="expected_total" value="0"' in html
    assert "please enter your card number" not in text.lower()
    assert Order.objects.count() == 0 and Payment.objects.count() == 0
    assert DiscountCode.objects.get(code="COMPED").times_used == 0

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/checkout/", no_card(discount_code="COMPED", hold=hold_token(client), expected_total="0"))
    assert done.status_code == 302
    order = Order.objects.get()
    assert done["Location"] == f"/orders/{order.token}/"
    assert order.status == Order.PAID and order.total_cents == 0 and order.discount_cents == 5000
    assert order.tickets.count() == 2
    assert Payment.objects.count() == 0
    assert DiscountCode.objects.get(code="COMPED").times_used == 1
    assert inventory.availability_for([comp_perf.pk])[comp_perf.pk].available == 8
    assert len(mail.outbox) == 1


def test_card_typed_before_the_code_made_the_order_free_is_neither_kept_nor_charged(client, comp_perf):
    hold_tickets(client, comp_perf, adult=1)
    confirm = client.post("/checkout/", contact(discount_code="comped", hold=hold_token(client), expected_total="2500"))
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "4242" not in html and 'name="card_number"' not in html
    done = client.post("/checkout/", contact(discount_code="comped", hold=hold_token(client), expected_total="0"))
    assert done.status_code == 302
    assert Order.objects.get().total_cents == 0 and Payment.objects.count() == 0


def test_a_claimed_zero_total_is_checked_by_the_server_and_a_card_is_still_required(client, comp_perf):
    hold_tickets(client, comp_perf, adult=2)
    # The form says $0 but the code only takes half off: nothing is charged or placed; the
    # real total is shown with the card fields.
    confirm = client.post("/checkout/", no_card(discount_code="half", hold=hold_token(client), expected_total="0"))
    assert confirm.status_code == 200
    html, text = confirm.content.decode(), text_of(confirm)
    assert "Please check your new total: $25.00" in text
    assert 'name="card_number"' in html and "Pay $25.00" in text
    assert "now free" not in text
    assert Order.objects.count() == 0
    # Confirming $25.00 without a card is refused next to the card field; seats stay held.
    refused = client.post("/checkout/", no_card(discount_code="half", hold=hold_token(client), expected_total="2500"))
    assert refused.status_code == 422
    assert re.search(r'id="id_card_number_error"><li>Please enter your card number', refused.content.decode())
    assert Order.objects.count() == 0 and Payment.objects.count() == 0
    assert inventory.availability_for([comp_perf.pk])[comp_perf.pk].available == 8


def test_exhausted_zero_code_is_refused_next_to_its_field_and_card_asked_for_again(client, comp_perf):
    DiscountCode.objects.filter(code="COMPED").update(times_used=5)
    hold_tickets(client, comp_perf, adult=1)
    response = client.post("/checkout/", no_card(discount_code="comped", hold=hold_token(client), expected_total="2500"))
    assert response.status_code == 409
    html = response.content.decode()
    assert re.search(r'id="id_discount_code_error"><li>The discount code “COMPED” has been used up', html)
    assert re.search(r'id="id_card_number_error"><li>Please enter your card number', html)
    assert Order.objects.count() == 0


def test_every_problem_is_reported_at_once_but_no_card_is_asked_for_a_free_total(client, comp_perf):
    hold_tickets(client, comp_perf, adult=1)
    response = client.post("/checkout/", no_card(email="nope", discount_code="comped", hold=hold_token(client), expected_total="2500"))
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_email_error"' in html
    assert 'id="id_card_number_error"' not in html and 'name="card_number"' not in html
    paid = client.post("/checkout/", no_card(email="nope", hold=hold_token(client), expected_total="2500"))
    assert 'id="id_card_number_error"' in paid.content.decode()


def test_redirect_provider_issues_a_discounted_free_order_without_the_payment_page(
    client, comp_perf, fake_stripe  # noqa: F811
):
    hold_tickets(client, comp_perf, adult=1)
    form = no_card(discount_code="comped", hold=hold_token(client))
    confirm = client.post("/checkout/", {**form, "expected_total": "2500"})
    assert confirm.status_code == 200
    assert "Get my tickets" in text_of(confirm) and "Continue to payment" not in text_of(confirm)
    done = client.post("/checkout/", {**form, "expected_total": "0"})
    order = Order.objects.get()
    assert done["Location"].endswith(f"/orders/{order.token}/")  # not the payment page
    assert order.status == Order.PAID and order.total_cents == 0
    assert len(fake_stripe.requests) == 0
