"""On-sale rush benchmark: N concurrent buyers against one performance, through the API.

Starts its own throwaway PostgreSQL 15 (fsync on) and gunicorn, creates one performance,
and lets N buyers (default 64) place orders of 2 tickets with the 4242 test card, each with
an Idempotency-Key. Prints orders/s, latency percentiles, CPU ms per order (gunicorn +
PostgreSQL, and the load generator separately), SQL statements per order and the oversold
count. A second run (sold-out rush) lets demand exceed the seats and prints oversold=0.

No pass/fail on time: these are figures to read and compare (docs/sale-path.md).

    .venv/bin/python bench/onsale.py                 # defaults: 64 buyers, 3000 orders
    .venv/bin/python bench/onsale.py --buyers 32 --orders 1000 --mode rush --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench", ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from loadgen import Run, buy, percentile  # noqa: E402
from tests.support.liveserver import LiveServer, app_env, manage  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


# ---------------------------------------------------------------------------- CPU accounting


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU (user+system) of a process, its live descendants, and the children it has reaped."""
    try:
        root = psutil.Process(root_pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        kids = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    for child in kids:
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass  # exited just now: its time shows up in the parent's children_* next read
    return total


def own_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


@dataclass
class CpuSample:
    app: float
    db: float
    loadgen: float


def sample(server: LiveServer, pg: PgCluster) -> CpuSample:
    assert server.proc is not None
    postmaster = int((pg.datadir / "postmaster.pid").read_text().splitlines()[0])
    return CpuSample(tree_cpu_seconds(server.proc.pid), tree_cpu_seconds(postmaster), own_cpu_seconds())


# ---------------------------------------------------------------------------- SQL statements


class Statements:
    """pg_stat_statements, filtered to the app's role and database."""

    def __init__(self, pg: PgCluster, database: str, role: str) -> None:
        import psycopg

        self.conn = psycopg.connect(pg.superuser_url(database), autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.role = role

    def reset(self) -> None:
        self.conn.execute("SELECT pg_stat_statements_reset()")

    def calls(self) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            """SELECT calls, query FROM pg_stat_statements s
               JOIN pg_roles r ON r.oid = s.userid
               WHERE r.rolname = %s AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               ORDER BY calls DESC""",
            (self.role,),
        ).fetchall()
        return [(int(c), q) for c, q in rows]

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------- the scenario


def make_performance(capacity: int, title: str) -> tuple[int, int]:
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType

    slug = f"bench-{uuid.uuid4().hex[:10]}"
    event = Event.objects.create(title=title, slug=slug, active=True)
    adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=30), capacity=capacity)
    return perf.pk, adult.pk


def count_tickets(performance_id: int) -> tuple[int, int, int]:
    from wondertix.catalog.models import Performance
    from wondertix.sales.models import Ticket

    perf = Performance.objects.get(pk=performance_id)
    tickets = Ticket.objects.filter(performance_id=performance_id, status=Ticket.VALID).count()
    return tickets, perf.tickets_sold, perf.capacity


def body_for(performance_id: int, price_type_id: int, tickets: int, tag: str):  # noqa: ANN201
    def make(i: int) -> dict[str, Any]:
        return {
            "lines": [{"performance_id": performance_id, "price_type_id": price_type_id, "quantity": tickets}],
            "buyer": {"first_name": "Bench", "last_name": f"Buyer {i}", "email": f"{tag}{i}@bench.example.org"},
            "card": CARD,
        }

    return make


@dataclass
class Figures:
    mode: str
    buyers: int
    attempted: int
    statuses: dict[str, int]
    orders_paid: int
    seconds: float
    orders_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms_per_order_app: float
    cpu_ms_per_order_db: float
    cpu_ms_per_order_total: float
    loadgen_cpu_ms_per_order: float
    sql_per_order: float | None
    sql_fk_checks_per_order: float | None
    load_average: str
    capacity: int
    tickets_in_db: int
    tickets_sold_counter: int
    tickets_in_responses: int
    oversold: int


