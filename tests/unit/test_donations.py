"""Stand-alone gifts: the donation page and the donate() service."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from wondertix.ops.models import AuditEntry
from wondertix.patrons.donations import donate
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Order

pytestmark = pytest.mark.django_db


def gift_form(client, **overrides):
    page = client.get("/donate/").content.decode()
    submission = re.search(r'name="submission" value="([^"]+)"', page).group(1)
    data = {
        "amount": "50",
        "comment": "For the spring musical",
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.org",
        "card_number": "4242424242424242",
        "card_expiry": "11/31",
        "card_cvc": "321",
        "submission": submission,
    }
    data.update(overrides)
    return data


def test_donation_page_records_gift_as_an_order_with_payment_audit_and_receipt(client, django_capture_on_commit_callbacks):
    data = gift_form(client, anonymous="on")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/donate/", data)
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.token}/"
    assert order.status == Order.PAID
    assert order.tickets.count() == 0
    assert order.donation_cents == order.total_cents == 5000
    gift = Donation.objects.get()
    assert (gift.amount_cents, gift.anonymous, gift.comment, gift.order_id) == (5000, True, "For the spring musical", order.pk)
    assert gift.patron.email == "grace@example.org"
    assert Payment.objects.get().amount_cents == 5000
    assert AuditEntry.objects.filter(action="donation.received", object_id=str(gift.pk)).count() == 1

    page = client.get(response["Location"]).content.decode()
    assert "Thank you for your gift" in page
    assert "$50.00" in page
    assert len(mail.outbox) == 1
    assert "Thank you for your gift" in mail.outbox[0].subject
    assert "$50.00" in mail.outbox[0].body
    assert f"/orders/{order.token}/" in mail.outbox[0].body


def test_donation_double_submit_gives_one_gift(client):
    data = gift_form(client)
    first = client.post("/donate/", data)
    second = client.post("/donate/", data)
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1 and Donation.objects.count() == 1 and Payment.objects.count() == 1


def test_declined_gift_writes_nothing_and_says_why(client):
    response = client.post("/donate/", gift_form(client, card_number="4000 0000 0000 0002"))
    assert response.status_code == 402
    assert "Your card was declined" in response.content.decode()
    assert Order.objects.count() == 0 and Donation.objects.count() == 0 and Patron.objects.count() == 0
    assert Payment.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_donation_form_errors_are_tied_to_their_fields(client):
    response = client.post("/donate/", gift_form(client, amount="ten dollars", email="nope"))
    assert response.status_code == 422
    html = response.content.decode()
    assert re.search(r'id="id_amount_error"><li>Gift amount: “ten dollars” is not an amount of money', html)
    assert re.search(r'id="id_email_error"><li>Please enter a valid email address', html)
    assert Order.objects.count() == 0
    small = client.post("/donate/", gift_form(client, amount="0.50"))
    assert "The smallest gift we can take online is $1.00." in small.content.decode()


def test_donate_service_refuses_bad_amounts_before_writing(buyer):
    card = PaymentDetails(card_number="4242424242424242", exp_month=1, exp_year=2031, cvc="123")
    for cents in (0, 50, -100):
        with pytest.raises(SaleError) as exc:
            donate(cents, buyer, payment=card)
        assert exc.value.code == "invalid_donation"
    assert Order.objects.count() == 0 and Patron.objects.count() == 0
    order = donate(2500, buyer, payment=card, idempotency_key="k1")
    assert donate(2500, buyer, payment=card, idempotency_key="k1").pk == order.pk
    with pytest.raises(SaleError) as exc:
        donate(9900, buyer, payment=card, idempotency_key="k1")
    assert exc.value.code == "idempotency_key_reused"
    assert Order.objects.count() == 1
