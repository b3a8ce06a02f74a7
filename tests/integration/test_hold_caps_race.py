"""One client firing holds at once on PostgreSQL + gunicorn: its cap holds across performances.

The per-client lock (sales.holdcaps) serializes one client's holds; without it, requests for
different performances (locked separately) would all see the client holding nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.buyers import Request, race, tally
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.slow

CAP = 10
REQUESTS = 32


@pytest.fixture(scope="module")
def capped_server(database_url: str) -> Iterator[LiveServer]:
    with LiveServer(database_url, workers=4, migrate=False,
                    env={"HOLD_SEATS_PER_CLIENT": str(CAP), "HOLDS_PER_CLIENT_PER_MINUTE": "0"}) as srv:
        yield srv


def test_one_client_racing_for_holds_on_four_performances_holds_at_most_its_cap(capped_server, make_show, live_db):
    from django.utils import timezone

    from wondertix.sales.models import HoldLine

    shows = [make_show(100, name=f"cap{i}") for i in range(4)]
    hoarder = {"X-Forwarded-For": "203.0.113.50"}  # the server trusts its loopback proxy
    outcomes = race(capped_server.url, [
        Request("/api/v1/holds", {"lines": [{"performance_id": shows[i % 4].performance_id, "price_type_id": shows[i % 4].adult_id, "quantity": 2}]}, hoarder)
        for i in range(REQUESTS)
    ])
    summary = tally(outcomes)
    assert summary[(201, "")] == CAP // 2, summary
    assert summary[(429, "too_many_seats_held")] == REQUESTS - CAP // 2, summary
    held = HoldLine.objects.using(live_db).filter(hold__client_address="203.0.113.50", expires_at__gt=timezone.now())
    assert sum(h.quantity for h in held) == CAP
