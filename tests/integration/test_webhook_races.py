"""Stripe webhooks delivered concurrently to gunicorn (4 worker processes) on PostgreSQL.

The pending order is made by the real `start_payment` (Stripe answered from the recorded
fixtures in tests/unit/fixtures/stripe, through the same fake HTTP client the unit tests
use), in a child process on the live database. The events are the recorded ones, about that
order, signed with the test webhook secret the server is started with.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import httpx
import pytest
from tests.support.liveserver import ROOT, LiveServer
from tests.support.staff import together
from tests.unit.test_stripe_payments import WEBHOOK_URL, sign

pytestmark = pytest.mark.slow

DELIVERIES = 8
MARK = "PENDING-ORDER "

# Runs in the child: Django set up on the live database, Stripe answered from recordings.
_MAKE_PENDING_ORDER = """
import json, sys
import django
django.setup()
import stripe
from django.conf import settings
import test_stripe_payments as recorded
from wondertix.sales.pending import start_payment
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold

settings.PAYMENT_PROVIDER = "stripe"
settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
settings.STRIPE_WEBHOOK_SECRET = recorded.WEBHOOK_SECRET
fake = recorded.RecordedStripe()
fake.reply("POST", "/v1/checkout/sessions", recorded.recorded("checkout_session_open"))
stripe.default_http_client = fake
stripe.max_network_retries = 0
performance_id, price_type_id, quantity, donation = map(int, sys.argv[1:5])
hold = create_hold([LineRequest(performance_id, price_type_id, quantity)])
details = CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"))
details.donation_cents = donation
order, _ = start_payment(hold.token, details)
payload = recorded.event_for("event_checkout_session_completed", order)
print(sys.argv[5] + json.dumps({"order_id": order.pk, "event": json.loads(payload)}), flush=True)
"""


# A window sale on a card reader and an online gift, both pending, in the child; then the
# patron taps an approved card on the simulated reader. Prints the events Stripe would send.
_MAKE_READER_SALE_AND_GIFT = """
import json, sys, uuid
import django
django.setup()
import stripe
from django.conf import settings
from django.contrib.auth.models import User
import test_stripe_payments as recorded
from wondertix.boxoffice import pos
from wondertix.patrons.pending_sales import start_donation
from wondertix.sales.services import Buyer

