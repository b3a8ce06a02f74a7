"""`wondertix reconcile_payments`: settle Stripe payments whose webhook never arrived.

Run it periodically (every 15 minutes is plenty) where PAYMENT_PROVIDER is stripe. It only
acts on payment pages that expired more than a few minutes ago, so it never races a patron.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from wondertix.payments.services import reconcile_stale_checkouts


class Command(BaseCommand):
    help = "Ask Stripe about pending orders whose payment page expired without a webhook, and settle them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, default=200, help="At most this many orders per run.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.STRIPE_SECRET_KEY:
            self.stdout.write(json.dumps({"skipped": "STRIPE_SECRET_KEY is not set"}))
            return
        self.stdout.write(json.dumps(reconcile_stale_checkouts(limit=options["limit"]), sort_keys=True))
