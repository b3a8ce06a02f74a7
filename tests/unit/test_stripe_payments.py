"""Stripe Checkout: pending orders, signed webhooks processed exactly once, refunds.

Stripe's API is served from recorded responses (tests/unit/fixtures/stripe/*.json) by a fake
`stripe.HTTPClient` installed as `stripe.default_http_client` — the library itself builds,
sends and parses every request. Like Stripe, the fake echoes what identifies the request
(the order's token and total) into the recorded object and replays the first response for
a repeated Idempotency-Key. Webhooks carry real signatures made with the test secret.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.core import mail
from django.utils import timezone
from tests.support.recorded_stripe import WEBHOOK_SECRET, RecordedStripe, recorded, sign
from tests.support.threadrace import gate_first_call, run_in_child, run_together
from tests.support.threadrace import report as report_to_parent

from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import CheckoutSession, Payment, WebhookEvent
from wondertix.payments.registry import get_provider
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.models import DiscountCode, Hold, HoldLine, Order, Ticket
from wondertix.sales.pending import start_payment
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold, sell

pytestmark = pytest.mark.django_db

WEBHOOK_URL = "/payments/stripe/webhook/"


@pytest.fixture
def fake_stripe(monkeypatch, settings):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    client = RecordedStripe()
    client.reply("POST", "/v1/checkout/sessions", recorded("checkout_session_open"))
    client.reply("POST", "/v1/refunds", recorded("refund_succeeded"))
    monkeypatch.setattr(stripe, "default_http_client", client)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return client


@pytest.fixture
def details():
    return CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"))


def event_for(name: str, order: Order, **session_changes: Any) -> str:
    """A recorded event about this order's session, as Stripe would send it."""
    event = recorded(name)
    session = event["data"]["object"]
    checkout = CheckoutSession.objects.get(order=order)
    session.update({"id": checkout.session_id, "client_reference_id": order.token, "amount_total": order.total_cents, "amount_subtotal": order.total_cents})
    session["metadata"] = {"order_token": order.token, "order_reference": order.reference}
    session.update(session_changes)
    return json.dumps(event)


def deliver(client, payload: str, signature: str | None = None):
    headers = {"Stripe-Signature": signature if signature is not None else sign(payload)}
    return client.post(WEBHOOK_URL, data=payload, content_type="application/json", headers=headers)


def counts() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "paid": Order.objects.filter(status=Order.PAID).count(),
        "tickets": Ticket.objects.count(),
        "payments": Payment.objects.count(),
        "patrons": Patron.objects.count(),
        "holds": Hold.objects.count(),
        "events": WebhookEvent.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def available(perf) -> int:
    return inventory.availability_for([perf.pk])[perf.pk].available


def hold_for(perf, quantity: int = 2) -> Hold:
    return create_hold([LineRequest(perf.pk, perf.adult.pk, quantity)])


# ----------------------------------------------------------------------------- starting


def test_start_payment_makes_a_pending_order_and_a_checkout_session(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf, 2)
    order, url = start_payment(hold.token, details)

    assert order.status == Order.PENDING
    assert order.total_cents == 2 * (2500 + 200)
    assert Ticket.objects.count() == 0 and Payment.objects.count() == 0
    assert available(perf) == 8  # the hold keeps the seats while the patron pays
    [call] = fake_stripe.requests
    assert (call["method"], call["path"]) == ("POST", "/v1/checkout/sessions")
    assert call["auth"] == "Bearer sk_test_fixture_key"
    params = call["params"]
    assert params["mode"] == "payment"
    assert params["line_items[0][price_data][unit_amount]"] == str(order.total_cents)
    assert params["line_items[0][price_data][currency]"] == "usd"
    assert params["metadata[order_token]"] == order.token == params["client_reference_id"]
    assert params["success_url"].endswith(f"/orders/{order.token}/")
    assert params["customer_email"] == "ada@example.org"
    assert order.token in call["idempotency_key"]

    checkout = CheckoutSession.objects.get(order=order)
    assert url == checkout.url and url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert checkout.session_id.startswith("cs_test_")
    assert int(params["expires_at"]) == int(checkout.expires_at.timestamp())
    assert checkout.expires_at >= timezone.now() + timedelta(minutes=30)  # Stripe's minimum
    hold.refresh_from_db()
    assert hold.expires_at > checkout.expires_at  # the seats outlive the payment page
    assert set(HoldLine.objects.filter(hold=hold).values_list("expires_at", flat=True)) == {hold.expires_at}
    assert AuditEntry.objects.filter(action="order.pending", object_id=str(order.pk)).exists()


