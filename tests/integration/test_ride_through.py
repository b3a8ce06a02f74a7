"""The app rides through a database failover (issue 8, acceptance 1 — the app's half).

A real PostgreSQL 15 and gunicorn (4 sync workers, DEBUG off) with DATABASE_RIDE_THROUGH_S set.
Buyers keep placing orders (each with its own Idempotency-Key) and a reader keeps loading the
storefront while the test crashes PostgreSQL (`pg_ctl stop -m immediate`: every backend
killed mid-statement) and starts it again seconds later. Every buyer gets 201 — slower — and
no 5xx or connection error; every order is stored once with one payment.

The in-doubt commit — committed on the database, an error on the client — is made on demand
by a TCP proxy between the app and PostgreSQL that passes an order's COMMIT on and then cuts
the connection before the answer comes back (tests/support/tcpproxy.py). The retry with the
same key is answered with that order.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer, manage
from tests.support.pgcluster import PgCluster
from tests.support.tcpproxy import CommitDropper

pytestmark = pytest.mark.slow

ALIAS = "ride"
BUDGET_S = 20  # the ride-through of the servers below: far longer than the outage
OUTAGE_S = 4  # PostgreSQL stays down this long (a PostgreSQL crash under Patroni: ~3.5 s)
BUYERS = 12
MAX_ORDERS_PER_BUYER = 40  # a bound besides time
REQUEST_TIMEOUT_S = 60.0


def read_paths(perf_id: int) -> tuple[str, ...]:
    """The storefront's events page and the API's view of the performance being sold."""
    return ("/", f"/api/v1/performances/{perf_id}")


RETRIED = "database reachable again; request completed after retrying"


@dataclass
class Cluster:
    pg: PgCluster
    url: str


@pytest.fixture(scope="module")
def cluster(django_db_blocker) -> Iterator[Cluster]:  # noqa: ANN001
    """A cluster of our own (it is crashed on purpose) and an ORM alias onto its database."""
    import environ
    from django.db import connections

    with PgCluster(prefix="wtx-pg-ride-") as pg:
        url = pg.create_database("wondertix")
        manage(url, "migrate", "--noinput")
        config = connections.configure_settings({"default": environ.Env.db_url_config(url)})["default"]
        config["CONN_MAX_AGE"] = 0
        connections.settings[ALIAS] = config
        with django_db_blocker.unblock():
            yield Cluster(pg, url)
            connections[ALIAS].close()


def make_show(capacity: int, name: str) -> tuple[int, int]:
    from django.db import connections
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType

    connections[ALIAS].close()  # the alias' connection may predate a crash
    event = Event.objects.using(ALIAS).create(title=f"Ride {name}", slug=f"ride-{name}", active=True)
    adult = PriceType.objects.using(ALIAS).create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.using(ALIAS).create(event=event, starts_at=timezone.now() + timedelta(days=14), capacity=capacity)
    return perf.pk, adult.pk


def stored(performance_id: int) -> dict[str, object]:
    """What the database holds for a performance, read afresh."""
    from django.db import connections
    from django.db.models import Count

    from wondertix.catalog.models import Performance
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order, Ticket

    connections[ALIAS].close()  # the alias' connection may predate a crash
    orders = Order.objects.using(ALIAS).filter(tickets__performance_id=performance_id).distinct()
    tokens = list(orders.values_list("token", flat=True))
    payments = dict(
        Payment.objects.using(ALIAS).filter(order__token__in=tokens).values_list("order__token").annotate(n=Count("id"))
    )
    return {
        "tokens": tokens,
        "payments": payments,
        "tickets": Ticket.objects.using(ALIAS).filter(performance_id=performance_id).count(),
        "counter": Performance.objects.using(ALIAS).get(pk=performance_id).tickets_sold,
    }


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer (connection error, timeout)
    token: str
    seconds: float
    error: str = ""


def test_buyers_and_readers_ride_through_a_postgresql_crash(cluster: Cluster) -> None:
    pg = cluster.pg
    perf_id, adult_id = make_show(capacity=BUYERS * MAX_ORDERS_PER_BUYER * 2, name="crash")
    env = {"DATABASE_RIDE_THROUGH_S": str(BUDGET_S), "LOG_LEVEL": "WARNING"}
    with LiveServer(cluster.url, workers=4, migrate=False, collectstatic=True, env=env) as srv:
        stop = threading.Event()
        answers: list[Answer] = []
        reads: list[Answer] = []
        lock = threading.Lock()

        def buyer(n: int) -> None:
            with httpx.Client(base_url=srv.url, timeout=REQUEST_TIMEOUT_S) as client:
                for i in range(MAX_ORDERS_PER_BUYER):
                    if stop.is_set():
                        return
                    key = f"ride-{n}-{i}-{uuid.uuid4().hex[:12]}"
                    started = time.monotonic()
                    try:
                        r = client.post("/api/v1/orders", json=order_payload(perf_id, adult_id, 2), headers={"Idempotency-Key": key})
                        answer = Answer(r.status_code, r.json().get("token", "") if r.status_code == 201 else "", time.monotonic() - started,
                                        "" if r.status_code == 201 else r.text[:300])
                    except httpx.HTTPError as exc:
                        answer = Answer(0, "", time.monotonic() - started, repr(exc))
                    with lock:
                        answers.append(answer)

        def reader(path: str) -> None:
            with httpx.Client(base_url=srv.url, timeout=REQUEST_TIMEOUT_S) as client:
                for _ in range(10_000):
                    if stop.is_set():
                        return
                    started = time.monotonic()
                    try:
                        r = client.get(path)
                        answer = Answer(r.status_code, "", time.monotonic() - started, "" if r.status_code == 200 else r.text[:300])
                    except httpx.HTTPError as exc:
                        answer = Answer(0, "", time.monotonic() - started, repr(exc))
                    with lock:
                        reads.append(answer)
                        read_spans.append((started, time.monotonic()))
                    time.sleep(0.05)

        read_spans: list[tuple[float, float]] = []
        threads = [threading.Thread(target=buyer, args=(n,), daemon=True) for n in range(BUYERS)]
        threads += [threading.Thread(target=reader, args=(path,), daemon=True) for path in read_paths(perf_id)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 60
            while len(answers) < 2 * BUYERS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(answers) >= 2 * BUYERS, "the buyers are placing orders before the crash"
            before_crash = len(answers)
            pg.crash()  # every backend killed mid-statement; the port refuses connections
            crashed_at = time.monotonic()
            time.sleep(OUTAGE_S)
            pg.resume()  # crash recovery, then the same data
            back_at = time.monotonic()
            outage = back_at - crashed_at
            deadline = time.monotonic() + 60
            while len(answers) < before_crash + 2 * BUYERS and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            for t in threads:
                t.join(REQUEST_TIMEOUT_S + 10)
        log = srv.log_tail(100_000)

    failures = [a for a in answers if a.status != 201]
    assert not failures, f"{len(failures)} of {len(answers)} buyers did not get 201: {failures[:5]}"
    bad_reads = [a for a in reads if a.status != 200]
    assert reads and not bad_reads, f"the storefront failed {len(bad_reads)} of {len(reads)} times: {bad_reads[:5]}"
    during = [(start, end) for start, end in read_spans if start < back_at and end > crashed_at]
    assert during, "some reads were in flight while PostgreSQL was down"
    # The crash really hit requests: they waited for the database and completed.
    assert log.count(RETRIED) >= 1, log[-3000:]
    slowest = max(a.seconds for a in answers)
    assert slowest >= OUTAGE_S * 0.5, f"no order waited through the outage ({slowest:.1f} s, outage {outage:.1f} s)"

    held = stored(perf_id)
    tokens = [a.token for a in answers]
    assert len(set(tokens)) == len(tokens), "every 201 is its own order"
    assert sorted(held["tokens"]) == sorted(tokens), "every confirmed order is stored, and nothing else"  # type: ignore[type-var]
    assert held["payments"] == {t: 1 for t in tokens}, "one payment per order"
    assert held["tickets"] == held["counter"] == 2 * len(tokens)
    print(f"\nride-through: {len(answers)} orders ({before_crash} before the crash), outage {outage:.1f} s, "
          f"slowest order {slowest:.1f} s, {log.count(RETRIED)} requests retried, {len(reads)} reads ({len(during)} during the outage)")


@pytest.fixture(scope="module")
def commit_dropper(cluster: Cluster) -> Iterator[tuple[CommitDropper, LiveServer]]:
    """gunicorn whose database connections pass through a proxy that can lose a COMMIT's answer."""
    with CommitDropper(cluster.pg.port) as proxy:
        url = cluster.url.replace(f":{cluster.pg.port}/", f":{proxy.port}/")
        env = {"DATABASE_RIDE_THROUGH_S": "10", "LOG_LEVEL": "WARNING"}
        with LiveServer(url, workers=1, migrate=False, env=env) as srv:
            yield proxy, srv


