"""Acceptance 4 on real PostgreSQL behind gunicorn: an admin cancels a performance with 3 orders
from its cancel page; all 3 are refunded, the seats freed, 3 emails sent — and while one buyer's
refund waits inside the card provider, the performance's row (the capacity lock) and the order's
row are free: the provider is called outside every lock. Pressing the button again (two
clicks at once) refunds and emails nobody twice.

The `test` provider's refunds wait on a gate file while it exists (WONDERTIX_TEST_PROVIDER_GATE,
honoured only with DEBUG on).
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
from tests.support.staff import create_staff, form_fields, sign_in, together


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cancel-gate")


@pytest.fixture(scope="module")
def server(database_url: str, gate: Path) -> Iterator[LiveServer]:
    with LiveServer(database_url, workers=2, migrate=False, env={"DEBUG": "1", "WONDERTIX_TEST_PROVIDER_GATE": str(gate)}) as srv:
        yield srv


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


def _row_is_free(live_db: str, model: type, pk: int) -> bool:
    """Can another transaction lock this row right now (NOWAIT: no waiting, an answer at once)?"""
    from django.db import DatabaseError, transaction

    try:
        with transaction.atomic(using=live_db):
            model.objects.using(live_db).select_for_update(nowait=True).get(pk=pk)
        return True
    except DatabaseError:
        return False


def test_canceling_a_performance_with_three_orders_refunds_three_frees_the_seats_and_sends_three_emails(server, make_show, live_db, gate):
    from wondertix.catalog.models import Performance
    from wondertix.ops.models import OutboxEmail
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order, Ticket
    from wondertix.sales.refund_models import Refund

    show = make_show(20, name="cancel-three")
    orders = []
    for n, qty in enumerate((1, 2, 3), start=1):
        bought = httpx.post(server.url + "/api/v1/orders", json=order_payload(show.performance_id, show.adult_id, qty, email=f"buyer{n}@example.org"), timeout=30)
        assert bought.status_code == 201, bought.text
        orders.append(Order.objects.using(live_db).get(token=bought.json()["token"]))
    assert Performance.objects.using(live_db).get(pk=show.performance_id).tickets_sold == 6

    name = f"house-manager-{uuid.uuid4().hex[:6]}"
    cookies = sign_in(server, name, create_staff(server, name, "admin"))
    url = f"/staff/performances/{show.performance_id}/cancel/"
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as admin:
        page = admin.get(url)
        assert page.status_code == 200
        assert '<dd id="cancel-orders">3</dd>' in page.text and '<dd id="cancel-tickets">6</dd>' in page.text
        assert '<dd id="cancel-total">$162.00</dd>' in page.text
        fields = form_fields(page.text) | {"reason": "Lead actor ill", "method": "original"}

        held = gate / "refund-5400"  # the 2-ticket order: 2 × ($25.00 + $2.00 fee)
        held.touch()
        answer: dict[str, httpx.Response] = {}
        clerk = threading.Thread(target=lambda: answer.setdefault("cancel", admin.post(url, data=fields)))
        clerk.start()
        try:
            assert _wait_for(held.with_suffix(".entered"), 30), "the refund never reached the provider"
            waiting = Order.objects.using(live_db).get(pk=orders[1].pk)
            assert _row_is_free(live_db, Performance, show.performance_id), "the capacity lock is held during the provider call"
            assert _row_is_free(live_db, Order, waiting.pk), "the order's lock is held during the provider call"
            assert Performance.objects.using(live_db).get(pk=show.performance_id).status == Performance.CANCELED  # off sale already
            assert Refund.objects.using(live_db).get(order_id=waiting.pk).status == Refund.PENDING
        finally:
            held.unlink(missing_ok=True)
            clerk.join(timeout=90)
        assert answer["cancel"].status_code == 302, answer["cancel"].text[:2000]

        # The same button twice at once (a double click after a reload): nothing happens twice.
        again = together([lambda: admin.post(url, data=fields), lambda: admin.post(url, data=fields)], timeout=60)
        assert all(r.status_code in (200, 302) for r in again), [r.status_code for r in again]

    perf = Performance.objects.using(live_db).get(pk=show.performance_id)
    assert perf.status == Performance.CANCELED and perf.tickets_sold == 0
    assert not Ticket.objects.using(live_db).filter(performance_id=perf.pk, status=Ticket.VALID).exists()
    refunds = Refund.objects.using(live_db).filter(canceled_performance_id=perf.pk)
    assert refunds.count() == 3 and set(refunds.values_list("status", flat=True)) == {Refund.SUCCEEDED}
    for order, qty in zip(orders, (1, 2, 3), strict=True):
        order.refresh_from_db(using=live_db)
        assert (order.status, order.refunded_cents) == (Order.REFUNDED, qty * 2700)
        assert list(Payment.objects.using(live_db).filter(order=order, kind=Payment.REFUND).values_list("status", "amount_cents")) == [
            (Payment.SUCCEEDED, qty * 2700)]
    emails = OutboxEmail.objects.using(live_db).filter(order__in=[o.pk for o in orders], kind=OutboxEmail.PERFORMANCE_CANCELED)
    assert sorted(emails.values_list("recipient", flat=True)) == ["buyer1@example.org", "buyer2@example.org", "buyer3@example.org"]
    assert set(emails.values_list("status", flat=True)) == {OutboxEmail.SENT}