def test_starting_twice_with_the_same_details_returns_the_same_page(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    first, url1 = start_payment(hold.token, details)
    second, url2 = start_payment(hold.token, details)
    assert (first.pk, url1) == (second.pk, url2)
    assert Order.objects.count() == 1
    assert len(fake_stripe.requests) == 1


def test_changed_details_end_the_earlier_page_and_keep_the_seats(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    first, _ = start_payment(hold.token, details)
    first_session = CheckoutSession.objects.get(order=first).session_id
    fake_stripe.reply("POST", f"/v1/checkout/sessions/{first_session}/expire", recorded("checkout_session_expired"))
    details.buyer.email = "ada.lovelace@example.org"
    second, url = start_payment(hold.token, details)

    assert second.pk != first.pk
    first.refresh_from_db()
    assert first.status == Order.CANCELED
    assert [r["path"] for r in fake_stripe.requests] == ["/v1/checkout/sessions", f"/v1/checkout/sessions/{first_session}/expire", "/v1/checkout/sessions"]
    assert second.buyer_email == "ada.lovelace@example.org"
    assert available(perf) == 8  # the cart still holds its seats for the new page


def test_a_mistyped_discount_code_on_resubmit_keeps_the_earlier_page(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    first, url = start_payment(hold.token, details)
    details.discount_code = "TYPO"
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == "discount_unknown"
    first.refresh_from_db()
    assert first.status == Order.PENDING and len(fake_stripe.requests) == 1
    details.discount_code = ""
    assert start_payment(hold.token, details) == (first, url)


def test_changed_details_after_the_patron_paid_are_refused(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    first, _ = start_payment(hold.token, details)
    sid = CheckoutSession.objects.get(order=first).session_id
    fake_stripe.reply("POST", f"/v1/checkout/sessions/{sid}/expire", recorded("error_session_not_open"), status=400)
    fake_stripe.reply("GET", f"/v1/checkout/sessions/{sid}", recorded("checkout_session_complete"))
    details.buyer.first_name = "Augusta"
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == "cart_already_checked_out"
    first.refresh_from_db()
    assert first.status == Order.PENDING and Order.objects.count() == 1


def test_stripe_unreachable_is_a_clear_503_and_a_retry_uses_the_same_order(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    fake_stripe.unreachable = True
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert (exc.value.code, exc.value.status) == ("payment_unavailable", 503)
    assert "try again" in exc.value.message and "still held" in exc.value.message
    fake_stripe.unreachable = False
    order, url = start_payment(hold.token, details)
    assert Order.objects.count() == 1 and order.status == Order.PENDING
    assert url.startswith("https://checkout.stripe.com/")
    keys = [r["idempotency_key"] for r in fake_stripe.requests]
    assert keys[0] == keys[1]  # the same request, safe to repeat


def test_a_later_retry_asks_for_a_page_that_still_lasts_stripes_minimum(fake_stripe, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    fake_stripe.unreachable = True
    with pytest.raises(SaleError):
        start_payment(hold.token, details)
    # Two minutes later the page's planned expiry is under Stripe's 30 minutes away.
    CheckoutSession.objects.update(expires_at=timezone.now() + timedelta(minutes=28))
    fake_stripe.unreachable = False
    order, _ = start_payment(hold.token, details)
    sent = int(fake_stripe.requests[-1]["params"]["expires_at"])
    assert sent >= (timezone.now() + timedelta(minutes=30)).timestamp()
    # The key names the expiry it asks for: a changed request never reuses an old key.
    assert fake_stripe.requests[-1]["idempotency_key"].endswith(f"-{sent}")
    hold.refresh_from_db()
    assert hold.expires_at > CheckoutSession.objects.get(order=order).expires_at


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("expired", "hold_expired"),
        ("consumed", "cart_already_checked_out"),
        ("bad_email", "invalid_email"),
        ("unknown_discount", "discount_unknown"),
        ("exhausted_discount", "discount_exhausted"),
    ],
)
def test_start_payment_refusals_write_nothing(fake_stripe, make_performance, details, change, code):
    perf = make_performance(capacity=10)
    hold = hold_for(perf)
    past = timezone.now() - timedelta(seconds=1)
    if change == "expired":
        Hold.objects.filter(pk=hold.pk).update(expires_at=past)
        HoldLine.objects.filter(hold=hold).update(expires_at=past)
    elif change == "consumed":
        Hold.objects.filter(pk=hold.pk).update(consumed_at=past)
    elif change == "bad_email":
        details.buyer.email = "ada-at-example"
    elif change == "unknown_discount":
        details.discount_code = "NOPE"
    else:
        DiscountCode.objects.create(code="GONE", kind=DiscountCode.AMOUNT, value=100, usage_limit=1, times_used=1)
        details.discount_code = "gone"
    before = counts()
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == code
    assert counts() == before
    assert fake_stripe.requests == []


def test_discount_is_reserved_while_paying_and_released_when_the_page_expires(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    code = DiscountCode.objects.create(code="LAST", kind=DiscountCode.AMOUNT, value=500, usage_limit=1)
    details.discount_code = "last"
    order, _ = start_payment(hold_for(perf).token, details)
    assert order.discount_cents == 1000
    code.refresh_from_db()
    assert code.times_used == 1  # nobody else can take the last redemption meanwhile
    assert deliver(client, event_for("event_checkout_session_expired", order)).status_code == 200
    code.refresh_from_db()
    assert code.times_used == 0


def test_free_order_skips_the_payment_page(fake_stripe, make_performance, details):
    from wondertix.catalog.models import PriceType

    perf = make_performance(capacity=10)
    free = PriceType.objects.create(event=perf.event, name="Preview (free)", price_cents=0)
    hold = create_hold([LineRequest(perf.pk, free.pk, 2)])
    order, url = start_payment(hold.token, details)
    assert order.status == Order.PAID and order.total_cents == 0
    assert order.tickets.count() == 2
    assert url.endswith(f"/orders/{order.token}/")
    assert fake_stripe.requests == []
    # A resubmit is told the cart is checked out (the storefront then shows the order).
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == "cart_already_checked_out"
    assert Order.objects.count() == 1


def test_total_below_stripes_minimum_is_refused_up_front(fake_stripe, make_performance, details):
    from wondertix.catalog.models import PriceType

    perf = make_performance(capacity=10)
    cheap = PriceType.objects.create(event=perf.event, name="Token", price_cents=25)
    hold = create_hold([LineRequest(perf.pk, cheap.pk, 1)])
    before = counts()
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == "amount_below_minimum" and "$0.50" in exc.value.message
    assert counts() == before and fake_stripe.requests == []


def test_start_payment_is_refused_where_checkout_charges_in_process(make_performance, details, settings):
    settings.PAYMENT_PROVIDER = "test"
    hold = hold_for(make_performance())
    before = counts()
    with pytest.raises(SaleError) as exc:
        start_payment(hold.token, details)
    assert exc.value.code == "payment_method_unsupported"
    assert counts() == before


def test_a_cart_being_paid_cannot_be_released_through_the_api(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf, 2)
    start_payment(hold.token, details)
    response = client.delete(f"/api/v1/holds/{hold.token}")
    assert response.status_code == 409
    assert response.json()["code"] == "payment_in_progress"
    assert available(perf) == 8


# ----------------------------------------------------------------------------- webhook


def test_paid_session_issues_tickets_once_even_when_delivered_twice(fake_stripe, client, make_performance, details, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    hold = hold_for(perf, 2)
    details.donation_cents = 1500
    order, _ = start_payment(hold.token, details)
    payload = event_for("event_checkout_session_completed", order)

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, payload)
    after_first = counts()
    with django_capture_on_commit_callbacks(execute=True):
        second = deliver(client, payload)

    assert (first.status_code, first.json()["outcome"]) == (200, "order_paid")
    assert (second.status_code, second.json()["outcome"]) == (200, "duplicate")
    assert counts() == after_first
    order.refresh_from_db()
    assert order.status == Order.PAID and order.paid_at is not None
    assert order.tickets.count() == 2
    payment = order.payments.get()
    assert (payment.provider, payment.reference, payment.amount_cents, payment.status) == ("stripe", "pi_3SXa1bLkdIwHu7ix0qRfGh2K", order.total_cents, Payment.SUCCEEDED)
    assert Donation.objects.get(order=order).amount_cents == 1500
    assert WebhookEvent.objects.filter(event_id="evt_1SXa1cLkdIwHu7ixQ2mT9vYz").count() == 1
    hold.refresh_from_db()
    assert hold.consumed_at is not None
    perf.refresh_from_db()
    assert perf.tickets_sold == 2 and available(perf) == 8
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.org"]
    assert AuditEntry.objects.filter(action="order.paid", object_id=str(order.pk), actor_label="stripe").count() == 1


def test_tickets_carry_the_prices_agreed_when_the_payment_started(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 1).token, details)
    perf.adult.fee_cents = 999
    perf.adult.save()
    deliver(client, event_for("event_checkout_session_completed", order))
    ticket = Ticket.objects.get(order=order)
    assert (ticket.price_cents, ticket.fee_cents) == (2500, 200)


@pytest.mark.parametrize(
    "signature",
    [
        "",  # no signature at all
        "t=1764133500,v1=" + "0" * 64,  # made up
        "garbage",
    ],
)
def test_bad_signature_is_refused_and_writes_nothing(fake_stripe, client, make_performance, details, signature):
    order, _ = start_payment(hold_for(make_performance()).token, details)
    before = counts()
    response = deliver(client, event_for("event_checkout_session_completed", order), signature=signature)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert counts() == before
    order.refresh_from_db()
    assert order.status == Order.PENDING


def test_signature_with_another_secret_or_a_changed_payload_is_refused(fake_stripe, client, make_performance, details):
    order, _ = start_payment(hold_for(make_performance()).token, details)
    payload = event_for("event_checkout_session_completed", order)
    before = counts()
    assert deliver(client, payload, sign(payload, secret="whsec_someone_else")).status_code == 400
    tampered = payload.replace(f'"amount_total": {order.total_cents}', '"amount_total": 1')
    assert deliver(client, tampered, sign(payload)).status_code == 400
    stale = sign(payload, at=int(time.time()) - 3600)  # a replay of an old delivery
    assert deliver(client, payload, stale).status_code == 400
    assert counts() == before


def test_webhook_needs_no_csrf_token(fake_stripe, make_performance, details):
    from django.test import Client

    order, _ = start_payment(hold_for(make_performance()).token, details)
    response = deliver(Client(enforce_csrf_checks=True), event_for("event_checkout_session_completed", order))
    assert response.status_code == 200 and response.json()["outcome"] == "order_paid"


def test_webhook_accepts_only_post(client, fake_stripe):
    assert client.get(WEBHOOK_URL).status_code == 405


def test_webhook_without_a_configured_secret_refuses(client, fake_stripe, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = json.dumps(recorded("event_checkout_session_completed"))
    response = deliver(client, payload)
    assert response.status_code == 503
    assert WebhookEvent.objects.count() == 0


def test_unknown_events_and_other_systems_orders_are_acknowledged_and_ignored(fake_stripe, client):
    other = recorded("event_checkout_session_completed")
    other["data"]["object"]["metadata"] = {"order_token": "not-one-of-ours"}
    other["data"]["object"]["client_reference_id"] = None
    response = deliver(client, json.dumps(other))
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored_not_ours")
    ping = dict(recorded("event_checkout_session_completed"), type="customer.created", id="evt_other")
    assert deliver(client, json.dumps(ping)).json()["outcome"] == "ignored"
    assert Order.objects.count() == 0


def test_expired_session_cancels_the_order_and_frees_the_seats(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 3).token, details)
    assert available(perf) == 7
    payload = event_for("event_checkout_session_expired", order)
    assert deliver(client, payload).json()["outcome"] == "order_canceled"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    order.refresh_from_db()
    assert order.status == Order.CANCELED
    assert available(perf) == 10
    assert Ticket.objects.count() == 0
    entry = AuditEntry.objects.get(action="order.canceled", object_id=str(order.pk))
    assert "expired" in entry.after["reason"]


def test_failed_delayed_payment_cancels_the_order(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 2).token, details)
    assert deliver(client, event_for("event_checkout_session_async_payment_failed", order)).json()["outcome"] == "order_canceled"
    order.refresh_from_db()
    assert order.status == Order.CANCELED and available(perf) == 10


def test_payment_after_the_hold_expired_still_gets_free_seats(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    hold = hold_for(perf, 2)
    order, _ = start_payment(hold.token, details)
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "order_paid"
    assert Ticket.objects.filter(order=order).count() == 2
    assert not fake_stripe.requests[1:]  # no refund


def test_payment_after_the_seats_were_sold_is_refunded_and_the_order_canceled(fake_stripe, client, make_performance, details, good_card):
    perf = make_performance(capacity=2)
    hold = hold_for(perf, 2)
    order, _ = start_payment(hold.token, details)
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    # Someone else buys the released seats at the box office.
    sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=Buyer("Box", "Office", "box@example.org"), payment=good_card), provider_name="test", staff=True)

    payload = event_for("event_checkout_session_completed", order)
    response = deliver(client, payload)
    assert (response.status_code, response.json()["outcome"]) == (200, "refunded")
    assert deliver(client, payload).json()["outcome"] == "duplicate"

    refunds = [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]
    assert len(refunds) == 1
    assert refunds[0]["params"]["payment_intent"] == "pi_3SXa1bLkdIwHu7ix0qRfGh2K"
    assert refunds[0]["params"]["amount"] == str(order.total_cents)
    assert refunds[0]["idempotency_key"] == "wondertix-autorefund-evt_1SXa1cLkdIwHu7ixQ2mT9vYz"
    order.refresh_from_db()
    assert order.status == Order.CANCELED
    assert Ticket.objects.filter(order=order).count() == 0
    perf.refresh_from_db()
    assert perf.tickets_sold == 2  # never oversold
    kinds = sorted(order.payments.values_list("kind", "reference", "amount_cents"))
    assert kinds == [("charge", "pi_3SXa1bLkdIwHu7ix0qRfGh2K", order.total_cents), ("refund", "re_3SXa1bLkdIwHu7ix0nE8tZqW", order.total_cents)]
    entry = AuditEntry.objects.get(action="order.canceled", object_id=str(order.pk))
    assert "sold" in entry.after["reason"]


def test_failed_automatic_refund_leaves_the_event_for_redelivery(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 2).token, details)
    perf.status = perf.CANCELED
    perf.save()
    fake_stripe.replies[("POST", "/v1/refunds")] = [(400, recorded("error_no_such_payment_intent"))]
    payload = event_for("event_checkout_session_completed", order)
    response = deliver(client, payload)
    assert response.status_code == 500
    assert WebhookEvent.objects.count() == 0  # Stripe will deliver it again
    fake_stripe.replies[("POST", "/v1/refunds")] = [(200, recorded("refund_succeeded"))]
    fake_stripe.by_key.clear()
    assert deliver(client, payload).json()["outcome"] == "refunded"
    order.refresh_from_db()
    assert order.status == Order.CANCELED


def test_amount_that_differs_from_the_order_total_is_refunded(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 2).token, details)
    response = deliver(client, event_for("event_checkout_session_completed", order, amount_total=100))
    assert response.json()["outcome"] == "refunded"
    assert [r["params"]["amount"] for r in fake_stripe.requests if r["path"] == "/v1/refunds"] == ["100"]
    assert Ticket.objects.count() == 0


