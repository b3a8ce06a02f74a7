"""The on-sale rush at 10x overload, through HAProxy, on prd as the spec declares it.

1,000 buyers press Buy at once for a performance of 300 seats. Every buyer gets an answer —
201 (sold), 409 sold_out, or 503/429 with Retry-After (then waits that long and tries again,
a bounded number of times, with the same Idempotency-Key) — never a timeout, a reset or a 500;
exactly 300 tickets are sold; and prd's busy servers are never mistaken for dead ones.

Then prd goes down with its database: bak (which shares that database) must not serve 500s;
patrons get HAProxy's "very busy" page instead, and prd comes back.

Every buyer connects from its own loopback address (127.0.0.0/8 only), as patrons do from
theirs; every loop is bounded. The figures are printed and written to var/deploy-figures.json.
"""

from __future__ import annotations

import asyncio
import json
import resource
import ssl
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from deploy_support import GOOD_CARD, Site, buyer, poll

from wtx.backends.local import haproxy as hap

pytestmark = pytest.mark.slow

BUYERS = 1_000
SEATS = 300
MAX_ATTEMPTS = 8          # per buyer: the first try and up to 7 retries after Retry-After
ANSWER_TIMEOUT = 60.0     # seconds a client waits for one answer before calling it a timeout

CREATE_PERFORMANCE = """
import uuid
from datetime import timedelta
from django.utils import timezone
from wondertix.catalog.models import Event, Performance, PriceType
event = Event.objects.create(title="The Rush", slug="the-rush-" + uuid.uuid4().hex[:8], active=True)
price = PriceType.objects.create(event=event, name="Adult", price_cents=2500)
perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=30), capacity=SEATS)
print(perf.pk, price.pk)
"""

COUNT_SOLD = """
from wondertix.catalog.models import Performance
from wondertix.sales.models import Ticket
perf = Performance.objects.get(pk=PERF)
print(perf.tickets_sold, Ticket.objects.filter(performance_id=PERF).count())
"""


def _source(n: int) -> str:
    """Buyer n's own loopback address: 127.1.x.y."""
    return f"127.1.{n // 250}.{n % 250 + 1}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


@dataclass
class Rush:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    sold: dict[str, str] = field(default_factory=dict)  # idempotency key -> order token
    sold_out: int = 0
    gave_up: int = 0          # still 503/429 (with Retry-After) after MAX_ATTEMPTS
    retried_buyers: int = 0
    retries: int = 0
    last_sale_at: float = 0.0


