"""POST /api/v1/holds with an Idempotency-Key: one key, one hold, the same body every time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.support.threadrace import gate_first_call, run_in_child, run_together
from tests.support.threadrace import report as report_to_parent

# Models are imported inside the tests: this module is also imported by a child process
# (race_in_child) before Django is set up.


def hold_body(perf, quantity: int = 2) -> dict:
    return {"lines": [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": quantity}]}


def post_hold(client, body: dict, key: str | None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/holds", data=json.dumps(body), content_type="application/json", headers=headers)


def available(perf) -> int:
    from wondertix.sales import inventory

    return inventory.availability_for([perf.pk])[perf.pk].available


@pytest.mark.django_db
def test_same_key_twice_holds_once_and_returns_the_same_body(client, make_performance):
    from wondertix.sales.models import Hold, HoldLine

    perf = make_performance(capacity=10)
    first = post_hold(client, hold_body(perf), "hold-retry-after-timeout")
    second = post_hold(client, hold_body(perf), "hold-retry-after-timeout")
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    assert Hold.objects.count() == 1 and HoldLine.objects.count() == 1
    assert available(perf) == 8
    hold = Hold.objects.get()
    assert hold.idempotency_key == "hold-retry-after-timeout" and len(hold.request_fingerprint) == 64


@pytest.mark.django_db
def test_retry_returns_the_first_hold_as_it_is_now(client, make_performance):
    perf = make_performance(capacity=10)
    token = post_hold(client, hold_body(perf), "hold-then-release-1").json()["token"]
    assert client.delete(f"/api/v1/holds/{token}").status_code == 204
    again = post_hold(client, hold_body(perf), "hold-then-release-1")
    assert again.status_code == 201
    assert again.json()["token"] == token and again.json()["status"] == "released"
    assert available(perf) == 10  # the retry did not hold the seats again


@pytest.mark.django_db
def test_same_key_with_different_lines_is_refused_and_writes_nothing(client, make_performance):
    from wondertix.sales.models import Hold, HoldLine

    perf = make_performance(capacity=10)
    assert post_hold(client, hold_body(perf, 2), "one-key-one-hold").status_code == 201
    for body in (hold_body(perf, 3), {"lines": [{"performance_id": perf.pk, "price_type_id": perf.student.pk, "quantity": 2}]}):
        response = post_hold(client, body, "one-key-one-hold")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert "different request" in response.json()["message"]
    assert Hold.objects.count() == 1 and HoldLine.objects.count() == 1
    assert available(perf) == 8


@pytest.mark.django_db
def test_without_a_key_two_requests_are_two_holds(client, make_performance):
    from wondertix.sales.models import Hold

    perf = make_performance(capacity=10)
    a, b = post_hold(client, hold_body(perf), None), post_hold(client, hold_body(perf), None)
    assert a.status_code == b.status_code == 201
    assert a.json()["token"] != b.json()["token"]
    assert Hold.objects.count() == 2 and available(perf) == 6
    assert list(Hold.objects.values_list("idempotency_key", flat=True)) == [None, None]  # NULLs never collide


@pytest.mark.django_db
def test_a_refused_hold_stores_nothing_so_its_key_can_be_used_again(client, make_performance):
    from wondertix.sales.models import Hold

    perf = make_performance(capacity=3)
    refused = post_hold(client, hold_body(perf, 4), "too-many-seats-key")
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"
    assert Hold.objects.count() == 0
    ok = post_hold(client, hold_body(perf, 3), "too-many-seats-key")
    assert ok.status_code == 201 and available(perf) == 0


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["short", "has spaces in it", "x" * 101, "naïve-unicode-key"])
def test_malformed_idempotency_key_is_refused(client, make_performance, key):
    from wondertix.sales.models import Hold

    perf = make_performance(capacity=10)
    response = post_hold(client, hold_body(perf), key)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_idempotency_key"
    assert Hold.objects.count() == 0


@pytest.mark.django_db
def test_the_same_key_may_name_an_order_and_a_hold(client, make_performance):
    """Keys are per kind of request: an order's key does not collide with a hold's."""
    perf = make_performance(capacity=10)
    assert post_hold(client, hold_body(perf), "shared-key-0001").status_code == 201
    body = {**hold_body(perf), "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
            "card": {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    order = client.post("/api/v1/orders", data=json.dumps(body), content_type="application/json", headers={"Idempotency-Key": "shared-key-0001"})
    assert order.status_code == 201


RACE_THREADS = 4


@pytest.mark.parametrize("capacity", [10, 2], ids=["room-to-spare", "last-seats"])
def test_same_key_from_concurrent_threads_holds_once(tmp_path, capacity):
    """Several threads send the same hold with one key at once, all past the "no hold for this
    key yet" check before any commits: one hold exists, every thread gets its body. With only
    2 seats left, the twins that lose see `sold_out` from the winner's seats and must still
    answer with the winner's hold.

    The race runs in a child process on a file SQLite database (see test_api_idempotency).
    """
    result = run_in_child(
        tmp_path, f"import test_api_hold_idempotency as t; t.race_in_child({capacity})", PAYMENT_PROVIDER="test"
    )
    assert result["failures"] == []
    assert result["statuses"] == [201] * RACE_THREADS
    assert result["distinct_bodies"] == 1
    assert result["passed_the_check_together"] == RACE_THREADS
    assert result["counts"] == {"holds": 1, "hold_lines": 1, "held": 2, "available": capacity - 2}


def race_in_child(capacity: int) -> None:
    """Runs in the child process (see above): migrate, seed one performance, race, report."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from django.test import Client
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType
    from wondertix.sales import inventory, services
    from wondertix.sales.models import Hold, HoldLine

    call_command("migrate", verbosity=0)
    event = Event.objects.create(title="Race", slug="race", active=True)
    adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=3), capacity=capacity)
    perf.adult = adult  # type: ignore[attr-defined]
    body = hold_body(perf)
    connections.close_all()

    passed = gate_first_call(services, "_existing_hold_for_key", RACE_THREADS, passed=lambda found: found is None)
    results: list[tuple[int, str]] = []

    def hold() -> None:
        response = post_hold(Client(), body, "concurrent-hold-key")
        results.append((response.status_code, response.content.decode()))

    failures = run_together(RACE_THREADS, hold)
    state = inventory.availability_for([perf.pk])[perf.pk]
    report = {
        "failures": failures,
        "statuses": sorted(status for status, _ in results),
        "distinct_bodies": len({content for _, content in results}),
        "passed_the_check_together": sum(passed),
        "counts": {
            "holds": Hold.objects.count(),
            "hold_lines": HoldLine.objects.count(),
            "held": state.held,
            "available": state.available,
        },
    }
    report_to_parent(report)
