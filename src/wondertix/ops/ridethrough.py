"""Riding through a database failover: a request that lost its database waits and tries again.

During a failover the database address refuses or drops connections for a few seconds (a
PostgreSQL crash, a planned switchover: ~3.5 s) up to ~21 s (the leader's machine died), then
answers again with the same data. With DATABASE_RIDE_THROUGH_S > 0, a request that failed
because the database could not be reached is run again after a short, growing pause, until it
succeeds or the budget (counted from the request's arrival, or from the outage's start as this
process saw it, whichever is earlier) is spent; only then does the
patron get today's "try again shortly" 503 + Retry-After (ops.errors).

Which requests may run again (RETRY_WRITES below, docs/sale-path.md):

* reads (GET, HEAD, OPTIONS) — always;
* writes whose use case stores an idempotency key in the same transaction as what it creates:
  an API order, hold, refund or exchange sent with an `Idempotency-Key`, the storefront
  checkout (keyed by its hold), the storefront donation and ticket selection (keyed by the
  form: a nonce rendered with the page, with the cart's hold and the choice). A retry after
  an *in-doubt* commit (committed on the database, an error on the client) finds the row by
  its key and answers as the first time; the payment provider is called with a key derived
  from the same idempotency key, so a card is never charged twice;
* nothing else: a write without a key may have committed before the connection dropped, and
  doing it again could do it twice. It gets the 503 at once, as before.

A retry never happens inside a transaction that spans the failure: the request's own atomic
blocks have all exited by the time an answer reaches this middleware (ATOMIC_REQUESTS is off),
and a connection still inside one is a reason to stop. The broken connections are closed
before each retry, so the next attempt opens a fresh one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

log = logging.getLogger("wondertix.ridethrough")

# Set by ops.errors.database_unavailable on the 503 it builds: "the database was unreachable".
MARK = "wondertix_database_unavailable"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writes that are safe to run again: view name -> whether they need the client's
# Idempotency-Key header (the storefront forms carry their own key).
RETRY_WRITES: dict[str, bool] = {
    "api-v1:create_order": True,
    "api-v1:create_hold": True,
    "api-v1:create_refund": True,
    "api-v1:create_exchange": True,
    "storefront:checkout": False,
    "storefront:donate": False,
    "storefront:performance": False,
}
# Storefront forms keyed by a field of the form: retried only when the post carries it.
FORM_KEYS: dict[str, str] = {"storefront:performance": "submission"}

FIRST_PAUSE_S = 0.1
LONGEST_PAUSE_S = 1.0
MAX_ATTEMPTS = 200  # a second bound besides the budget: never an endless loop


def may_retry(request: HttpRequest) -> bool:
    """Whether running this request again can never do its work twice."""
    if request.method in SAFE_METHODS:
        return True
    if request.method != "POST":
        return False
    try:
        view_name = resolve(request.path_info).view_name
    except Resolver404:
        return False
    needs_key = RETRY_WRITES.get(view_name)
    if needs_key is None:
        return False
    if view_name in FORM_KEYS:
        return bool(request.POST.get(FORM_KEYS[view_name]))
    return not needs_key or bool(request.headers.get("Idempotency-Key"))


def pause_before(attempt: int) -> float:
    """Exponential backoff with jitter (so the workers of every app server do not reconnect in step)."""
    return min(LONGEST_PAUSE_S, FIRST_PAUSE_S * 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def _inside_a_transaction() -> bool:
    return any(conn.in_atomic_block for conn in connections.all(initialized_only=True))


def close_broken_connections() -> None:
    """Close every database connection this thread opened: the next query opens a fresh one."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except DatabaseError:  # closing a connection the server already dropped
            pass


class Outage:
    """How long this process has seen the database unreachable (for /readyz).

    Per process: each gunicorn worker keeps its own clock. It starts at the first failed
    contact (a readiness probe or a request) and stops at the next successful readiness probe.
    A failure seen longer than the budget after the previous one starts a new clock: the
    database may have been back in between without this worker noticing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.last: float | None = None
        # A readiness probe has reached the database since this process started. Until then an
        # unreachable database is not an outage to ride out but a process that never worked
        # (a wrong address or password): a deploy must not see it ready.
        self.reached_once = False

    def failed(self, now: float | None = None) -> float:
        """Record a failure; returns how long the outage has lasted (seconds)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.since is None or self.last is None or now - self.last > settings.DATABASE_RIDE_THROUGH_S:
                self.since = now
            self.last = now
            return now - self.since

    def recovered(self) -> None:
        with self._lock:
            self.since = self.last = None
            self.reached_once = True


OUTAGE = Outage()


class DatabaseRideThroughMiddleware:
    """Runs a request again while its database is failing over (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.budget = float(settings.DATABASE_RIDE_THROUGH_S)
        if self.budget <= 0:
            raise MiddlewareNotUsed  # 0: today's behaviour, at no cost
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        arrived = time.monotonic()
        response = self.get_response(request)
        if not getattr(response, MARK, False):
            return response  # the happy path: one attribute lookup
        return self._ride_through(request, response, arrived + self.budget)

    def _ride_through(self, request: HttpRequest, response: HttpResponse, deadline: float) -> HttpResponse:
        age = OUTAGE.failed()
        if not may_retry(request):
            return response
        # An outage this process has already seen for most of the budget leaves only the rest
        # of it: past the budget /readyz says not ready, and a request that would wait a whole
        # budget again (a proxy's retry, a patron's reload) answers at once instead.
        now = time.monotonic()
        deadline = min(deadline, now - age + self.budget)
        waited_from = now
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                OUTAGE.failed()
            if _inside_a_transaction():
                return response  # never retry inside a transaction that spans the failure
            close_broken_connections()
            pause = pause_before(attempt)
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
            response = self.get_response(request)
            if not getattr(response, MARK, False):
                log.warning(
                    "database reachable again; request completed after retrying",
                    extra={"attempts": attempt + 1, "waited_s": round(time.monotonic() - waited_from, 2), "path": request.path},
                )
                return response
        log.warning(
            "database still unreachable after the ride-through budget; answering 503",
            extra={"budget_s": self.budget, "path": request.path},
        )
        return response
