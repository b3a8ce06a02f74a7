"""On PostgreSQL and gunicorn: expired holds, and the endpoints operators rely on
(/healthz, /readyz, /metrics)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer
from tests.support.pgcluster import PgCluster

pytestmark = pytest.mark.slow


def _available(server: LiveServer, performance_id: int) -> int:
    r = httpx.get(f"{server.url}/api/v1/performances/{performance_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["available"]


def test_expired_hold_frees_its_seats_and_its_checkout_is_refused_writing_nothing(app_server, make_show, live_db):
    from django.utils import timezone

    from wondertix.ops.models import AuditEntry
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Hold, HoldLine, Order, Ticket

    show = make_show(4, name="expiry")
    r = httpx.post(app_server.url + "/api/v1/holds", json={"lines": [{"performance_id": show.performance_id, "price_type_id": show.adult_id, "quantity": 4}]}, timeout=10)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert _available(app_server, show.performance_id) == 0
    r = httpx.post(app_server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, 1), timeout=10)
    assert r.status_code == 409 and r.json()["code"] == "sold_out"

    # The clock passes the hold's expiry (no cleanup job runs).
    past = timezone.now() - timedelta(seconds=1)
    hold = Hold.objects.using(live_db).get(token=token)
    Hold.objects.using(live_db).filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.using(live_db).filter(hold_id=hold.pk).update(expires_at=past)
    assert _available(app_server, show.performance_id) == 4

    audit_before = AuditEntry.objects.using(live_db).count()
    body = order_payload(show.performance_id, show.adult_id)
    body["lines"] = []
    body["hold_token"] = token
    r = httpx.post(app_server.url + "/api/v1/orders", json=body, headers={"Idempotency-Key": "expired-hold-1"}, timeout=10)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "hold_expired"
    assert "held for a limited time" in r.json()["message"]
    assert not Order.objects.using(live_db).filter(hold_id=hold.pk).exists()
    assert not Order.objects.using(live_db).filter(idempotency_key="expired-hold-1").exists()
    assert Ticket.objects.using(live_db).filter(performance_id=show.performance_id).count() == 0
    assert not Payment.objects.using(live_db).filter(order__hold_id=hold.pk).exists()
    assert AuditEntry.objects.using(live_db).count() == audit_before
    # The freed seats are really for sale.
    r = httpx.post(app_server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, 4), timeout=10)
    assert r.status_code == 201, r.text
    assert _available(app_server, show.performance_id) == 0


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" ([0-9.e+]+)"
    m = re.search(r"^" + pattern + r"$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_count_tickets_sold_across_all_workers(app_server, make_show):
    show = make_show(50, name="metrics")
    before = _metric(httpx.get(app_server.url + "/metrics", timeout=10).text, "wondertix_tickets_sold_total", 'channel="api"')
    for _ in range(4):  # several requests, likely served by several worker processes
        r = httpx.post(app_server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, 2), timeout=10)
        assert r.status_code == 201, r.text
    text = httpx.get(app_server.url + "/metrics", timeout=10).text
    assert _metric(text, "wondertix_tickets_sold_total", 'channel="api"') == before + 8
    assert "wondertix_http_request_duration_seconds_bucket" in text
    assert re.search(r'^wondertix_http_requests_total\{[^}]*status="201"[^}]*\} [1-9]', text, re.M)


def test_readyz_is_503_while_migrations_are_pending_and_healthz_is_200(pg_cluster):
    url = pg_cluster.create_database("unmigrated")
    with LiveServer(url, workers=1, migrate=False, wait_for="/healthz") as srv:
        r = httpx.get(srv.url + "/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json()["pending_migrations"] > 0
        assert httpx.get(srv.url + "/healthz", timeout=10).status_code == 200


def test_readyz_follows_the_database_down_and_back_while_healthz_stays_200():
    with PgCluster(prefix="wtx-pg-down-") as pg:
        url = pg.create_database("wondertix")
        with LiveServer(url, workers=1) as srv:
            assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
            pg.pause()
            r = httpx.get(srv.url + "/readyz", timeout=10)
            assert r.status_code == 503
            assert r.json()["database"] == "unreachable"
            assert httpx.get(srv.url + "/healthz", timeout=10).json() == {"status": "ok"}
            pg.resume()
            deadline = time.monotonic() + 20
            status = 0
            while time.monotonic() < deadline:
                status = httpx.get(srv.url + "/readyz", timeout=10).status_code
                if status == 200:
                    break
                time.sleep(0.2)
            assert status == 200, "readyz must recover once the database is back"
