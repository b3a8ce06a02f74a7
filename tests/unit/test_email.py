"""The confirmation email: what a patron reads in their inbox."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from wondertix.sales.models import DiscountCode, Order
from wondertix.sales.notifications import send_order_confirmation
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def test_email_has_codes_times_in_theater_zone_totals_and_link(make_performance, good_card, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    settings.SITE_URL = "https://tickets.example.org/"
    perf = make_performance(capacity=10)
    perf.starts_at = datetime(2030, 3, 9, 19, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    perf.save()
    DiscountCode.objects.create(code="HALF", kind=DiscountCode.PERCENT, value=50)
    buyer = Buyer(first_name="Seán", last_name="O'Brien", email="sean@example.org")
    order = sell(
        [LineRequest(perf.pk, perf.adult.pk, 2)],
        CheckoutDetails(buyer=buyer, payment=good_card, discount_code="half", donation_cents=1000),
    )
    mail.outbox.clear()
    assert send_order_confirmation(order.pk) is True

    message = mail.outbox[0]
    text, html = message.body, message.alternatives[0][0]
    assert message.to == ["sean@example.org"]
    # payments are simulated here, so the subject says TEST first (payments.simulated)
    assert message.subject == f"[TEST — NOT VALID] Your tickets — {settings.THEATER_NAME} order {order.reference}"
    assert "Thank you for your order, Seán!" in text
    assert "Saturday, March 9, 2030 · 7:30 PM" in text  # the theater's local time
    assert "Saturday, March 9, 2030 · 7:30 PM" in html
    for t in order.tickets.all():
        assert f"Adult: ticket code {t.code}" in text
        assert t.code in html
    assert "Discount (HALF): -$25.00" in text
    assert "Donation: $10.00" in text
    assert "Total paid: $39.00" in text  # 2 × $25 + 2 × $2 fees − $25 + $10
    assert f"https://tickets.example.org/orders/{order.token}/" in text
    assert f'href="https://tickets.example.org/orders/{order.token}/"' in html
    assert "&#x27;" not in text and "&amp;" not in text  # plain text is not HTML-escaped
    assert "<script" not in html


def test_no_email_without_an_address(make_performance):
    perf = make_performance()
    order = Order.objects.create(status=Order.PAID, buyer_name="Walk-up", subtotal_cents=0, total_cents=0)
    assert perf and send_order_confirmation(order.pk) is False
    assert mail.outbox == []