# ----------------------------------------------------------------------------- reconciliation


def _expire_page(order: Order, minutes_ago: int = 10) -> CheckoutSession:
    checkout = CheckoutSession.objects.get(order=order)
    checkout.expires_at = timezone.now() - timedelta(minutes=minutes_ago)
    checkout.save(update_fields=["expires_at"])
    return checkout


def test_reconcile_pays_an_order_whose_webhook_was_lost_and_the_late_webhook_is_harmless(fake_stripe, client, make_performance, details):
    from django.core.management import call_command

    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 2).token, details)
    checkout = _expire_page(order)
    paid_session = recorded("checkout_session_complete")
    paid_session.update({"id": checkout.session_id, "amount_total": order.total_cents, "metadata": {"order_token": order.token}})
    fake_stripe.reply("GET", f"/v1/checkout/sessions/{checkout.session_id}", paid_session)

    out = __import__("io").StringIO()
    call_command("reconcile_payments", stdout=out)
    assert json.loads(out.getvalue()) == {"order_paid": 1}
    order.refresh_from_db()
    assert order.status == Order.PAID and order.tickets.count() == 2

    # The webhook arrives after all (Stripe retried): nothing more happens.
    before = counts()
    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "order_paid"
    assert counts()["tickets"] == before["tickets"] and counts()["payments"] == before["payments"]
    assert not [r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]


