"""Health, readiness and metrics endpoints (the seam wtx and HAProxy use)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from wondertix.ops import errors, metrics, ridethrough

log = logging.getLogger(__name__)
# The proxy probes every half second: a failing database is logged once per this many seconds.
NOT_READY_LOG_EVERY_S = 10.0
_not_ready_logged_at: float | None = None


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering. Never touches the database."""
    return JsonResponse({"status": "ok"})


# Loading the migration graph costs milliseconds of CPU, and the proxy probes every second or
# two: once this process has seen every migration applied, it re-checks only this often
# (migrations are applied before a release starts, never while it runs). The database
# itself is checked on every probe.
MIGRATIONS_RECHECK_SECONDS = 30.0
_migrations_applied_at: float | None = None


def _pending_migrations() -> int:
    global _migrations_applied_at
    now = time.monotonic()
    if _migrations_applied_at is not None and now - _migrations_applied_at < MIGRATIONS_RECHECK_SECONDS:
        return 0
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    _migrations_applied_at = now if pending == 0 else None
    return pending


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database reachable, every migration applied, and a payment
    configuration that can never confirm a real order with a simulated card."""
    from wondertix.payments import simulated

    unsafe = simulated.misconfiguration()
    if unsafe:
        return JsonResponse({"status": "unavailable", "payments": "simulated on real data", "error": unsafe}, status=503)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        plan = _pending_migrations()
    except Exception as exc:  # noqa: BLE001 - any database failure means "not ready"
        return _database_unreachable(exc)
    ridethrough.OUTAGE.recovered()
    if plan:
        return JsonResponse(
            {"status": "unavailable", "database": "ok", "pending_migrations": plan},
            status=503,
        )
    return JsonResponse({"status": "ok", "database": "ok", "pending_migrations": 0})


def _database_unreachable(exc: Exception) -> JsonResponse:
    """Not ready — unless the database is failing over and requests still ride through it.

    While the outage is younger than DATABASE_RIDE_THROUGH_S this server stays in traffic:
    its requests wait for the database and complete, which beats the proxy's "very busy"
    page for every patron when every app server is taken out at once. Past the budget its
    requests answer 503 anyway, so it reports not ready (docs/operations.md).
    """
    budget = settings.DATABASE_RIDE_THROUGH_S
    if budget > 0 and errors.is_database_unavailable(exc) and ridethrough.OUTAGE.reached_once:
        # The connection may be half-open: the next probe or request opens a fresh one.
        ridethrough.close_broken_connections()
        age = ridethrough.OUTAGE.failed()
        if age < budget:
            return JsonResponse(
                {"status": "ok", "database": "reconnecting", "outage_s": round(age, 1), "ride_through_s": budget}
            )
    _log_not_ready(exc)
    return JsonResponse(
        {"status": "unavailable", "database": "unreachable", "error": type(exc).__name__},
        status=503,
    )


def _log_not_ready(exc: Exception) -> None:
    """Why this process answered "not ready", for whoever reads the app log after a failed
    deploy or a red `wtx status` (at most once per NOT_READY_LOG_EVERY_S)."""
    global _not_ready_logged_at
    now = time.monotonic()
    if _not_ready_logged_at is not None and now - _not_ready_logged_at < NOT_READY_LOG_EVERY_S:
        return
    _not_ready_logged_at = now
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    log.warning("readyz: not ready, the database failed: %s: %s", type(exc).__name__, first_line)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    from django.utils import timezone

    from wondertix.sales.models import Hold

    metrics.HOLDS_ACTIVE.set(Hold.objects.filter(expires_at__gt=timezone.now()).count())
    if settings.DATABASE_REPLICATION_METRICS:
        from wondertix.ops import replication

        replication.refresh(settings.REPLICATION_METRICS_CACHE_S)
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


def raise_error(request: HttpRequest) -> HttpResponse:
    """Fail on purpose, so an operator can see an environment's error handling end to end
    (debug page in dev; friendly page with a request id, and a logged error, elsewhere).
    Admins only: a staff API token with the admin role, or a signed-in superuser."""
    from django.core.exceptions import PermissionDenied

    from wondertix.api.auth import StaffToken
    from wondertix.boxoffice.roles import ADMIN, user_has_role

    header = request.headers.get("Authorization", "")
    user = None
    if header.startswith("Bearer "):
        user = StaffToken(ADMIN).authenticate(request, header.removeprefix("Bearer ").strip())
    elif user_has_role(request.user, ADMIN):
        user = request.user
    if user is None:
        raise PermissionDenied("Admins only.")
    raise RuntimeError("Deliberate error raised by /ops/raise-error to test error handling")
