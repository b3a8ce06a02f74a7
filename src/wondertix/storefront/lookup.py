""""Find my tickets": a patron who lost the confirmation asks for links to their orders.

The request never looks for orders. It checks the caps, records the lookup and queues one
email to the address (ops.outbox); the jobs program renders it later and finds the orders
then (`sales.notifications.order_links_message`: nothing is sent to an address with no
orders). So the answer and the work done — the same statements, the same rows written — are
the same for a known and an unknown address, and the page cannot be used to learn whether
someone has bought tickets here.

Caps, per hour: TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR for one address (a patron cannot be
flooded with mail; more requests get the same page and no email), and
TICKET_LOOKUPS_PER_CLIENT_PER_HOUR for one client address (one connection cannot mail many
addresses; it is refused with 429 and told when to try again).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.sales import errors
from wondertix.storefront.models import TicketLookup

WINDOW = timedelta(hours=1)
KEPT = timedelta(days=1)


@dataclass(frozen=True)
class LookupResult:
    emailed: bool  # an email was queued (False: this address asked too often this hour)


def address_digest(email: str) -> str:
    """A keyed digest of the normalized address: counts requests without keeping the address."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, b"ticket-lookup:" + email.strip().lower().encode(), hashlib.sha256).hexdigest()


def _recent(count_on: dict[str, object], since: datetime) -> dict[str, object]:
    return TicketLookup.objects.filter(created_at__gt=since, **count_on).aggregate(n=Count("id"), first=Min("created_at"))


def request_ticket_links(email: str, *, client: str | None, now: datetime | None = None) -> LookupResult:
    """Queue "links to your orders" for `email` (already checked to be an address)."""
    now = now or timezone.now()
    since = now - WINDOW
    digest = address_digest(email)
    with transaction.atomic():
        client_cap = settings.TICKET_LOOKUPS_PER_CLIENT_PER_HOUR
        if client and client_cap > 0:
            recent = _recent({"client_address": client}, since)
            if int(recent["n"]) >= client_cap:  # type: ignore[call-overload]
                first: datetime = recent["first"]  # type: ignore[assignment]
                wait = max(1, math.ceil((first + WINDOW - now).total_seconds()))
                raise errors.too_many(
                    "too_many_lookups",
                    f"Too many ticket lookups from your connection. Please try again in {math.ceil(wait / 60)} minutes.",
                    retry_after=wait,
                )
        address_cap = settings.TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR
        emailed = address_cap <= 0 or int(_recent({"address_digest": digest}, since)["n"]) < address_cap  # type: ignore[call-overload]
        row = outbox.queue_to_address(OutboxEmail.ORDER_LINKS, email.strip()) if emailed else None
        TicketLookup.objects.create(address_digest=digest, client_address=client or None, email=row)
        # Rows older than any cap's window count for nothing: one indexed delete keeps the
        # table to about a day of requests (the same statement whatever the address).
        TicketLookup.objects.filter(created_at__lt=now - KEPT).delete()
    return LookupResult(emailed=emailed)