def test_reconcile_cancels_an_expired_page_and_leaves_fresh_ones_alone(fake_stripe, make_performance, details):
    from wondertix.payments.services import reconcile_stale_checkouts

    perf = make_performance(capacity=10)
    stale, _ = start_payment(hold_for(perf, 2).token, details)
    fresh, _ = start_payment(hold_for(perf, 1).token, details)
    checkout = _expire_page(stale)
    gone = recorded("checkout_session_expired")
    gone.update({"id": checkout.session_id, "metadata": {"order_token": stale.token}})
    fake_stripe.reply("GET", f"/v1/checkout/sessions/{checkout.session_id}", gone)

    assert reconcile_stale_checkouts() == {"order_canceled": 1}
    assert reconcile_stale_checkouts() == {}  # nothing stale is left
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.status, fresh.status) == (Order.CANCELED, Order.PENDING)
    assert available(perf) == 9


def test_reconcile_skips_when_stripe_is_unreachable(fake_stripe, make_performance, details):
    from wondertix.payments.services import reconcile_stale_checkouts

    order, _ = start_payment(hold_for(make_performance(), 1).token, details)
    _expire_page(order)
    fake_stripe.unreachable = True
    assert reconcile_stale_checkouts() == {"unreachable": 1}
    order.refresh_from_db()
    assert order.status == Order.PENDING