PAYMENT_INSERT = b'INSERT INTO "payments_payment"'


def test_an_in_doubt_commit_is_answered_as_the_original_order(cluster: Cluster, commit_dropper) -> None:  # noqa: ANN001
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order

    proxy, srv = commit_dropper
    perf_id, adult_id = make_show(capacity=20, name="in-doubt")
    key = f"in-doubt-{uuid.uuid4().hex}"
    proxy.arm(PAYMENT_INSERT)
    r = httpx.post(srv.url + "/api/v1/orders", json=order_payload(perf_id, adult_id, 2), headers={"Idempotency-Key": key}, timeout=REQUEST_TIMEOUT_S)
    assert proxy.dropped.is_set(), "the order's COMMIT went through and its answer was lost"
    assert r.status_code == 201, r.text[:500]
    held = stored(perf_id)
    assert held["tokens"] == [r.json()["token"]], "the answer is the order committed in doubt, and it is the only one"
    assert held["payments"] == {r.json()["token"]: 1}
    assert held["tickets"] == held["counter"] == 2
    assert Order.objects.using(ALIAS).get(idempotency_key=key).token == r.json()["token"]
    assert Payment.objects.using(ALIAS).filter(order__idempotency_key=key).count() == 1
    assert RETRIED in srv.log_tail(100_000)


