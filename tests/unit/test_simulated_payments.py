"""An environment whose data is real never confirms an order paid with the simulated card.

Every layer refuses it: the system checks (so `migrate` and every app server refuse to start),
/readyz (so no load balancer routes to it), and the simulated provider itself. A local demo of
prd, declared in so many words, may take simulated cards, and then every page, email and
ticket says TEST — NOT VALID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.test import Client

from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.simulated import TEST_MARK
from wondertix.payments.window import charge_at_window
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Hold, Order, Ticket

pytestmark = pytest.mark.django_db

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
BUYER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


@pytest.fixture
def real_data(settings):
    """prd's settings as a careless spec would have started them: real data, simulated cards."""
    settings.PAYMENT_PROVIDER = "test"
    settings.DATA_IS_REAL = True
    settings.SIMULATED_PAYMENTS_ON_REAL_DATA = False
    return settings


@pytest.fixture
def local_demo(real_data):
    real_data.SIMULATED_PAYMENTS_ON_REAL_DATA = True
    return real_data


def buy(client: Client, perf, quantity: int = 2):
    body = {"lines": [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": quantity}],
            "buyer": BUYER, "card": CARD}
    return client.post("/api/v1/orders", data=json.dumps(body), content_type="application/json")


def test_real_data_refuses_the_simulated_card_and_writes_nothing(real_data, make_performance):
    perf = make_performance(capacity=10)
    response = buy(Client(raise_request_exception=False), perf)
    assert response.status_code == 402
    assert response.json()["code"] == "simulated_payments_refused"
    assert "nothing was charged" in response.json()["message"]
    assert (Order.objects.count(), Ticket.objects.count(), Payment.objects.count()) == (0, 0, 0)
    perf.refresh_from_db()
    assert perf.tickets_sold == 0
    assert not Hold.objects.filter(lines__performance=perf, consumed_at__isnull=False).exists()


def test_real_data_refuses_a_simulated_card_at_the_window_too(real_data):
    with pytest.raises(SaleError) as refused:
        charge_at_window(amount_cents=2500, method="card", card=PaymentDetails(card_number="4242424242424242"),
                         description="window sale", idempotency_key="k" * 20)
    assert refused.value.code == "simulated_payments_refused"
    provider, result = charge_at_window(amount_cents=2500, method="cash", card=None, description="cash", idempotency_key="c" * 20)
    assert provider == "cash" and result.ok  # cash at the window is real money


def test_the_system_checks_refuse_the_configuration(real_data):
    assert "wondertix.E007" in {m.id for m in run_checks()}


def test_readyz_keeps_such_a_server_out_of_traffic(real_data):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["payments"] == "simulated on real data"


def _start_app_server_module(**env: str) -> subprocess.CompletedProcess:
    """Import the WSGI application the way gunicorn does, in a fresh process."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_IS_REAL", "SIMULATED_", "PAYMENT_"))}
    base.update({"DJANGO_SETTINGS_MODULE": "wondertix.settings", "DEBUG": "false", "SECRET_KEY": "s" * 50,
                 "STAFF_API_TOKEN_KEY": "t" * 50, "ALLOWED_HOSTS": "wondertix.localhost",
                 "DATABASE_URL": "sqlite:///:memory:", "PAYMENT_PROVIDER": "test", **env})
    return subprocess.run([sys.executable, "-c", "import wondertix.wsgi"], env=base, capture_output=True, text=True, timeout=120)


def test_an_app_server_refuses_to_start_on_real_data_with_simulated_cards():
    refused = _start_app_server_module(DATA_IS_REAL="true")
    assert refused.returncode != 0
    assert "refusing to start" in refused.stderr and "wondertix.E007" in refused.stderr
    demo = _start_app_server_module(DATA_IS_REAL="true", SIMULATED_PAYMENTS_ON_REAL_DATA="true")
    assert demo.returncode == 0, demo.stderr


def test_a_declared_local_demo_sells_but_marks_every_page_email_and_ticket(local_demo, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    client = Client()
    assert Client().get("/readyz").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = buy(client, perf)
    assert response.status_code == 201
    order = Order.objects.get()
    assert TEST_MARK in client.get("/").content.decode()
    page = client.get(f"/orders/{order.token}/").content.decode()
    assert page.count(f'<p class="ticket__test-mark">{TEST_MARK}</p>') == 2  # on each ticket
    [email] = mail.outbox
    assert email.subject.startswith(f"[{TEST_MARK}]")
    assert TEST_MARK in email.body and TEST_MARK in email.alternatives[0][0]


def test_the_staff_pages_are_marked_too(local_demo, staff):
    assert TEST_MARK in staff.get("/staff/").content.decode()


def test_the_real_processor_shows_no_test_mark(settings, make_performance):
    settings.PAYMENT_PROVIDER = "stripe"
    settings.DATA_IS_REAL = True
    make_performance()
    assert TEST_MARK not in Client().get("/").content.decode()
