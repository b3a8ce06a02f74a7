"""Backup and restore figures for a seeded prd: pgBackRest full and incremental backup time and
size, and a point-in-time restore into a scratch cluster, end to end through wtx's code.

prd's cluster is set up the way `wtx up` sets it up (WAL archiving, pgBackRest config and
stanza) on a free port (tests/support/wtxclusters.py); the demo data is loaded and ORDERS
orders of 2 tickets are sold through the app's own sale service (order, tickets, payment,
audit entry each). Then: a full backup, ORDERS/5 more orders, an incremental backup, a
restore to the time between the last two orders into scratch, and a count of what it holds.

No pass/fail on time: figures to read (docs/operations.md "Measured").

    .venv/bin/python bench/backup_restore.py --orders 5000 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.support.liveserver import app_env, manage  # noqa: E402
from tests.support.wtxclusters import wtx_clusters  # noqa: E402

SELL = """
import os, uuid
from datetime import timedelta
from django.utils import timezone
from wondertix.catalog.models import Event, Performance, PriceType
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell
n = int(os.environ["ORDERS"])
event = Event.objects.create(title="Backup bench", slug="bench-" + uuid.uuid4().hex[:10], active=True)
pt = PriceType.objects.create(event=event, name="Adult", price_cents=2500, fee_cents=200)
perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=30), capacity=2 * n + 10)
card = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
for i in range(n):
    sell([LineRequest(perf.pk, pt.pk, 2)],
         CheckoutDetails(buyer=Buyer(first_name="Bench", last_name=f"Buyer{i}", email=f"b{i}@example.org"),
                         payment=PaymentDetails(**card)),
         idempotency_key=uuid.uuid4().hex)
"""


def sell_orders(url: str, n: int) -> float:
    started = time.monotonic()
    manage(url, "shell", "-c", SELL, env=app_env(url, ORDERS=str(n)), timeout=3600)
    return round(time.monotonic() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, object] = {"orders": args.orders}
    with wtx_clusters(prefix="wtx-bench-backup-") as clusters:
        b = clusters.backend
        cl = clusters.start("prd")
        url = clusters.url("prd")
        manage(url, "migrate", "--noinput")
        manage(url, "seed_demo")
        figures["sell_seconds"] = sell_orders(url, args.orders)
        full = b.db_backup("prd", "full")
        figures.update(full_seconds=full["wall_seconds"], database_mb=round(full["database_bytes"] / 1e6, 1),
                       full_stored_mb=round(full["repository_bytes"] / 1e6, 1))
        more = max(1, args.orders // 5)
        figures["more_orders"] = more
        sell_orders(url, more)
        incr = b.db_backup("prd", "incr")
        figures.update(incr_seconds=incr["wall_seconds"], incr_stored_mb=round(incr["repository_bytes"] / 1e6, 1))
        orders_then = int(cl.psql("SELECT count(*) FROM sales_order;", "wondertix_prd"))
        time.sleep(1.1)
        noted = datetime.now(UTC)
        time.sleep(1.1)
        sell_orders(url, 1)
        restored = b.db_restore("prd", noted.isoformat(), "scratch")
        figures["restore_seconds"] = restored["seconds"]
        from wtx.backends.local.postgres import Cluster

        scratch = Cluster(pgdata=Path(restored["data"]), sockdir=Path(restored["socket"]), port=restored["port"],
                          log_dir=Path(restored["log"]).parent, var_dir=b.var_dir)
        figures["orders_restored"] = int(scratch.psql("SELECT count(*) FROM sales_order;", "wondertix_prd"))
        figures["orders_before_noted_time"] = orders_then
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
