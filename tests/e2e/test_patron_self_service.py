"""Issue 10, acceptance 5, as a patron lives it: sign in by the emailed link, exchange 2
tickets to a dearer performance paying only the difference, and be refused — with nothing
changed — when the performance chosen is sold out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail

from wondertix.catalog.models import Performance, PriceType
from wondertix.ops import outbox
from wondertix.payments.models import Payment
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_signed_in_patron_exchanges_two_tickets_paying_only_the_difference_and_a_sold_out_one_is_refused(
    phone, live_server, make_performance, good_card, settings, artifacts,
):
    settings.SITE_URL = live_server.url  # the emailed link points at this server
    page = phone
    first = make_performance(capacity=10)
    first.event.title = "The Tempest"
    first.event.save()
    dearer = Performance.objects.create(event=first.event, starts_at=first.starts_at + timedelta(days=1), capacity=10)
    full = Performance.objects.create(event=first.event, starts_at=first.starts_at + timedelta(days=2), capacity=2)
    premium = PriceType.objects.create(event=first.event, name="Premium", price_cents=4000, fee_cents=200)
    ada = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    order = sell([LineRequest(first.pk, first.adult.pk, 3)], CheckoutDetails(buyer=ada, payment=good_card))
    grace = Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org")
    sell([LineRequest(full.pk, first.adult.pk, 2)], CheckoutDetails(buyer=grace, payment=good_card))
    mail.outbox.clear()

    # ---- sign in: the storefront's "Sign in", an address, the emailed link
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.locator("#sign-in-sent").wait_for()
    outbox.send_due()  # the jobs program's pass
    link = re.search(r"https?://\S+/account/sign-in/[\w-]+/", mail.outbox[-1].body)
    assert link and mail.outbox[-1].to == ["ada@example.org"]
    page.goto(link.group(0))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account/")
    assert order.reference in page.locator("main").inner_text()

    # ---- the sold-out performance is refused, nothing changes
    before = (list(Ticket.objects.order_by("pk").values_list("status", "performance_id")), Payment.objects.count())
    page.get_by_role("link", name=f"Exchange tickets of order {order.reference}").click()
    tickets = list(order.tickets.order_by("pk"))
    page.get_by_label(re.compile(tickets[0].code)).check()
    page.get_by_label(re.compile(tickets[1].code)).check()
    page.get_by_label("New performance").select_option(str(full.pk))
    page.get_by_label("Ticket type").select_option(label="Premium")
    page.get_by_role("button", name="See the price").click()
    refusal = page.get_by_role("alert")
    assert "is sold out. Your tickets were not changed." in refusal.inner_text()
    assert (list(Ticket.objects.order_by("pk").values_list("status", "performance_id")), Payment.objects.count()) == before
    assert not Exchange.objects.exists()

    # ---- 2 tickets to the dearer performance: pay only the difference
    page.get_by_label("New performance").select_option(str(dearer.pk))
    page.get_by_label("Ticket type").select_option(label="Premium")
    page.get_by_role("button", name="See the price").click()
    assert "To pay: the difference of $30.00" in page.locator("#exchange-difference").inner_text()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry date").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.screenshot(path=str(artifacts / "patron-exchange-confirm-phone.png"), full_page=True)
    page.get_by_role("button", name="Pay $30.00 and exchange").click()
    page.wait_for_url(f"**/orders/{order.token}/")
    assert "You paid the difference of $30.00" in page.locator(".messages").inner_text()

    charges = list(Payment.objects.filter(order=order, kind=Payment.CHARGE).order_by("pk").values_list("amount_cents", flat=True))
    assert charges == [3 * 2700, 3000]
    assert Ticket.objects.filter(order=order, performance=dearer, price_type=premium, status=Ticket.VALID).count() == 2
    assert Order.objects.get(pk=order.pk).total_cents == 3 * 2700 + 3000
    assert [m for m in mail.outbox if "new tickets" in m.subject.lower()]  # the exchange email
    assert page.problems == []  # type: ignore[attr-defined]
