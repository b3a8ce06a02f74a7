"""Acceptance 6 through the API: one Idempotency-Key, one order, the same body every time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.support.threadrace import gate_first_call, run_in_child, run_together
from tests.support.threadrace import report as report_to_parent

# Models are imported inside the tests: this module is also imported by a child process
# (race_in_child) before Django is set up.

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def order_body(perf, quantity: int = 2) -> dict:
    return {
        "lines": [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": quantity}],
        "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
        "card": CARD,
    }


def post_order(client, body: dict, key: str | None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/orders", data=json.dumps(body), content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_same_key_twice_sells_once_and_returns_the_same_body(client, make_performance):
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order, Ticket

    perf = make_performance(capacity=10)
    first = post_order(client, order_body(perf), "retry-after-timeout-1")
    second = post_order(client, order_body(perf), "retry-after-timeout-1")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert Order.objects.count() == 1
    assert Ticket.objects.count() == 2
    assert Payment.objects.count() == 1
    perf.refresh_from_db()
    assert perf.tickets_sold == 2


@pytest.mark.django_db
def test_without_a_key_two_requests_are_two_orders(client, make_performance):
    from wondertix.sales.models import Order, Ticket  # noqa: F401

    perf = make_performance(capacity=10)
    assert post_order(client, order_body(perf), None).status_code == 201
    assert post_order(client, order_body(perf), None).status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.django_db
def test_same_key_with_a_different_request_is_refused(client, make_performance):
    from wondertix.sales.models import Order, Ticket  # noqa: F401

    perf = make_performance(capacity=10)
    assert post_order(client, order_body(perf, 2), "one-key-one-order").status_code == 201
    response = post_order(client, order_body(perf, 3), "one-key-one-order")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert "different request" in response.json()["message"]
    assert Order.objects.count() == 1 and Ticket.objects.count() == 2


@pytest.mark.django_db
def test_same_key_for_a_hold_checkout_returns_the_first_order(client, make_performance):
    from wondertix.sales.models import Order, Ticket  # noqa: F401

    perf = make_performance(capacity=10)
    hold = client.post("/api/v1/holds", data=json.dumps({"lines": order_body(perf)["lines"]}), content_type="application/json").json()
    body = {"hold_token": hold["token"], "buyer": order_body(perf)["buyer"], "card": CARD}
    first = post_order(client, body, "hold-checkout-key")
    second = post_order(client, body, "hold-checkout-key")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert Order.objects.count() == 1 and Ticket.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["short", "has spaces in it", "x" * 101, "naïve-unicode-key"])
def test_malformed_idempotency_key_is_refused(client, make_performance, key):
    from wondertix.sales.models import Order, Ticket  # noqa: F401

    perf = make_performance(capacity=10)
    response = post_order(client, order_body(perf), key)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert Order.objects.count() == 0


RACE_THREADS = 4


def test_same_key_from_concurrent_threads_sells_once(tmp_path):
    """Several threads send the same order with one key at once — the retry storm the key must
    survive — and only one order exists, and every thread got its body.

    The race runs in a child process on a file SQLite database: the in-memory test database is
    shared-cache, whose table locks fail at once instead of waiting as BEGIN IMMEDIATE does.
    """
    result = run_in_child(tmp_path, "import test_api_idempotency as t; t.race_in_child()", PAYMENT_PROVIDER="test")
    assert result["failures"] == []
    assert result["statuses"] == [201] * RACE_THREADS
    assert result["distinct_bodies"] == 1
    assert result["passed_the_check_together"] == RACE_THREADS
    assert result["counts"] == {"orders": 1, "tickets": 2, "payments": 1, "patrons": 1, "tickets_sold": 2}


def race_in_child() -> None:
    """Runs in the child process (see above): migrate, seed one performance, race, report."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType
    from wondertix.patrons.models import Patron
    from wondertix.payments.models import Payment
    from wondertix.sales import services
    from wondertix.sales.models import Order, Ticket

    call_command("migrate", verbosity=0)
    event = Event.objects.create(title="Race", slug="race", active=True)
    adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=3), capacity=10)
    perf.adult = adult  # type: ignore[attr-defined]
    body = order_body(perf)
    connections.close_all()

    # Every thread must see "no order for this key yet" before any of them may go on: the
    # window in which a naive implementation sells twice.
    passed = gate_first_call(services, "_existing_for_key", RACE_THREADS, passed=lambda found: found is None)
    results: list[tuple[int, str]] = []

    def buy() -> None:
        response = post_order(Client(), body, "concurrent-retry-key")
        results.append((response.status_code, response.content.decode()))

    failures = run_together(RACE_THREADS, buy)
    perf.refresh_from_db()
    report = {
        "failures": failures,
        "statuses": sorted(status for status, _ in results),
        "distinct_bodies": len({content for _, content in results}),
        "passed_the_check_together": sum(passed),
        "counts": {
            "orders": Order.objects.count(),
            "tickets": Ticket.objects.count(),
            "payments": Payment.objects.count(),
            "patrons": Patron.objects.count(),
            "tickets_sold": perf.tickets_sold,
        },
    }
    report_to_parent(report)