settings.PAYMENT_PROVIDER = "stripe"
settings.STRIPE_SECRET_KEY = "sk_test_fixture_key"
fake = recorded.RecordedStripe()
fake.reply("POST", "/v1/checkout/sessions", recorded.recorded("checkout_session_open"))
reader = fake.add_reader("tmr_race", "Race window")
stripe.default_http_client = fake
stripe.max_network_retries = 0
performance_id, price_type_id = map(int, sys.argv[1:3])
clerk = User.objects.create_user(f"race-{uuid.uuid4().hex[:8]}", is_staff=True)
sale = pos.PosSale(performance_id=performance_id, quantities={price_type_id: 2}, payment_method=pos.CARD, reader_id=reader["id"])
window_order = pos.sell_at_box_office(sale, actor=clerk)
fake._present(reader, "4242424242424242")
gift, _ = start_donation(2500, Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), idempotency_key=uuid.uuid4().hex)
gift_event = json.loads(recorded.event_for("event_checkout_session_completed", gift))
gift_event["data"]["object"]["payment_intent"] = f"pi_race_gift_{gift.pk}"
print(sys.argv[3] + json.dumps({"window_order": window_order.pk, "gift": gift.pk, "events": [fake.events[0], gift_event]}), flush=True)
"""


def _pending_order(server: LiveServer, performance_id: int, price_type_id: int, quantity: int, donation_cents: int) -> tuple[int, dict]:
    """(order id, the recorded checkout.session.completed event about it)."""
    env = {**server.env, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests' / 'unit'}"}
    child = subprocess.run(
        [sys.executable, "-c", _MAKE_PENDING_ORDER, str(performance_id), str(price_type_id), str(quantity), str(donation_cents), MARK],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    lines = [line for line in child.stdout.splitlines() if line.startswith(MARK)]
    assert child.returncode == 0 and lines, child.stdout[-2000:] + child.stderr[-3000:]
    made = json.loads(lines[-1][len(MARK):])
    return made["order_id"], made["event"]


def _deliver_all(server: LiveServer, events: list[dict]) -> list[httpx.Response]:
    """POST every event at the same instant, each signed as Stripe signs it."""
    payloads = [json.dumps(e) for e in events]
    clients = [httpx.Client(base_url=server.url, timeout=30) for _ in payloads]
    try:
        return together([
            lambda c=c, p=p: c.post(WEBHOOK_URL, content=p, headers={"Stripe-Signature": sign(p), "Content-Type": "application/json"})
            for c, p in zip(clients, payloads, strict=True)
        ])
    finally:
        for c in clients:
            c.close()


def _stored(live_db: str, order_id: int, performance_id: int) -> dict:
    from wondertix.catalog.models import Performance
    from wondertix.ops.models import AuditEntry
    from wondertix.patrons.models import Donation
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order, Ticket

    return {
        "status": Order.objects.using(live_db).get(pk=order_id).status,
        "tickets": Ticket.objects.using(live_db).filter(order_id=order_id).count(),
        "tickets_sold": Performance.objects.using(live_db).get(pk=performance_id).tickets_sold,
        "payments": Payment.objects.using(live_db).filter(order_id=order_id).count(),
        "donations": Donation.objects.using(live_db).filter(order_id=order_id).count(),
        "audit_paid": AuditEntry.objects.using(live_db).filter(action="order.paid", object_id=str(order_id)).count(),
    }


def test_one_event_delivered_eight_times_at_once_pays_the_order_once(backoffice_server, make_show, live_db):
    from wondertix.payments.models import WebhookEvent

    show = make_show(10, name="webhook-race")
    order_id, event = _pending_order(backoffice_server, show.performance_id, show.adult_id, 2, 1500)
    event["id"] = f"evt_race_{uuid.uuid4().hex}"  # the recorded event, with an id of its own in this database
    answers = _deliver_all(backoffice_server, [event] * DELIVERIES)

    assert [a.status_code for a in answers] == [200] * DELIVERIES, [a.text[:200] for a in answers]
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["duplicate"] * (DELIVERIES - 1) + ["order_paid"], outcomes
    assert _stored(live_db, order_id, show.performance_id) == {
        "status": "paid", "tickets": 2, "tickets_sold": 2, "payments": 1, "donations": 1, "audit_paid": 1,
    }
    assert WebhookEvent.objects.using(live_db).filter(event_id=event["id"]).count() == 1


def test_two_events_about_one_payment_racing_issue_the_tickets_once(backoffice_server, make_show, live_db):
    """`checkout.session.completed` and `…async_payment_succeeded` for the same session and
    payment, each redelivered, all at once: two events recorded, one payment, one set of tickets."""
    from wondertix.payments.models import WebhookEvent

    show = make_show(10, name="webhook-pair")
    order_id, completed = _pending_order(backoffice_server, show.performance_id, show.adult_id, 3, 0)
    completed["id"] = f"evt_done_{uuid.uuid4().hex}"
    succeeded = {**completed, "id": f"evt_async_{uuid.uuid4().hex}", "type": "checkout.session.async_payment_succeeded"}
    answers = _deliver_all(backoffice_server, [completed, succeeded] * (DELIVERIES // 2))

    assert [a.status_code for a in answers] == [200] * DELIVERIES, [a.text[:200] for a in answers]
    outcomes = sorted(a.json()["outcome"] for a in answers)
    # Each event is applied once; the second one finds its payment already accounted for.
    assert outcomes == ["duplicate"] * (DELIVERIES - 2) + ["order_paid"] * 2, outcomes
    assert _stored(live_db, order_id, show.performance_id) == {
        "status": "paid", "tickets": 3, "tickets_sold": 3, "payments": 1, "donations": 0, "audit_paid": 1,
    }
    assert WebhookEvent.objects.using(live_db).filter(event_id__in=[completed["id"], succeeded["id"]]).count() == 2


def test_a_reader_payment_and_a_gift_each_delivered_eight_times_at_once_are_paid_once(backoffice_server, make_show, live_db):
    """Window card sales (payment_intent.succeeded) and gifts alone (checkout.session.completed)
    go through the same exactly-once path: each event raced 8 times pays its order once."""
    from wondertix.patrons.models import Donation
    from wondertix.payments.models import TerminalPayment, WebhookEvent

    show = make_show(10, name="reader-race")
    env = {**backoffice_server.env, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests' / 'unit'}:{ROOT}"}
    child = subprocess.run([sys.executable, "-c", _MAKE_READER_SALE_AND_GIFT, str(show.performance_id), str(show.adult_id), MARK],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    lines = [line for line in child.stdout.splitlines() if line.startswith(MARK)]
    assert child.returncode == 0 and lines, child.stdout[-2000:] + child.stderr[-3000:]
    made = json.loads(lines[-1][len(MARK):])
    reader_event, gift_event = made["events"]
    reader_event["id"], gift_event["id"] = f"evt_reader_{uuid.uuid4().hex}", f"evt_gift_{uuid.uuid4().hex}"

    answers = _deliver_all(backoffice_server, [reader_event, gift_event] * DELIVERIES)
    assert [a.status_code for a in answers] == [200] * 2 * DELIVERIES, [a.text[:200] for a in answers]
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["duplicate"] * (2 * DELIVERIES - 2) + ["order_paid"] * 2, outcomes
    assert _stored(live_db, made["window_order"], show.performance_id) == {
        "status": "paid", "tickets": 2, "tickets_sold": 2, "payments": 1, "donations": 0, "audit_paid": 1,
    }
    assert TerminalPayment.objects.using(live_db).get(order_id=made["window_order"]).status == "succeeded"
    assert Donation.objects.using(live_db).filter(order_id=made["gift"]).count() == 1
    assert WebhookEvent.objects.using(live_db).filter(event_id__in=[reader_event["id"], gift_event["id"]]).count() == 2


def test_an_event_signed_with_another_secret_is_refused(backoffice_server):
    """The server really checks signatures: the races above are accepted for being signed right."""
    payload = json.dumps({"id": f"evt_forged_{uuid.uuid4().hex}", "type": "checkout.session.completed", "data": {"object": {}}})
    r = httpx.post(backoffice_server.url + WEBHOOK_URL, content=payload, headers={"Stripe-Signature": sign(payload, secret="whsec_someone_else")}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "invalid_signature"
