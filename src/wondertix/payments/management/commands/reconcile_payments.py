"""`wondertix reconcile_payments`: settle Stripe payments whose webhook never arrived, and
refunds and exchanges left pending (a crash between the provider call and its commit).

Run it periodically (every 15 minutes is plenty). Stripe payments are only looked at where
Stripe is configured, and only pages that expired more than a few minutes ago, so it never
races a patron; refunds are completed with the same provider keys, so they go out once.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from wondertix.payments import terminal
from wondertix.payments.services import reconcile_stale_checkouts
from wondertix.sales.exchanges import reconcile_exchanges
from wondertix.sales.refund_settlement import reconcile_refunds


class Command(BaseCommand):
    help = "Complete refunds left pending, and settle Stripe orders whose payment page expired without a webhook."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, default=200, help="At most this many orders per run.")

    def handle(self, *args: Any, **options: Any) -> None:
        out: dict[str, Any] = {}
        refunds = reconcile_refunds(limit=options["limit"])
        if refunds:
            out["refunds"] = refunds
        exchanges = reconcile_exchanges(limit=options["limit"])
        if exchanges:
            out["exchanges"] = exchanges
        if not settings.STRIPE_SECRET_KEY:
            out["skipped"] = "STRIPE_SECRET_KEY is not set"
        else:
            out.update(reconcile_stale_checkouts(limit=options["limit"]))
            out.update(terminal.reconcile(limit=options["limit"]))
        self.stdout.write(json.dumps(out, sort_keys=True))
