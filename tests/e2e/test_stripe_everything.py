"""Acceptance (issue 10, 1): with payments = "stripe" (recorded responses, Stripe's simulated
reader), a patron buys tickets, gives $25 on its own and buys a subscription online, and a
clerk sells at the window on the reader; each ends paid by the webhook exactly once, and each
refund goes back to the card. Stripe's payment page is never fetched: the browser's request
for it is answered by a stand-in page (no network), and the test delivers the signed webhook
Stripe would send."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import stripe
from django.contrib.auth.models import Group, User
from django.utils import timezone
from tests.support.recorded_stripe import (
    WEBHOOK_SECRET,
    RecordedStripe,
    checkout_event,
    recorded,
    sign,
)

from wondertix.catalog.models import Season
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Donation, Subscription
from wondertix.payments.models import Payment, TerminalPayment, WebhookEvent
from wondertix.sales import inventory
from wondertix.sales.models import Order
from wondertix.sales.refunds import DonationRefund, RefundRequest, TicketRefund, refund_order

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "window-shift-" + "4" * 8
STRIPE_PAGE = "https://checkout.stripe.com/**"


@pytest.fixture
def fake_stripe(monkeypatch, settings):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    client = RecordedStripe()
    client.reply("POST", "/v1/checkout/sessions", recorded("checkout_session_open"))
    client.reply("POST", "/v1/refunds", recorded("refund_succeeded"))
    client.add_reader("tmr_window_one", "Window 1")
    monkeypatch.setattr(stripe, "default_http_client", client)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return client


def webhook_twice(live_server, payload: str) -> list[str]:
    """Deliver one event as Stripe does, and once more (Stripe delivers at least once)."""
    outcomes = []
    for _ in range(2):
        r = httpx.post(live_server.url + "/payments/stripe/webhook/", content=payload,
                       headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 200, r.text
        outcomes.append(r.json()["outcome"])
    return outcomes


def pay_on_stripe(page, live_server, order: Order) -> None:
    """The patron is on Stripe's page (the stand-in); Stripe confirms, the patron comes back."""
    assert page.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert webhook_twice(live_server, checkout_event(order)) == ["order_paid", "duplicate"]
    page.goto(f"{live_server.url}/orders/{order.token}/")


def refund_calls(fake) -> list[tuple[str, str]]:
    return [(r["params"]["payment_intent"], r["params"]["amount"]) for r in fake.requests if r["path"] == "/v1/refunds"]


