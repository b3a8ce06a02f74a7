"""No client may hoard seats: caps on what one client address holds, and how often it holds.

A hold costs nothing and keeps seats from everyone else for HOLD_MINUTES, so without a cap a
script can hold most of a house again and again. Patrons buying on the storefront or the
public API are counted by their client address (the one HAProxy reports, ops.middleware);
staff holds at the window (house seats, POS) are not capped. HAProxy's stick tables limit
request rates in front of the app; these caps are the app's own, enforced in the hold's
transaction so that concurrent requests of one client cannot slip past them together.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, Sum

from wondertix.sales import errors
from wondertix.sales.models import Hold, HoldLine

RATE_WINDOW = timedelta(minutes=1)
# pg_advisory_xact_lock(namespace, key): this namespace is the holds-per-client lock.
_LOCK_NAMESPACE = 0x57_54_48_43  # "WTHC"


def _serialize_client(client: str) -> None:
    """One hold at a time per client address, until the transaction ends. SQLite (dev) runs
    every write transaction alone already (BEGIN IMMEDIATE)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_NAMESPACE, client])


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def check_client_may_hold(client: str, seats: int, now: datetime) -> None:
    """Refuse (429 with retry_after) a hold that would put `client` over either cap. Runs
    inside the hold's transaction, before the performances are locked."""
    seat_cap = settings.HOLD_SEATS_PER_CLIENT
    rate_cap = settings.HOLDS_PER_CLIENT_PER_MINUTE
    if not client or (seat_cap <= 0 and rate_cap <= 0):
        return
    _serialize_client(client)
    if rate_cap > 0:
        recent = Hold.objects.filter(client_address=client, created_at__gt=now - RATE_WINDOW).aggregate(n=Count("id"), first=Min("created_at"))
        if recent["n"] >= rate_cap:
            raise errors.too_many(
                "too_many_holds",
                f"Too many requests to hold tickets from your connection ({rate_cap} a minute). Please wait a moment and try again.",
                retry_after=_seconds_until(recent["first"] + RATE_WINDOW, now),
            )
    if seat_cap > 0:
        held = HoldLine.objects.filter(
            hold__client_address=client, hold__consumed_at__isnull=True, expires_at__gt=now
        ).aggregate(n=Sum("quantity"), first=Min("expires_at"))
        already = held["n"] or 0
        if already + seats > seat_cap:
            raise errors.too_many(
                "too_many_seats_held",
                f"Your connection already holds {already} seat{'s' if already != 1 else ''}; at most {seat_cap} can be held at once. "
                "Complete or empty a cart first, or wait for a hold to expire.",
                retry_after=_seconds_until(held["first"], now) if already else 60,
                held=already, limit=seat_cap,
            )
