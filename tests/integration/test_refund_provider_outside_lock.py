"""A refund waiting on a slow card provider does not hold up sales of the same performance.

The `test` provider's refunds wait on a gate file while it exists (WONDERTIX_TEST_PROVIDER_GATE,
honoured only with DEBUG on), so the refund stays inside its provider call for as long as the
test wants, on real PostgreSQL behind gunicorn.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer
from tests.support.staff import bearer, mint_tokens

# A sale answers within this even on a busy 2-core machine; the gate holds the refund longer.
SALE_TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("provider-gate")


@pytest.fixture(scope="module")
def gated_server(database_url: str, gate: Path) -> Iterator[LiveServer]:
    with LiveServer(database_url, workers=2, migrate=False, env={"DEBUG": "1", "WONDERTIX_TEST_PROVIDER_GATE": str(gate)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def clerk_token(gated_server: LiveServer, live_db: str) -> str:
    from django.contrib.auth.models import Group, User

    name = f"slow-refund-clerk-{uuid.uuid4().hex[:6]}"
    user = User(username=name, is_staff=True)
    user.set_unusable_password()
    user.save(using=live_db)
    user.groups.add(Group.objects.using(live_db).get(name="box_office"))
    return mint_tokens(gated_server, [name])[name]


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


def test_a_sale_is_not_held_up_by_a_refund_waiting_on_the_card_provider(gated_server, clerk_token, make_show, live_db, gate):
    from wondertix.catalog.models import Performance
    from wondertix.sales.models import Order, Ticket
    from wondertix.sales.refund_models import Refund

    show = make_show(10, name="slow-refund")
    bought = httpx.post(gated_server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, 2), timeout=30)
    assert bought.status_code == 201, bought.text
    order = Order.objects.using(live_db).get(token=bought.json()["token"])
    ticket_id = order.tickets.order_by("pk").values_list("pk", flat=True)[0]
    sold_before = Performance.objects.using(live_db).get(pk=show.performance_id).tickets_sold

    held = gate / "refund-2700"  # the ticket's $25.00 face value and $2.00 fee
    held.touch()
    answer: dict[str, httpx.Response] = {}
    key = f"slow-{uuid.uuid4().hex}"

    def refund() -> None:
        answer["refund"] = httpx.post(
            gated_server.url + f"/api/v1/staff/sales/orders/{order.pk}/refunds",
            json={"tickets": [{"ticket_id": ticket_id}], "include_fees": True, "reason": "slow provider"},
            headers={**bearer(clerk_token), "Idempotency-Key": key},
            timeout=60,
        )

    clerk = threading.Thread(target=refund)
    clerk.start()
    try:
        assert _wait_for(held.with_suffix(".entered"), 20), "the refund never reached the provider"

        started = time.monotonic()
        sale = httpx.post(gated_server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, 1, email="next@example.org"), timeout=SALE_TIMEOUT_S)
        took = time.monotonic() - started
        print(f"sale of the same performance while its refund waits on the provider: {took * 1000:.0f} ms")

        assert sale.status_code == 201, sale.text
        assert clerk.is_alive() and "refund" not in answer, "the refund is still waiting on the provider"
        pending = Refund.objects.using(live_db).get(idempotency_key=key)
        assert pending.status == Refund.PENDING
        assert Ticket.objects.using(live_db).get(pk=ticket_id).status == Ticket.REFUNDED, "no second refund or door scan while pending"
        assert Performance.objects.using(live_db).get(pk=show.performance_id).tickets_sold == sold_before + 1, "its seat is not sold again yet"
    finally:
        held.unlink(missing_ok=True)
        clerk.join(timeout=60)

    assert answer["refund"].status_code == 201, answer["refund"].text
    assert Refund.objects.using(live_db).get(idempotency_key=key).status == Refund.SUCCEEDED
    perf = Performance.objects.using(live_db).get(pk=show.performance_id)
    assert perf.tickets_sold == sold_before + 1 - 1
    assert Ticket.objects.using(live_db).filter(performance_id=show.performance_id, status=Ticket.VALID).count() == perf.tickets_sold


def test_a_sale_is_not_held_up_by_an_exchange_whose_refund_waits_on_the_card_provider(gated_server, clerk_token, make_show, live_db, gate):
    from wondertix.catalog.models import Performance, PriceType
    from wondertix.sales.models import Order, Ticket
    from wondertix.sales.refund_models import Exchange

    dear = make_show(10, name="slow-exchange-from")
    PriceType.objects.using(live_db).filter(pk=dear.adult_id).update(price_cents=4000)
    cheap = make_show(10, name="slow-exchange-to")
    bought = httpx.post(gated_server.url + "/api/v1/orders", json=order_payload(dear.performance_id, dear.adult_id, 1), timeout=30)
    assert bought.status_code == 201, bought.text
    order = Order.objects.using(live_db).get(token=bought.json()["token"])
    ticket_id = order.tickets.get().pk

    held = gate / "refund-1500"  # $40.00 → $25.00: the difference goes back to the card
    held.touch()
    answer: dict[str, httpx.Response] = {}
    key = f"slow-ex-{uuid.uuid4().hex}"

    def exchange() -> None:
        answer["exchange"] = httpx.post(
            gated_server.url + f"/api/v1/staff/sales/orders/{order.pk}/exchanges",
            json={"ticket_ids": [ticket_id], "to_performance_id": cheap.performance_id, "method": "original"},
            headers={**bearer(clerk_token), "Idempotency-Key": key},
            timeout=60,
        )

    clerk = threading.Thread(target=exchange)
    clerk.start()
    try:
        assert _wait_for(held.with_suffix(".entered"), 20), "the exchange never reached the provider"
        started = time.monotonic()
        sales = [
            httpx.post(gated_server.url + "/api/v1/orders", json=order_payload(perf, pt, 1, email="next@example.org"), timeout=SALE_TIMEOUT_S)
            for perf, pt in ((cheap.performance_id, cheap.adult_id), (dear.performance_id, dear.adult_id))
        ]
        print(f"two sales (target and old performance) while the exchange waits on the provider: {(time.monotonic() - started) * 1000:.0f} ms")
        assert [s.status_code for s in sales] == [201, 201], [s.text for s in sales]
        assert clerk.is_alive() and "exchange" not in answer
        assert Exchange.objects.using(live_db).get(idempotency_key=key).status == Exchange.PENDING
    finally:
        held.unlink(missing_ok=True)
        clerk.join(timeout=60)

    assert answer["exchange"].status_code == 201, answer["exchange"].text
    assert Exchange.objects.using(live_db).get(idempotency_key=key).status == Exchange.SUCCEEDED
    for show in (dear, cheap):
        perf = Performance.objects.using(live_db).get(pk=show.performance_id)
        assert Ticket.objects.using(live_db).filter(performance_id=show.performance_id, status=Ticket.VALID).count() == perf.tickets_sold