def test_second_event_about_an_already_refunded_payment_refunds_nothing_more(fake_stripe, client, make_performance, details):
    perf = make_performance(capacity=10)
    order, _ = start_payment(hold_for(perf, 2).token, details)
    perf.status = perf.CANCELED
    perf.save()
    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "refunded"
    other = json.loads(event_for("event_checkout_session_completed", order))
    other["id"], other["type"] = "evt_async_same_payment", "checkout.session.async_payment_succeeded"
    assert deliver(client, json.dumps(other)).json()["outcome"] == "already_refunded"  # accounted for: no-op
    assert len([r for r in fake_stripe.requests if r["path"] == "/v1/refunds"]) == 1
    assert order.payments.count() == 2


# ----------------------------------------------------------------------------- refunds


def test_provider_refund_calls_stripe_with_the_payment_intent_and_key(fake_stripe):
    result = get_provider("stripe").refund(reference="pi_3SXa1bLkdIwHu7ix0qRfGh2K", amount_cents=2700, idempotency_key="refund-order-42-1")
    assert result.ok and result.reference == "re_3SXa1bLkdIwHu7ix0nE8tZqW"
    [call] = fake_stripe.requests
    assert (call["method"], call["path"]) == ("POST", "/v1/refunds")
    assert call["params"]["payment_intent"] == "pi_3SXa1bLkdIwHu7ix0qRfGh2K"
    assert call["params"]["amount"] == "2700"
    assert call["idempotency_key"] == "refund-order-42-1"


