"""Every change a patron should hear about sends one email, plain text + HTML, through the
outbox: a refund, an exchange, a subscription sale, a gift's receipt (wording, legal name and
tax id from settings). Staff (admins) preview each template with sample data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.test import Client
from django.utils import timezone
from tests.support import flaky_mail

from wondertix.catalog.models import PriceType, Season
from wondertix.ops import outbox
from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.donations import donate
from wondertix.sales.email_previews import PREVIEWS
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Order
from wondertix.sales.refunds import RefundRequest, TicketRefund, refund_order
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what a commit triggers (the first try of each email)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _parts(message) -> tuple[str, str]:
    (html, kind), = message.alternatives
    assert kind == "text/html" and html.lstrip().lower().startswith("<!doctype html>")
    return message.body, html


def _buy(perf, buyer, card, n=2, **details):
    return sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card, **details))


def test_a_refund_emails_the_buyer_once_with_what_went_back_where(make_performance, buyer, good_card, clerk, on_commit):
    order = _buy(make_performance(), buyer, good_card)
    ticket = order.tickets.first()
    with on_commit():
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], include_fees=True), idempotency_key="r1", actor=clerk)
    with on_commit():  # the same request again (a double click): no second refund, no second email
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], include_fees=True), idempotency_key="r1", actor=clerk)
    (message,) = mail.outbox
    assert message.to == ["ada@example.org"]
    assert message.subject.endswith(f"Your refund of $27.00 — WonderTix Community Theater order {order.reference}")
    text, html = _parts(message)
    for part in (text, html):
        assert "We have refunded $27.00" in part and ticket.code in part and "back to the card you paid with" in part
    row = OutboxEmail.objects.get(kind=OutboxEmail.REFUND)
    assert (row.status, row.order_id, row.refund.order_id) == (OutboxEmail.SENT, order.pk, order.pk)


def test_an_exchange_emails_the_new_ticket_codes(make_performance, buyer, good_card, clerk, on_commit):
    perf, later = make_performance(), make_performance(starts_in=timedelta(days=14))
    order = _buy(perf, buyer, good_card, n=1)
    PriceType.objects.filter(pk=later.adult.pk).update(price_cents=3000)
    with on_commit():
        exchange = exchange_tickets(order.pk, ExchangeRequest([order.tickets.get().pk], later.pk, method="cash"), idempotency_key="x1", actor=clerk)
    new_code = exchange.items.get().new_ticket.code
    (message,) = mail.outbox
    text, html = _parts(message)
    assert message.subject.startswith(f"[TEST — NOT VALID] Your new tickets: {later.event.title}")
    for part in (text, html):
        assert new_code in part and "You paid the difference of $5.00." in part


def test_a_subscription_sale_gets_its_own_email(make_performance, buyer, good_card, clerk, on_commit):
    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today, ends_on=today + timedelta(days=300))
    st = subs.save_type(subs.TypeInput(season_id=season.pk, name="Flex 4", price_cents=8000, tickets_included=4), actor=clerk)
    with on_commit():
        sub = subs.sell_subscription(st.pk, buyer, payment=good_card, idempotency_key="s1")
    (message,) = mail.outbox
    text, html = _parts(message)
    assert message.subject.endswith(f"Your Flex 4 — WonderTix Community Theater order {sub.order.reference}")
    for part in (text, html):
        assert "Flex 4" in part and "2026/27" in part and "4 tickets" in part and "$80.00" in part
    assert "gift" not in text.lower()


def test_a_gift_receipt_says_what_settings_say(buyer, good_card, settings, on_commit):
    settings.THEATER_LEGAL_NAME = "WonderTix Players, Inc."
    settings.THEATER_TAX_ID = "12-3456789"
    settings.DONATION_TAX_STATEMENT = "No goods or services were provided. Deductible as the law allows."
    with on_commit():
        order = donate(2500, buyer, payment=good_card, idempotency_key="g1")
    (message,) = mail.outbox
    text, html = _parts(message)
    assert message.subject.endswith(f"Thank you for your gift — WonderTix Community Theater receipt {order.reference}")
    for part in (text, html):
        assert "$25.00" in part and "WonderTix Players, Inc." in part and "12-3456789" in part
        assert "No goods or services were provided. Deductible as the law allows." in part


def test_tickets_with_a_gift_carry_the_receipt_in_the_confirmation(make_performance, buyer, good_card, settings, on_commit):
    settings.THEATER_TAX_ID = "98-7654321"
    with on_commit():
        _buy(make_performance(), buyer, good_card, donation_cents=1000)
    (message,) = mail.outbox
    text, html = _parts(message)
    for part in (text, html):
        assert "98-7654321" in part and settings.DONATION_TAX_STATEMENT in part
    assert "DONATION RECEIPT" in text


def test_a_change_email_the_mail_server_refuses_is_retried_by_the_outbox(make_performance, buyer, good_card, clerk, settings, on_commit):
    with on_commit():
        order = _buy(make_performance(), buyer, good_card)
    mail.outbox.clear()  # the confirmation went out
    settings.EMAIL_BACKEND = "tests.support.flaky_mail.FlakyEmailBackend"
    flaky_mail.fail_next(1)
    with on_commit():
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(order.tickets.first().pk)]), idempotency_key="r2", actor=clerk)
    row = OutboxEmail.objects.get(kind=OutboxEmail.REFUND)
    assert (row.status, row.attempts) == (OutboxEmail.PENDING, 1) and mail.outbox == []
    OutboxEmail.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert outbox.send_due() == {"sent": 1, "retrying": 0, "failed": 0}
    (message,) = mail.outbox
    assert "We have refunded $25.00" in message.body


@pytest.fixture
def admin(db):
    user = User.objects.create_user("admin-user", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


def test_admins_preview_every_email_with_sample_data_and_nothing_is_written(admin, staff):
    before = (Order.objects.count(), OutboxEmail.objects.count(), AuditEntry.objects.count())
    listing = admin.get("/staff/emails/").content.decode()
    assert len(PREVIEWS) == 7
    for name, (label, _) in PREVIEWS.items():
        assert f'href="/staff/emails/{name}/"' in listing and label in listing
        page = admin.get(f"/staff/emails/{name}/")
        assert page.status_code == 200
        html = page.content.decode()
        assert 'id="email-subject"' in html and 'id="email-text"' in html
        assert "WT-001234" in html or name == "patron_sign_in"  # the one email about no order
        frame = admin.get(f"/staff/emails/{name}/html/")
        assert frame.status_code == 200 and b"<!doctype html>" in frame.content.lower()
        policy = frame["Content-Security-Policy"]
        assert "sandbox" in policy and "style-src 'unsafe-inline'" in policy and "frame-ancestors 'self'" in policy
        assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert admin.get("/staff/emails/no-such-email/").status_code == 404
    assert staff.get("/staff/emails/").status_code == 403  # a box-office clerk
    assert (Order.objects.count(), OutboxEmail.objects.count(), AuditEntry.objects.count()) == before


def test_an_exchange_refunded_to_the_card_emails_once_it_has_gone_out(make_performance, buyer, good_card, clerk, on_commit):
    dear = make_performance()
    PriceType.objects.filter(pk=dear.adult.pk).update(price_cents=4000)
    cheap = make_performance(starts_in=timedelta(days=10))
    with on_commit():
        order = _buy(dear, buyer, good_card, n=1)
    mail.outbox.clear()
    with on_commit():  # pending, then the provider, then finished: the email comes with the finish
        exchange_tickets(order.pk, ExchangeRequest([order.tickets.get().pk], cheap.pk, method="original"), idempotency_key="x2", actor=clerk)
    (message,) = mail.outbox
    assert "The difference of $15.00 is refunded to the card you paid with." in message.body


def test_a_refund_the_provider_refuses_sends_no_email(make_performance, buyer, good_card, clerk, on_commit, monkeypatch):
    from wondertix.payments.providers.base import RefundResult
    from wondertix.payments.providers.test import TestCardProvider
    from wondertix.sales.errors import SaleError

    with on_commit():
        order = _buy(make_performance(), buyer, good_card)
    mail.outbox.clear()
    monkeypatch.setattr(TestCardProvider, "refund", lambda self, **kw: RefundResult(False, message="Card closed"))
    with on_commit(), pytest.raises(SaleError):
        refund_order(order.pk, RefundRequest(tickets=[TicketRefund(order.tickets.first().pk)]), idempotency_key="r3", actor=clerk)
    assert mail.outbox == [] and not OutboxEmail.objects.filter(kind=OutboxEmail.REFUND).exists()