def measure(
    mode: str, server: LiveServer, pg: PgCluster, stats: Statements | None, *, buyers: int, orders: int,
    seconds: float, tickets: int, capacity: int,
) -> tuple[Figures, list[tuple[int, str]]]:
    perf_id, adult_id = make_performance(capacity, f"Bench {mode}")

    def sold_out(status: int, payload: bytes) -> bool:
        return mode == "soldout" and status == 409

    if stats:
        stats.reset()
    before = sample(server, pg)
    run: Run = buy(server.url, buyers=buyers, orders=orders, seconds=seconds, make_body=body_for(perf_id, adult_id, tickets, mode), stop_on=sold_out)
    after = sample(server, pg)
    calls = stats.calls() if stats else []
    paid = [r for r in run.results if r.status == 201]
    in_db, counter, cap = count_tickets(perf_id)
    responses_tickets = sum(len(json.loads(r.body)["tickets"]) for r in paid)
    n = max(1, len(paid))
    # Per order: divide by every answered request in the sold-out rush (refusals cost CPU too).
    denom = n if mode == "rush" else max(1, len(run.results))
    lat = [r.seconds * 1000 for r in run.results if r.status in (201, 409)]
    figures = Figures(
        mode=mode,
        buyers=buyers,
        attempted=len(run.results),
        statuses={str(k): v for k, v in sorted(run.statuses().items())},
        orders_paid=len(paid),
        seconds=round(run.wall_seconds, 2),
        orders_per_s=round(len(paid) / run.wall_seconds, 1),
        p50_ms=round(percentile(lat, 50), 1),
        p95_ms=round(percentile(lat, 95), 1),
        p99_ms=round(percentile(lat, 99), 1),
        cpu_ms_per_order_app=round((after.app - before.app) * 1000 / denom, 2),
        cpu_ms_per_order_db=round((after.db - before.db) * 1000 / denom, 2),
        cpu_ms_per_order_total=round(((after.app - before.app) + (after.db - before.db)) * 1000 / denom, 2),
        loadgen_cpu_ms_per_order=round((after.loadgen - before.loadgen) * 1000 / denom, 2),
        sql_per_order=round(sum(c for c, q in calls if not _fk_check(q)) / denom, 1) if stats else None,
        sql_fk_checks_per_order=round(sum(c for c, q in calls if _fk_check(q)) / denom, 1) if stats else None,
        load_average=" ".join(f"{x:.1f}" for x in os.getloadavg()),
        capacity=cap,
        tickets_in_db=in_db,
        tickets_sold_counter=counter,
        tickets_in_responses=responses_tickets,
        oversold=max(0, in_db - cap) + abs(in_db - responses_tickets) + abs(in_db - counter),
    )
    return figures, calls


def _fk_check(query: str) -> bool:
    """PostgreSQL's own foreign-key checks (run by triggers, not sent by the app)."""
    return query.startswith("SELECT 1 FROM ONLY")


