"""Profile one API order in-process (cProfile) against a throwaway PostgreSQL.

Where onsale.py says how fast, this says where the time goes: it drives POST /api/v1/orders
through Django's full handler (middleware, django-ninja, the sale service, the response)
with the test client, N times, and prints the hottest functions and the SQL of one order.

    .venv/bin/python bench/profile_order.py --orders 300 --top 40
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench", ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from onsale import body_for, make_performance  # noqa: E402
from tests.support.liveserver import app_env, manage  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402


def _area(filename: str) -> str:
    if "site-packages/" in filename:
        parts = filename.split("site-packages/", 1)[1].split("/")
        return "/".join(parts[:3] if parts[0] == "django" else parts[:1])
    if "/src/wondertix/" in filename:
        return "wondertix/" + filename.split("/src/wondertix/", 1)[1]
    return "python stdlib / builtins" if filename.startswith(("/root", "/usr", "~", "<")) else filename


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--sort", default="cumulative")
    args = ap.parse_args()
    with PgCluster(prefix="wtx-prof-") as pg:
        url = pg.create_database("wondertix")
        os.environ.update(app_env(url, EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"))
        manage(url, "migrate", "--noinput")
        import django

        django.setup()
        from django.db import connection, reset_queries
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        perf_id, adult_id = make_performance(args.orders * 2 + 100, "Profile")
        make = body_for(perf_id, adult_id, 2, "prof")
        client = Client(HTTP_HOST="127.0.0.1")

        def order(i: int) -> None:
            r = client.post("/api/v1/orders", json.dumps(make(i)), content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"prof-key-{i:08d}")
            assert r.status_code == 201, r.content

        for i in range(20):  # warm caches, open the connection
            order(i)
        with CaptureQueriesContext(connection) as q:
            order(20)
        print(f"SQL of one order ({len(q.captured_queries)} statements as Django sends them):")
        for x in q.captured_queries:
            print("  ", x["sql"][:160])
        reset_queries()
        prof = cProfile.Profile(time.process_time)  # CPU time, not wall: waits on the database don't count
        started = time.process_time()
        prof.enable()
        for i in range(21, 21 + args.orders):
            order(i)
        prof.disable()
        cpu = time.process_time() - started
        print(f"\n{args.orders} orders: {cpu * 1000 / args.orders:.2f} ms CPU per order in the app process (under the profiler)")
        stats = pstats.Stats(prof)
        by_area: dict[str, float] = {}
        for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            by_area[_area(filename)] = by_area.get(_area(filename), 0.0) + tottime
        print("CPU by area (own time, ms per order, under the profiler):")
        for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {seconds * 1000 / args.orders:7.2f}  {area}")
        stats.sort_stats(args.sort).print_stats(args.top)
        connection.close()


if __name__ == "__main__":
    main()