def test_provider_refund_reports_stripes_refusal_without_raising(fake_stripe):
    fake_stripe.replies[("POST", "/v1/refunds")] = [(404, recorded("error_no_such_payment_intent"))]
    result = get_provider("stripe").refund(reference="pi_unknown", amount_cents=100, idempotency_key="refund-x-1")
    assert not result.ok and result.message


def test_provider_refund_of_an_already_refunded_charge_counts_as_done(fake_stripe):
    fake_stripe.replies[("POST", "/v1/refunds")] = [(400, recorded("error_charge_already_refunded"))]
    assert get_provider("stripe").refund(reference="ch_3SXa1bLkdIwHu7ix0aBcDeFg", amount_cents=100, idempotency_key="k-2").ok
    assert fake_stripe.requests[0]["params"]["charge"] == "ch_3SXa1bLkdIwHu7ix0aBcDeFg"


def test_stripe_cannot_charge_in_process(fake_stripe):
    provider = get_provider("stripe")
    assert provider.synchronous is False
    from wondertix.payments.providers.base import PaymentDetails

    result = provider.charge(amount_cents=100, details=PaymentDetails(), description="x", idempotency_key="k")
    assert not result.ok and result.code == "payment_method_unsupported"
    assert fake_stripe.requests == []


# ----------------------------------------------------------------------------- concurrency