def test_an_in_doubt_order_without_a_key_is_not_placed_again(cluster: Cluster, commit_dropper) -> None:  # noqa: ANN001
    proxy, srv = commit_dropper
    perf_id, adult_id = make_show(capacity=20, name="no-key")
    proxy.arm(PAYMENT_INSERT)
    r = httpx.post(srv.url + "/api/v1/orders", json=order_payload(perf_id, adult_id, 2), timeout=REQUEST_TIMEOUT_S)
    assert proxy.dropped.is_set()
    # Nothing tells this request from a new one: it is answered "try again" at once, and the
    # order it did commit exists once (what the patron finds in their email).
    assert r.status_code == 503 and r.headers["Retry-After"]
    held = stored(perf_id)
    assert len(held["tokens"]) == 1 and held["tickets"] == 2  # type: ignore[arg-type]


def test_readiness_says_reconnecting_for_the_budget_then_not_ready(cluster: Cluster) -> None:
    """HAProxy keeps a server whose database is failing over (its requests are waiting), and
    takes it out once the outage outlasts the ride-through."""
    budget = 4
    with LiveServer(cluster.url, workers=1, migrate=False, env={"DATABASE_RIDE_THROUGH_S": str(budget)}) as srv:
        assert httpx.get(srv.url + "/readyz", timeout=10).json()["database"] == "ok"
        cluster.pg.crash()
        try:
            stopped_at = time.monotonic()
            answers: list[tuple[float, int, str]] = []
            deadline = stopped_at + budget + 10
            while time.monotonic() < deadline:
                r = httpx.get(srv.url + "/readyz", timeout=10)
                answers.append((time.monotonic() - stopped_at, r.status_code, r.json()["database"]))
                if r.status_code == 503:
                    break
                time.sleep(0.25)
        finally:
            cluster.pg.resume()
        recovered = False
        for _ in range(100):
            recovered = httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
            if recovered:
                break
            time.sleep(0.2)
    assert answers[0][1:] == (200, "reconnecting"), answers
    assert answers[-1][1:] == (503, "unreachable"), answers
    assert all(status == 200 for _, status, _ in answers[:-1]), answers
    assert recovered, "ready again once the database is back"
