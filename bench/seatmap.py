"""Server time of a 2,000-seat seat map (and best available) on PostgreSQL.

Drives GET /api/v1/performances/{id}/seats and /best-seats, and the storefront page a phone
opens (/performances/{id}/: the seat list seatmap.js draws the map from), through Django's full handler
(middleware, django-ninja, the seating service, JSON) in-process with the test client, against
a throwaway PostgreSQL 15 with a 2,000-seat chart, a third of it sold and some held — so
the figure is the server's time, without network or a phone's rendering. Prints latency
percentiles, CPU, statements and the size of the answer (raw and gzip).

    .venv/bin/python bench/seatmap.py --requests 100 [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.support.liveserver import app_env, manage  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402
from tests.support.seating import chart_document  # noqa: E402

# 4 sections x 20 rows x 25 seats = 2,000 seats.
SECTIONS = [("Orchestra Left", "Orchestra", 20, 25), ("Orchestra Right", "Orchestra", 20, 25),
            ("Mezzanine", "Mezzanine", 20, 25), ("Balcony", "Balcony", 20, 25)]


def setup_show() -> int:
    """A 2,000-seat performance: every third seat sold, every seventh held."""
    from datetime import timedelta

    from django.utils import timezone

    from wondertix.catalog import chartfile, seating
    from wondertix.catalog.models import Event, Performance, PriceType, Seat
    from wondertix.sales.models import Hold, HoldLine, Order, SeatClaim, Ticket

    chart = chartfile.save(chartfile.parse_json(json.dumps(chart_document(venue="Bench Hall", name="2000", sections=SECTIONS))))
    event = Event.objects.create(title="Seat map bench", slug="seat-map-bench", active=True)
    prices = {c.pk: PriceType.objects.create(event=event, name=c.name, price_cents=3000, seat_category=c) for c in chart.categories.all()}
    perf = seating.use_chart(Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=7), capacity=1), chart)
    seats = list(Seat.objects.filter(section__chart=chart).order_by("pk"))
    order = Order.objects.create(status=Order.PAID)
    sold = [s for i, s in enumerate(seats) if i % 3 == 0]
    tickets = Ticket.objects.bulk_create(Ticket(order=order, performance=perf, price_type=prices[s.category_id], price_cents=3000, seat=s) for s in sold)
    SeatClaim.objects.bulk_create(SeatClaim(performance=perf, seat=t.seat, ticket=t) for t in tickets)
    expires = timezone.now() + timedelta(hours=1)
    hold = Hold.objects.create(expires_at=expires)
    held = [s for i, s in enumerate(seats) if i % 7 == 0 and i % 3 != 0]
    line = HoldLine.objects.create(hold=hold, performance=perf, price_type=next(iter(prices.values())), quantity=len(held), unit_price_cents=3000, expires_at=expires)
    SeatClaim.objects.bulk_create(SeatClaim(performance=perf, seat=s, hold_line=line, expires_at=expires) for s in held)
    Performance.objects.filter(pk=perf.pk).update(tickets_sold=len(sold))
    return perf.pk


def measure(client, url: str, n: int, **headers: str) -> dict:  # noqa: ANN001
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):  # warm up: imports, connection, caches
        client.get(url, **headers)
    wall, cpu = [], []
    for _ in range(n):
        w0, c0 = time.perf_counter(), time.process_time()
        r = client.get(url, **headers)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
        assert r.status_code == 200, r.content[:300]
    with CaptureQueriesContext(connection) as q:
        r = client.get(url, **headers)
    raw = gzip.decompress(r.content) if r.get("Content-Encoding") == "gzip" else r.content
    wall.sort()
    return {
        "url": url, "requests": n,
        "p50_ms": round(statistics.median(wall), 1), "p95_ms": round(wall[int(0.95 * (n - 1))], 1), "max_ms": round(wall[-1], 1),
        "app_cpu_ms": round(statistics.median(cpu), 1), "statements": len(q.captured_queries),
        "bytes": len(raw), "gzip_bytes": len(r.content) if r.get("Content-Encoding") == "gzip" else len(gzip.compress(raw)),
        "sent_compressed": r.get("Content-Encoding") == "gzip",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with PgCluster(prefix="wtx-seatmap-") as pg, tempfile.TemporaryDirectory(prefix="wtx-seatmap-static-") as static:
        url = pg.create_database("wondertix")
        os.environ.update(app_env(url, EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend", STATIC_ROOT=static))
        manage(url, "migrate", "--noinput")
        manage(url, "collectstatic", "--noinput", "-v", "0")  # DEBUG is off: the page needs the manifest
        import django

        django.setup()
        from django.test import Client

        perf_id = setup_show()
        client = Client(HTTP_HOST="127.0.0.1")
        results = [
            measure(client, f"/api/v1/performances/{perf_id}/seats", args.requests),
            measure(client, f"/api/v1/performances/{perf_id}/best-seats?quantity=4", args.requests),
            # The storefront page a phone opens: the seat list (the form) that seatmap.js draws from.
            measure(client, f"/performances/{perf_id}/", args.requests, HTTP_ACCEPT_ENCODING="gzip"),
            measure(client, f"/api/v1/performances/{perf_id}/seats", args.requests, HTTP_ACCEPT_ENCODING="gzip"),
        ]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"2,000-seat chart, {args.requests} requests each (server time, in-process, PostgreSQL 15):")
    for r in results:
        print(f"  {r['url']:<48} p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  max {r['max_ms']} ms  "
              f"app CPU {r['app_cpu_ms']} ms  {r['statements']} statements  {r['bytes']:,} bytes ({r['gzip_bytes']:,} gzip"
              f"{', sent so' if r['sent_compressed'] else ''})")


if __name__ == "__main__":
    main()
