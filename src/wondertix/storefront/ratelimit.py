"""Caps on requests that make the theater send mail to an address someone typed ("Find my
tickets", sign-in links): per address (a patron cannot be flooded with mail; more requests
get the same answer and no email) and per client address (one connection cannot mail many
addresses; refused with 429 and told when to try again).

Each request is one row of its own table (`address_digest`, `client_address`, `created_at`);
the caps count the rows of the last hour. The work is the same whatever the address, so
neither the answer nor its timing tells whether the address is known.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min

from wondertix.sales import errors

WINDOW = timedelta(hours=1)
KEPT = timedelta(days=1)


def address_digest(purpose: str, email: str) -> str:
    """A keyed digest of the normalized address: counts requests without keeping the address."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, purpose.encode() + b":" + email.strip().lower().encode(), hashlib.sha256).hexdigest()


def _recent(model: Any, since: datetime, **count_on: object) -> dict[str, Any]:
    return model.objects.filter(created_at__gt=since, **count_on).aggregate(n=Count("id"), first=Min("created_at"))


def check_client(model: Any, client: str | None, cap: int, now: datetime, *, code: str, what: str) -> None:
    """Refuse (429, with when to try again) a client that asked `cap` times this hour."""
    if not client or cap <= 0:
        return
    recent = _recent(model, now - WINDOW, client_address=client)
    if int(recent["n"]) >= cap:
        wait = max(1, math.ceil((recent["first"] + WINDOW - now).total_seconds()))
        raise errors.too_many(code, f"Too many {what} from your connection. Please try again in {math.ceil(wait / 60)} minutes.", retry_after=wait)


def address_allowed(model: Any, digest: str, cap: int, now: datetime) -> bool:
    """Whether this address may be mailed again this hour."""
    return cap <= 0 or int(_recent(model, now - WINDOW, address_digest=digest)["n"]) < cap


def forget_old(model: Any, now: datetime) -> None:
    """Rows older than any cap's window count for nothing: one indexed delete keeps the table
    to about a day of requests (the same statement whatever the address)."""
    model.objects.filter(created_at__lt=now - KEPT).delete()