def report(f: Figures, calls: list[tuple[int, str]], denom: int, show_sql: bool) -> None:
    print(f"\n== {f.mode}: {f.buyers} concurrent buyers, one performance ({f.capacity} seats) ==")
    print(f"requests        {f.attempted}  answers {f.statuses}")
    print(f"orders paid     {f.orders_paid} in {f.seconds} s  ->  {f.orders_per_s} orders/s")
    print(f"latency         p50 {f.p50_ms} ms   p95 {f.p95_ms} ms   p99 {f.p99_ms} ms")
    what = "per paid order" if f.mode == "rush" else "per request"
    print(f"CPU {what:<14} app {f.cpu_ms_per_order_app} ms + db {f.cpu_ms_per_order_db} ms = {f.cpu_ms_per_order_total} ms")
    print(f"load generator  {f.loadgen_cpu_ms_per_order} ms CPU {what} (same 2 cores, not counted above)")
    if f.sql_per_order is not None:
        print(f"SQL statements  {f.sql_per_order} {what} sent by the app (+ {f.sql_fk_checks_per_order} foreign-key checks run by PostgreSQL)")
        if show_sql:
            for c, q in calls[:25]:
                print(f"   {c / denom:6.2f}  {' '.join(q.split())[:150]}")
    print(f"tickets         in db {f.tickets_in_db}, counter {f.tickets_sold_counter}, in 201 answers {f.tickets_in_responses}")
    print(f"oversold        {f.oversold}")
    print(f"load average    {f.load_average} (other work on the machine skews the figures)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--buyers", type=int, default=64)
    ap.add_argument("--orders", type=int, default=3000, help="orders to place in the rush (bounded)")
    ap.add_argument("--seconds", type=float, default=90, help="stop each run after this long at the latest")
    ap.add_argument("--tickets", type=int, default=2, help="tickets per order")
    ap.add_argument("--soldout-seats", type=int, default=2000, help="seats in the sold-out rush")
    ap.add_argument("--mode", choices=["rush", "soldout", "both"], default="both")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--worker-class", default="sync")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=200, help="orders placed before measuring")
    ap.add_argument("--no-statements", action="store_true", help="do not load pg_stat_statements")
    ap.add_argument("--show-sql", action="store_true", help="list the statements of an order")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON lines")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the app (repeatable)")
    args = ap.parse_args(argv)

    pg_settings = {} if args.no_statements else {"shared_preload_libraries": "'pg_stat_statements'", "pg_stat_statements.track": "top"}
    print(f"machine: {os.cpu_count()} CPUs; PostgreSQL 15 with fsync on; gunicorn {args.workers} x {args.worker_class} (threads {args.threads})")
    with PgCluster(settings=pg_settings, prefix="wtx-bench-") as pg:
        url = pg.create_database("wondertix")
        os.environ.update(app_env(url))
        manage(url, "migrate", "--noinput")
        import django

        django.setup()
        stats = None if args.no_statements else Statements(pg, "wondertix", "wondertix")
        # As wtx runs every environment: requests queue the confirmation and the jobs program
        # renders and sends it (its ticket PDF and calendar file are not sale-path work);
        # `--env OUTBOX_SEND_ON_COMMIT=true` measures the request sending it as well.
        env = {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "LOG_LEVEL": "WARNING", "OUTBOX_SEND_ON_COMMIT": "false"}
        env.update(dict(item.split("=", 1) for item in args.env))
        with LiveServer(url, workers=args.workers, worker_class=args.worker_class, threads=args.threads, migrate=False, env=env) as server:
            if args.warmup:
                perf_id, adult_id = make_performance(args.warmup * args.tickets + 10, "Bench warm-up")
                buy(server.url, buyers=args.buyers, orders=args.warmup, seconds=60, make_body=body_for(perf_id, adult_id, args.tickets, "warm"))
            results: list[Figures] = []
            if args.mode in ("rush", "both"):
                f, calls = measure(
                    "rush", server, pg, stats, buyers=args.buyers, orders=args.orders, seconds=args.seconds,
                    tickets=args.tickets, capacity=args.orders * args.tickets + 100,
                )
                results.append(f)
                if not args.json:
                    report(f, calls, max(1, f.orders_paid), args.show_sql)
            if args.mode in ("soldout", "both"):
                seats = args.soldout_seats
                f, calls = measure(
                    "soldout", server, pg, stats, buyers=args.buyers, orders=seats // args.tickets + args.buyers * 4,
                    seconds=args.seconds, tickets=args.tickets, capacity=seats,
                )
                results.append(f)
                if not args.json:
                    report(f, calls, max(1, f.attempted), args.show_sql)
            if args.json:
                for f in results:
                    print(json.dumps(asdict(f)))
        if stats:
            stats.close()
        from django.db import connections

        connections.close_all()
    bad = sum(f.oversold for f in results)
    if bad:
        print(f"\nOVERSOLD: {bad} (tickets beyond capacity or not matching the answers)")
        return 1
    codes = Counter(k for f in results for k in f.statuses if k not in ("201", "409"))
    if codes:
        print(f"\nunexpected answers: {dict(codes)}")
    return 0


if __name__ == "__main__":
    t0 = time.monotonic()
    rc = main()
    print(f"\n(bench took {time.monotonic() - t0:.0f} s)")
    sys.exit(rc)