RACE_DELIVERIES = 3


@pytest.mark.django_db(transaction=False)
def test_concurrent_redeliveries_of_one_event_issue_tickets_once(tmp_path):
    """Stripe may deliver the same event to two workers at once. All deliveries pass the
    "seen it?" look before any commits; still one set of tickets, one payment, one email.

    Runs in a child process on a file SQLite database (the in-memory test database's
    shared-cache locks fail at once instead of waiting like BEGIN IMMEDIATE).
    """
    result = run_in_child(
        tmp_path, "import django; django.setup(); import test_stripe_payments as t; t.webhook_race_in_child()"
    )
    assert result["failures"] == []
    assert result["passed_the_look_together"] == RACE_DELIVERIES
    assert sorted(result["outcomes"]) == ["duplicate"] * (RACE_DELIVERIES - 1) + ["order_paid"]
    assert result["counts"] == {"tickets": 2, "payments": 1, "events": 1, "emails": 1, "tickets_sold": 2, "paid": 1}


def webhook_race_in_child() -> None:
    """Runs in the child process (Django already set up): make a pending Stripe order, then
    deliver its completed event from several threads at once."""

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client

    from wondertix.catalog.models import Event, Performance, PriceType
    from wondertix.payments import services as payment_services

    call_command("migrate", verbosity=0)
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    fake = RecordedStripe()
    fake.reply("POST", "/v1/checkout/sessions", recorded("checkout_session_open"))
    stripe.default_http_client = fake
    stripe.max_network_retries = 0
    mail.outbox = []

    event = Event.objects.create(title="Race", slug="race", active=True)
    adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=3), capacity=10)
    hold = create_hold([LineRequest(perf.pk, adult.pk, 2)])
    order, _ = start_payment(hold.token, CheckoutDetails(buyer=Buyer("Ada", "Lovelace", "ada@example.org")))
    payload = event_for("event_checkout_session_completed", order)
    connections.close_all()

    passed = gate_first_call(payment_services, "_seen", RACE_DELIVERIES, passed=lambda found: not found)
    outcomes: list[str] = []
    answered_wrong: list[str] = []

    def deliver_once() -> None:
        response = deliver(Client(), payload)
        if response.status_code != 200:
            answered_wrong.append(f"{response.status_code} {response.content[:200]!r}")
        else:
            outcomes.append(response.json()["outcome"])

    failures = run_together(RACE_DELIVERIES, deliver_once) + answered_wrong
    perf.refresh_from_db()
    report = {
        "failures": failures,
        "outcomes": outcomes,
        "passed_the_look_together": sum(passed),
        "counts": {
            "tickets": Ticket.objects.count(),
            "payments": Payment.objects.count(),
            "events": WebhookEvent.objects.count(),
            "emails": len(mail.outbox),
            "tickets_sold": perf.tickets_sold,
            "paid": Order.objects.filter(status=Order.PAID).count(),
        },
    }
    report_to_parent(report)