def test_tickets_a_gift_a_subscription_and_a_window_sale_all_through_stripe(phone, browser, live_server, make_performance, fake_stripe, artifacts):
    page = phone
    page.route(STRIPE_PAGE, lambda route: route.fulfill(status=200, content_type="text/html",
                                                        body="<!doctype html><title>Stripe Checkout</title><h1>Pay with card</h1>"))
    perf = make_performance(capacity=10)
    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=300))
    package = subs.save_type(subs.TypeInput(season_id=season.pk, name="Flex 4", price_cents=8000, tickets_included=4))

    # ---- tickets: the cart, the checkout form, Stripe's page, the webhook, the tickets
    page.goto(f"{live_server.url}/performances/{perf.pk}/")
    page.get_by_role("button", name="One more Adult").click()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart/")
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout/")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill("ada@example.org")
    assert page.locator("input[name=card_number]").count() == 0
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url(STRIPE_PAGE)
    tickets = Order.objects.get(status=Order.PENDING)
    assert tickets.total_cents == 2700 and tickets.tickets.count() == 0
    pay_on_stripe(page, live_server, tickets)
    assert page.locator("img.ticket__qr").count() == 1
    page.screenshot(path=str(artifacts / "stripe-tickets-phone.png"), full_page=True)

    # ---- $25 on its own
    page.goto(f"{live_server.url}/donate/")
    page.locator("input[name=amount]").fill("25")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email").fill("grace@example.org")
    page.get_by_role("button", name="Give now").click()
    page.wait_for_url(STRIPE_PAGE)
    gift = Order.objects.get(status=Order.PENDING)
    assert (gift.total_cents, gift.donation_cents) == (2500, 2500)
    pay_on_stripe(page, live_server, gift)
    assert Donation.objects.get().order_id == gift.pk

    # ---- a subscription online
    page.goto(f"{live_server.url}/subscriptions/")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_role("button", name="Buy subscription").click()
    page.wait_for_url(STRIPE_PAGE)
    season_order = Order.objects.get(status=Order.PENDING)
    assert season_order.total_cents == 8000
    pay_on_stripe(page, live_server, season_order)
    sub = Subscription.objects.get()
    assert (sub.order_id, sub.subscription_type_id, sub.remaining) == (season_order.pk, package.pk, 4)

    # ---- the window: a clerk sells two tickets on the simulated reader
    clerk = User.objects.create_user("pat-window", password=PASSWORD, is_staff=True)
    clerk.groups.add(Group.objects.get(name="box_office"))
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    desk.set_default_timeout(15_000)
    staff = desk.new_page()
    staff.goto(f"{live_server.url}/staff/pos/{perf.pk}/")
    staff.wait_for_url("**/staff/login/**")
    staff.get_by_label("Username").fill("pat-window")
    staff.get_by_label("Password").fill(PASSWORD)
    staff.get_by_role("button", name="Sign in").click()
    staff.wait_for_url(f"**/staff/pos/{perf.pk}/")
    staff.locator(f"#qty_{perf.adult.pk}").fill("2")
    staff.get_by_label("Card", exact=True).check()
    assert staff.get_by_label("Card reader").input_value() == "tmr_window_one"
    staff.get_by_role("button", name="Complete sale").click()
    staff.wait_for_url("**/staff/pos/card/*/")
    assert "Waiting for the card on the reader" in staff.locator("#card-status").inner_text()
    window_order = Order.objects.get(status=Order.PENDING)
    assert window_order.total_cents == 5000 and inventory.availability_for([perf.pk])[perf.pk].available == 7
    staff.screenshot(path=str(artifacts / "stripe-reader-waiting-desktop.png"), full_page=True)
    staff.get_by_role("button", name="Present an approved test card").click()
    [event] = fake_stripe.events
    assert webhook_twice(live_server, json.dumps(event)) == ["order_paid", "duplicate"]
    staff.wait_for_url("**/staff/pos/orders/*/")  # the page refreshes itself and sees it paid
    assert window_order.reference in staff.locator("h1").inner_text()
    desk.close()

    # ---- each paid once, by the webhook
    orders = [tickets, gift, season_order, window_order]
    for order in orders:
        order.refresh_from_db()
        assert order.status == Order.PAID
        [payment] = order.payments.all()
        assert payment.provider == "stripe" and payment.amount_cents == order.total_cents
    assert WebhookEvent.objects.count() == 4
    window_intent = TerminalPayment.objects.get().payment_intent
    assert window_order.payments.get().reference == window_intent

    # ---- each refund goes back to the card it came from
    refund_order(tickets.pk, RefundRequest(tickets=[TicketRefund(tickets.tickets.get().pk)]), idempotency_key="e2e-t")
    refund_order(gift.pk, RefundRequest(donations=[DonationRefund(Donation.objects.get().pk)]), idempotency_key="e2e-g")
    refund_order(season_order.pk, RefundRequest(subscriptions=[Subscription.objects.get().pk]), idempotency_key="e2e-s")
    refund_order(window_order.pk, RefundRequest(tickets=[TicketRefund(t.pk) for t in window_order.tickets.all()]), idempotency_key="e2e-w")
    assert refund_calls(fake_stripe) == [
        (f"pi_test_order_{tickets.pk}", "2500"), (f"pi_test_order_{gift.pk}", "2500"),
        (f"pi_test_order_{season_order.pk}", "8000"), (window_intent, "5000"),
    ]
    assert Payment.objects.filter(kind=Payment.REFUND, status=Payment.SUCCEEDED).count() == 4
    assert page.problems == []