async def _ask(site: Site, ctx: ssl.SSLContext | None, method: str, path: str, body: dict[str, Any],
               headers: dict[str, str], source: str) -> Answer:
    """One HTTP/1.1 request on its own connection (Connection: close), to 127.0.0.1 only."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", site.port, ssl=ctx, server_hostname=site.host if ctx else None,
        local_addr=(source, 0),
    )
    try:
        data = json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {site.host}:{site.port}", "Connection: close",
                "Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1."):
        raise ConnectionError(f"no HTTP answer ({len(raw)} bytes)")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    if "chunked" in hdrs.get("transfer-encoding", ""):
        payload = _unchunk(payload)
    return Answer(status, hdrs, payload, time.monotonic() - started)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


async def _buyer(n: int, site: Site, ctx: ssl.SSLContext | None, order: dict[str, Any], rush: Rush,
                 start: asyncio.Event, t0: float) -> None:
    key = f"rush-{uuid.uuid4().hex}"
    await start.wait()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        what = f"buyer {n} attempt {attempt}"
        try:
            answer = await asyncio.wait_for(
                _ask(site, ctx, "POST", "/api/v1/orders", order, {"Idempotency-Key": key}, _source(n)),
                ANSWER_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none ignored
            rush.failures.append(f"{what}: {type(exc).__name__}: {exc}")
            rush.statuses["error"] = rush.statuses.get("error", 0) + 1
            return
        rush.latencies.append(answer.seconds)
        rush.statuses[str(answer.status)] = rush.statuses.get(str(answer.status), 0) + 1
        if answer.status == 201:
            rush.sold[key] = json.loads(answer.body)["token"]
            rush.last_sale_at = max(rush.last_sale_at, time.monotonic() - t0)
            return
        if answer.status == 409:
            code = json.loads(answer.body).get("code")
            if code != "sold_out":
                rush.failures.append(f"{what}: 409 {code}")
            rush.sold_out += 1
            return
        if answer.status in (429, 503):
            retry_after = answer.headers.get("retry-after", "")
            if not retry_after.isdigit():
                rush.failures.append(f"{what}: {answer.status} without Retry-After")
                return
            if attempt == MAX_ATTEMPTS:
                rush.gave_up += 1
                return
            if attempt == 1:
                rush.retried_buyers += 1
            rush.retries += 1
            await asyncio.sleep(int(retry_after))
            continue
        rush.failures.append(f"{what}: {answer.status} {answer.body[:200]!r}")
        return


def _enough_file_descriptors(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def _rush(site: Site, perf: int, price_type: int) -> tuple[Rush, float]:
    ctx = ssl.create_default_context(cafile=str(site.cafile)) if site.tls else None
    rush = Rush()
    start = asyncio.Event()
    t0 = time.monotonic()
    tasks = []
    for n in range(BUYERS):
        order = {"lines": [{"performance_id": perf, "price_type_id": price_type, "quantity": 1}],
                 "buyer": buyer(n), "card": GOOD_CARD}
        tasks.append(asyncio.create_task(_buyer(n, site, ctx, order, rush, start, t0)))
    await asyncio.sleep(0)
    t0 = time.monotonic()
    start.set()
    # Bounded: every buyer's attempts are bounded; this bounds the whole rush once more.
    limit = MAX_ATTEMPTS * (ANSWER_TIMEOUT + 10)
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    if pending:
        rush.failures.append(f"{len(pending)} buyers still waiting after {limit:.0f} s")
    return rush, time.monotonic() - t0


def _server_rows(stack: Any) -> dict[str, dict[str, Any]]:
    rows = {}
    for row in stack.backend.runtime.stats():
        if row.get("pxname") == hap.backend_name("prd") and row.get("svname") not in ("FRONTEND", "BACKEND"):
            rows[str(row["svname"])] = row
    return rows


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_a_thousand_buyers_for_three_hundred_seats_sell_exactly_three_hundred_and_all_get_an_answer(stack):
    prd = stack.spec.env("prd")
    assert prd.server_maxconn == prd.app.replicas, "each server gets one request per worker"
    code = CREATE_PERFORMANCE.replace("SEATS", str(SEATS))
    perf, price_type = (int(x) for x in stack.manage("prd", "shell", "-c", code).stdout.split()[-2:])
    site = stack.site("prd")
    before = _server_rows(stack)

    _enough_file_descriptors(BUYERS * 2 + 256)
    rush, seconds = asyncio.run(_rush(site, perf, price_type))

    after = _server_rows(stack)
    tickets_sold, tickets = (int(x) for x in stack.manage(
        "prd", "shell", "-c", COUNT_SOLD.replace("PERF", str(perf))).stdout.split()[-2:])
    figures = {
        "buyers": BUYERS,
        "seats": SEATS,
        "workers_per_server": prd.app.replicas,
        "maxconn_per_server": prd.server_maxconn,
        "queue_timeout_s": prd.front_door.queue_timeout_s,
        "retry_after_s": prd.front_door.retry_after_s,
        "answers": dict(sorted(rush.statuses.items())),
        "sold": len(rush.sold),
        "sold_out_answers": rush.sold_out,
        "buyers_who_retried": rush.retried_buyers,
        "retries": rush.retries,
        "gave_up_after_retries": rush.gave_up,
        "answer_latency_p50_s": round(statistics.median(rush.latencies), 3) if rush.latencies else None,
        "answer_latency_p99_s": round(_pct(rush.latencies, 0.99), 3),
        "answer_latency_max_s": round(max(rush.latencies, default=0.0), 3),
        "sell_out_seconds": round(rush.last_sale_at, 2),
        "rush_seconds": round(seconds, 2),
        "prd_servers_marked_down": {k: int(after[k]["chkdown"] or 0) - int(before[k]["chkdown"] or 0) for k in after},
    }
    stack.figures["overload"] = figures
    print("overload figures:", json.dumps(figures, indent=2))

    assert rush.failures == [], rush.failures[:10]
    assert len(rush.sold) == SEATS, figures
    assert tickets_sold == tickets == SEATS
    assert len(set(rush.sold.values())) == SEATS  # one order per buyer who got a seat
    assert len(rush.sold) + rush.sold_out + rush.gave_up == BUYERS
    # A busy server was never taken for a dead one: no check failed, bak took no request.
    for name, row in after.items():
        assert int(row["chkdown"] or 0) == int(before[name]["chkdown"] or 0), f"{name} was marked down"
        if name.startswith("bak_"):
            assert int(row["stot"] or 0) == int(before[name]["stot"] or 0), f"{name} took prd's traffic"


def test_with_prd_and_its_database_down_bak_serves_no_500_and_patrons_get_the_busy_page(stack):
    site = stack.site("prd")
    retry_after = stack.spec.env("prd").front_door.retry_after_s
    assert site.get("/readyz").status == 200
    seen: list[int] = []
    try:
        stack.backend.down(["prd"])
        check = stack.spec.defaults.health_check

        # bak rides through a database outage up to database.ride_through_s: its requests wait
        # for the database and its readiness says "reconnecting" meanwhile (a failover would be
        # over by then). This outage lasts: past the budget bak answers at once and reports not
        # ready.
        ride_through = stack.spec.env("bak").database.ride_through_s

        def busy() -> bool:
            # Until HAProxy has no server left, bak itself answers: after waiting out its
            # ride-through, its own "one moment" 503 (the database did not answer), never a 500.
            reply = site.get("/", timeout=ride_through + 15)
            seen.append(reply.status)
            return reply.status == 503 and "Very busy — you keep your place" in reply.text

        # bak's readiness check fails `fall` times in a row (fall x inter) once the outage is
        # older than the ride-through, then no server is up.
        assert poll(busy, timeout=ride_through + check.fall * check.inter_ms / 1000 + 15, interval=0.2), seen[-5:]
        page = site.get("/")
        api = site.get("/api/v1/events")
        later = [site.get("/").status for _ in range(10)]
    finally:
        stack.backend.up(["prd"])
    stack.figures["db_down_statuses_until_busy_page"] = seen
    assert 500 not in seen, seen
    assert page.status == 503 and page.headers["retry-after"] == str(retry_after)
    assert "Very busy — you keep your place" in page.text
    assert api.status == 503 and api.json()["code"] == "busy"
    assert later == [503] * 10
    assert poll(lambda: site.get("/readyz").status == 200, timeout=60, interval=0.5)
