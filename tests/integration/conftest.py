"""Integration layer: a real PostgreSQL 15 cluster and gunicorn with several workers.

One throwaway cluster and one migrated database serve the whole session. Tests talk to the
app over HTTP only; they read and arrange rows through the ORM on a second connection alias
("live") pointed at the same database, so every assertion counts what is really stored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.liveserver import LiveServer, manage  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402

LIVE = "live"


# Set by stg's integration gate (wtx.gate_integration): an empty scratch database in the
# environment's own PostgreSQL cluster, made and dropped by the gate, instead of a throwaway
# cluster. Tests that need a cluster of their own (to create databases) are skipped then.
EXTERNAL_DATABASE = os.environ.get("WONDERTIX_TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if EXTERNAL_DATABASE:
        pytest.skip("needs a throwaway PostgreSQL cluster of its own (the run uses a given scratch database)")
    with PgCluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> str:
    url = EXTERNAL_DATABASE or request.getfixturevalue("pg_cluster").create_database("wondertix")
    manage(url, "migrate", "--noinput")
    return url


@pytest.fixture(scope="session")
def live_db(database_url: str, django_db_blocker) -> Iterator[str]:  # noqa: ANN001
    """The ORM alias for the live server's database (use `.using(live_db)`)."""
    import environ
    from django.db import connections

    config = connections.configure_settings({"default": environ.Env.db_url_config(database_url)})["default"]
    config["CONN_MAX_AGE"] = 0
    connections.settings[LIVE] = config
    with django_db_blocker.unblock():
        yield LIVE
        connections[LIVE].close()


@pytest.fixture(scope="session")
def app_server(database_url: str) -> Iterator[LiveServer]:
    """The app as deployed: DEBUG off, 4 sync gunicorn workers, JSON logs."""
    with LiveServer(database_url, workers=4, migrate=False) as srv:
        yield srv


@pytest.fixture(scope="session")
def backoffice_server(database_url: str) -> Iterator[LiveServer]:
    """The app as deployed (DEBUG off, 4 sync workers) with its static files collected, so the
    staff pages render, and the recorded Stripe fixtures' webhook secret, so their signed
    events are accepted."""
    from tests.unit.test_stripe_payments import WEBHOOK_SECRET

    with LiveServer(database_url, workers=4, migrate=False, collectstatic=True, env={"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}) as srv:
        yield srv


@pytest.fixture(scope="session")
def unsafe_server(database_url: str) -> Iterator[LiveServer]:
    """The same app with the sales lock switched off (a test switch that requires DEBUG)."""
    with LiveServer(
        database_url, workers=4, migrate=False,
        env={"WONDERTIX_UNSAFE_DISABLE_SALES_LOCK": "1", "DEBUG": "1"},
    ) as srv:
        yield srv


@dataclass(frozen=True)
class Show:
    performance_id: int
    adult_id: int
    student_id: int
    capacity: int


@pytest.fixture
def make_show(live_db: str):
    """Factory: an active event on sale with Adult and Student price types, one performance."""
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType

    def make(capacity: int, *, student_limit: int | None = None, name: str = "show") -> Show:
        n = Event.objects.using(live_db).count() + 1
        event = Event.objects.using(live_db).create(title=f"Integration {name} {n}", slug=f"it-{name}-{n}", active=True)
        adult = PriceType.objects.using(live_db).create(event=event, name="Adult", price_cents=2500, fee_cents=200)
        student = PriceType.objects.using(live_db).create(
            event=event, name="Student", price_cents=1000, fee_cents=100, limit_per_performance=student_limit,
        )
        perf = Performance.objects.using(live_db).create(
            event=event, starts_at=timezone.now() + timedelta(days=14), capacity=capacity,
        )
        return Show(perf.pk, adult.pk, student.pk, capacity)

    return make
