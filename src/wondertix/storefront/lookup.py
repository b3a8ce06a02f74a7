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

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.storefront import ratelimit
from wondertix.storefront.models import TicketLookup


@dataclass(frozen=True)
class LookupResult:
    emailed: bool  # an email was queued (False: this address asked too often this hour)


def address_digest(email: str) -> str:
    return ratelimit.address_digest("ticket-lookup", email)


def request_ticket_links(email: str, *, client: str | None, now: datetime | None = None) -> LookupResult:
    """Queue "links to your orders" for `email` (already checked to be an address)."""
    now = now or timezone.now()
    digest = address_digest(email)
    with transaction.atomic():
        ratelimit.check_client(TicketLookup, client, settings.TICKET_LOOKUPS_PER_CLIENT_PER_HOUR, now,
                               code="too_many_lookups", what="ticket lookups")
        emailed = ratelimit.address_allowed(TicketLookup, digest, settings.TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR, now)
        row = outbox.queue_to_address(OutboxEmail.ORDER_LINKS, email.strip()) if emailed else None
        TicketLookup.objects.create(address_digest=digest, client_address=client or None, email=row)
        ratelimit.forget_old(TicketLookup, now)
    return LookupResult(emailed=emailed)
