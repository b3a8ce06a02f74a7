""""Find my tickets": how long the server takes to answer a known and an unknown address.

Against a throwaway PostgreSQL, through Django's full handler (the test client: middleware,
CSRF, the form, the lookup service, the page), it asks for an address that has orders and
one that has none, alternating, N times each, and prints the percentiles of each and the
statements each request ran. The two should be one timing class: the request never reads
orders (storefront.lookup). Also prints what the jobs program then spends rendering the
links email for the known address. Figures to read, no pass/fail.

    .venv/bin/python bench/find_tickets.py --requests 300
    .venv/bin/python bench/find_tickets.py --page sign-in   # the patron sign-in link request
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench", ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.support.liveserver import app_env, manage  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {pick(0.5):6.2f} ms  p90 {pick(0.9):6.2f} ms  p99 {pick(0.99):6.2f} ms  mean {statistics.fmean(ordered) * 1000:6.2f} ms"


PAGES = {"find-tickets": "/tickets/find/", "sign-in": "/account/sign-in/"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300, help="requests per address (bounded)")
    ap.add_argument("--orders", type=int, default=5, help="orders the known address has")
    ap.add_argument("--page", choices=sorted(PAGES), default="find-tickets", help="which form to ask (the same measurement)")
    args = ap.parse_args()
    path = PAGES[args.page]
    with PgCluster(prefix="wtx-lookup-") as pg, tempfile.TemporaryDirectory(prefix="wtx-lookup-static-") as static:
        url = pg.create_database("wondertix")
        os.environ.update(app_env(url, EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", STATIC_ROOT=static,
                                  TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR="0", TICKET_LOOKUPS_PER_CLIENT_PER_HOUR="0",
                                  PATRON_SIGN_INS_PER_ADDRESS_PER_HOUR="0", PATRON_SIGN_INS_PER_CLIENT_PER_HOUR="0"))
        manage(url, "migrate", "--noinput")
        manage(url, "collectstatic", "--noinput", "-v", "0")  # DEBUG is off: pages need the manifest
        import django

        django.setup()
        from datetime import timedelta

        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from wondertix.catalog.models import Event, Performance, PriceType
        from wondertix.payments.providers.base import PaymentDetails
        from wondertix.sales.notifications import order_links_message
        from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

        event = Event.objects.create(title="Bench show", slug="bench-show", active=True)
        adult = PriceType.objects.create(event=event, name="Adult", price_cents=2500)
        perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=7), capacity=1000)
        card = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")
        for _ in range(args.orders):
            sell([LineRequest(perf.pk, adult.pk, 2)], CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="L", email="ada@example.org"), payment=card))

        client = Client(HTTP_HOST="127.0.0.1")
        client.get(path)
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        statements: dict[str, int] = {}
        for i in range(args.requests):
            for name, email in (("known", "ada@example.org"), ("unknown", f"nobody{i}@example.org")):
                with CaptureQueriesContext(connection) as queries:
                    start = time.perf_counter()
                    response = client.post(path, {"email": email}, REMOTE_ADDR="198.51.100.7")
                    times[name].append(time.perf_counter() - start)
                assert response.status_code == 200, response.status_code
                statements[name] = len(queries.captured_queries)
        for name in ("known", "unknown"):
            print(f"{name:8s} {percentiles(times[name])}  statements {statements[name]}")
        if args.page != "find-tickets":
            return
        start = time.process_time()
        for _ in range(20):
            order_links_message("ada@example.org")
        print(f"links email for {args.orders} orders (jobs program): {(time.process_time() - start) * 50:.2f} ms CPU to render")


if __name__ == "__main__":
    main()
