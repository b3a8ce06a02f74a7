"""Riding through a database failover (ops.ridethrough): while the database cannot be reached a
request waits and runs again, within DATABASE_RIDE_THROUGH_S; an order is retried with its
idempotency key, so an in-doubt commit is answered as the original — one order, one payment.

The failures are faked at the connection: an execute wrapper that refuses the first statements,
or a commit that reaches the database and then loses its answer. The clock is faked too, so no
test here waits for real.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test import Client

from wondertix.ops import ridethrough

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
LOST = "server closed the connection unexpectedly"


class FakeClock:
    """time.monotonic/time.sleep for the middleware: sleeping moves the clock, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ridethrough, "time", fake)
    monkeypatch.setattr(ridethrough, "OUTAGE", ridethrough.Outage())
    ridethrough.OUTAGE.recovered()  # this process has reached its database (as after its first probe)
    return fake


@pytest.fixture
def ride_through(settings, clock):
    settings.DATABASE_RIDE_THROUGH_S = 25
    return clock


@contextlib.contextmanager
def database_away(statements: int | None, *, matching: str = ""):
    """The first `statements` queries (those whose SQL contains `matching`) fail as a dropped
    connection does; None: every one. Yields the list of failures raised."""
    raised: list[str] = []

    def refuse(execute, sql, params, many, context):  # noqa: ANN001
        if matching in sql and (statements is None or len(raised) < statements):
            raised.append(sql)
            raise OperationalError(LOST)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield raised


@contextlib.contextmanager
def commit_answer_lost(times: int = 1):
    """The next `times` commits reach the database, but the client sees the connection drop:
    the in-doubt commit of a failover."""
    conn = connections["default"]
    real = conn._commit
    lost: list[int] = []

    def commit() -> None:
        real()
        if len(lost) < times:
            lost.append(1)
            raise OperationalError(LOST)

    conn._commit = commit  # type: ignore[method-assign]
    try:
        yield lost
    finally:
        del conn._commit


@pytest.fixture
def charges(monkeypatch) -> list[str]:
    """The provider keys the card processor was called with, one entry per charge attempt."""
    from wondertix.payments.providers.test import TestCardProvider

    real = TestCardProvider.charge
    seen: list[str] = []

    def charge(self, **kwargs):  # noqa: ANN001, ANN003
        seen.append(kwargs["idempotency_key"])
        return real(self, **kwargs)

    monkeypatch.setattr(TestCardProvider, "charge", charge)
    return seen


def order_body(perf) -> dict:
    return {
        "lines": [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": 2}],
        "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
        "card": CARD,
    }


def post_order(client: Client, perf, key: str | None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/orders", data=json.dumps(order_body(perf)), content_type="application/json", headers=headers)


# The retried requests must run outside any transaction, as in production (no test transaction).
pytestmark = pytest.mark.django_db(transaction=True)


def test_a_read_waits_for_the_database_and_answers(ride_through, make_performance):
    perf = make_performance()
    client = Client(raise_request_exception=False)
    with database_away(3) as raised:
        response = client.get(f"/api/v1/performances/{perf.pk}")
    assert response.status_code == 200
    assert response.json()["id"] == perf.pk
    assert len(raised) == 3
    assert len(ride_through.slept) == 3, "one pause before each retry"
    assert all(0 < pause <= ridethrough.LONGEST_PAUSE_S for pause in ride_through.slept)


def test_without_a_budget_the_patron_gets_the_503_at_once(settings, clock, make_performance):
    settings.DATABASE_RIDE_THROUGH_S = 0
    perf = make_performance()
    with database_away(1) as raised:
        response = Client(raise_request_exception=False).get(f"/api/v1/performances/{perf.pk}")
    assert response.status_code == 503 and response["Retry-After"]
    assert len(raised) == 1 and clock.slept == []


def test_an_order_whose_transaction_failed_is_placed_once_with_its_key(ride_through, make_performance, charges):
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order, Ticket

    perf = make_performance(capacity=10)
    client = Client(raise_request_exception=False)
    # The payment row's insert fails (after the card was charged): the transaction rolls back.
    with database_away(1, matching="payments_payment") as raised:
        response = post_order(client, perf, "failover-order-0001")
    assert len(raised) == 1
    assert response.status_code == 201
    order = Order.objects.get()
    assert response.json()["token"] == order.token
    assert Ticket.objects.count() == 2 and Payment.objects.count() == 1
    perf.refresh_from_db()
    assert perf.tickets_sold == 2
    # Charged twice at the provider's door, with one key: the provider answers the second with
    # the first charge (the test provider's reference is derived from the key, as Stripe's
    # idempotency keys make it), so the card is charged once.
    assert len(charges) == 2 and len(set(charges)) == 1 and "failover-order-0001" in charges[0]
    assert Payment.objects.get().reference.startswith("test_ch_")


def test_an_in_doubt_commit_is_answered_as_the_original_order(ride_through, make_performance, charges):
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order

    perf = make_performance(capacity=10)
    client = Client(raise_request_exception=False)
    with commit_answer_lost() as lost:
        response = post_order(client, perf, "failover-order-0002")
    assert lost == [1], "the order's commit reached the database and its answer was lost"
    assert response.status_code == 201
    order = Order.objects.get()
    assert response.json()["token"] == order.token and response.json()["reference"] == order.reference
    assert Payment.objects.filter(order=order).count() == 1
    assert charges == ["failover-order-0002"], "the retry found the order by its key and charged nothing"
    perf.refresh_from_db()
    assert perf.tickets_sold == 2
    again = post_order(client, perf, "failover-order-0002")
    assert again.status_code == 201 and again.content == response.content


def test_an_order_without_a_key_is_not_run_twice(ride_through, make_performance, charges):
    from wondertix.sales.models import Order

    perf = make_performance(capacity=10)
    with commit_answer_lost():
        response = post_order(Client(raise_request_exception=False), perf, None)
    assert response.status_code == 503 and response["Retry-After"]
    assert Order.objects.count() == 1, "the in-doubt order exists once; nobody placed it again"
    assert len(charges) == 1 and ride_through.slept == []


def test_a_keyless_write_is_answered_503_without_a_retry(ride_through, make_performance):
    from wondertix.sales.models import Hold

    perf = make_performance(capacity=10)
    with database_away(1, matching="INSERT") as raised:
        response = Client(raise_request_exception=False).post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "2"})
    assert response.status_code == 503 and "tries again by itself" in response.content.decode()
    assert len(raised) == 1 and ride_through.slept == [] and Hold.objects.count() == 0


def test_after_the_budget_the_patron_gets_the_503(ride_through, settings, make_performance):
    settings.DATABASE_RIDE_THROUGH_S = 5
    perf = make_performance()
    start = ride_through.now
    with database_away(None) as raised:
        response = Client(raise_request_exception=False).get(f"/api/v1/performances/{perf.pk}")
    assert response.status_code == 503 and response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    assert response.json()["code"] == "temporarily_unavailable"
    waited = ride_through.now - start
    assert 5 - ridethrough.LONGEST_PAUSE_S <= waited < 5, "waited the budget, not longer"
    assert len(raised) == len(ride_through.slept) + 1


def test_a_request_during_an_outage_older_than_the_budget_is_answered_at_once(ride_through, settings, make_performance):
    settings.DATABASE_RIDE_THROUGH_S = 25
    perf = make_performance()
    client = Client(raise_request_exception=False)
    start = ride_through.now
    with database_away(None):
        assert client.get("/readyz").json()["database"] == "reconnecting"  # the outage begins
        ride_through.now = start + 20
        late = client.get(f"/api/v1/performances/{perf.pk}")
        waited = ride_through.now - (start + 20)
        past = client.get(f"/api/v1/performances/{perf.pk}")
    assert late.status_code == 503 and 4 <= waited <= 5, "waited only the rest of the budget"
    assert past.status_code == 503 and ride_through.now <= start + 25, "no wait past the budget"


def test_the_storefront_checkout_rides_through_an_in_doubt_commit(ride_through, make_performance, charges):
    from tests.unit.test_storefront import contact, hold_tickets, hold_token

    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order

    perf = make_performance(capacity=10)
    client = Client(raise_request_exception=False)
    hold_tickets(client, perf, adult=2)
    with commit_answer_lost() as lost:
        done = client.post("/checkout/", contact(hold=hold_token(client)))
    assert lost == [1]
    order = Order.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/orders/{order.token}/"
    assert Payment.objects.filter(order=order).count() == 1
    assert len(charges) == 1 and charges[0].startswith("web-")


def _selection(client: Client, perf, adult: int) -> dict:
    """The performance page's form as a patron's browser posts it (with the page's key)."""
    page = client.get(f"/performances/{perf.pk}/").content.decode()
    submission = re.search(r'name="submission" value="([^"]+)"', page)
    assert submission, "the selection form carries its key"
    return {"submission": submission.group(1), f"qty_{perf.adult.pk}": str(adult)}


def test_the_storefront_ticket_selection_rides_through_an_in_doubt_commit(ride_through, make_performance):
    from tests.unit.test_storefront import hold_token

    from wondertix.sales.models import Hold

    perf = make_performance(capacity=10)
    client = Client(raise_request_exception=False)
    form = _selection(client, perf, adult=2)
    with commit_answer_lost() as lost:
        chosen = client.post(f"/performances/{perf.pk}/", form)
    assert lost == [1]
    assert chosen.status_code == 302 and chosen["Location"] == "/cart/"
    # One hold of 2, the one the cart remembers: the retry found it by its key.
    assert Hold.objects.count() == 1 and hold_token(client) == Hold.objects.get().token
    assert sum(line.quantity for line in Hold.objects.get().lines.all()) == 2
    # The same page posted again with another choice is a new selection, not a reused key.
    again = client.post(f"/performances/{perf.pk}/", {**form, f"qty_{perf.adult.pk}": "3"})
    assert again.status_code == 302
    held = Hold.objects.get(token=hold_token(client))
    assert sum(line.quantity for line in held.lines.all()) == 3


def test_a_selection_without_its_key_is_not_run_twice(ride_through, make_performance):
    from wondertix.sales.models import Hold

    perf = make_performance(capacity=10)
    client = Client(raise_request_exception=False)
    with commit_answer_lost():
        answer = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "2"})
    assert answer.status_code == 503  # the patron is asked to try again; nothing doubled
    assert Hold.objects.count() <= 1


def test_never_retried_inside_a_transaction_that_spans_the_failure(ride_through, make_performance):
    perf = make_performance()
    calls: list[int] = []

    def view(request):  # noqa: ANN001
        calls.append(1)
        return Client(raise_request_exception=False).get(f"/api/v1/performances/{perf.pk}")

    middleware = ridethrough.DatabaseRideThroughMiddleware(view)
    from django.test import RequestFactory

    with transaction.atomic(), database_away(None):
        response = middleware(RequestFactory().get("/"))
    assert response.status_code == 503 and calls == [1] and ride_through.slept == []


def test_readiness_says_reconnecting_within_the_budget_and_unready_after(ride_through, settings):
    settings.DATABASE_RIDE_THROUGH_S = 25
    client = Client(raise_request_exception=False)
    start = ride_through.now
    with database_away(None):
        first = client.get("/readyz")
        ride_through.now = start + 24
        later = client.get("/readyz")
        ride_through.now = start + 26
        past = client.get("/readyz")
    assert first.status_code == later.status_code == 200
    assert first.json()["database"] == "reconnecting"
    assert later.json()["outage_s"] == 24.0
    assert past.status_code == 503 and past.json()["database"] == "unreachable"
    back = client.get("/readyz")
    assert back.status_code == 200 and back.json()["database"] == "ok"
    with database_away(None):
        again = client.get("/readyz")  # a new outage starts a new clock
    assert again.status_code == 200 and again.json()["outage_s"] == 0.0


def test_a_process_that_never_reached_its_database_is_not_ready(ride_through, monkeypatch):
    # A wrong address or password is not a failover: a deploy waiting for /readyz must not
    # move traffic to such a release.
    monkeypatch.setattr(ridethrough, "OUTAGE", ridethrough.Outage())
    with database_away(None):
        response = Client(raise_request_exception=False).get("/readyz")
    assert response.status_code == 503 and response.json()["database"] == "unreachable"


def test_readiness_without_a_budget_is_unready_at_once(settings, clock):
    settings.DATABASE_RIDE_THROUGH_S = 0
    with database_away(None):
        response = Client(raise_request_exception=False).get("/readyz")
    assert response.status_code == 503 and response.json()["database"] == "unreachable"


def test_an_unready_answer_says_why_in_the_log_once_per_interval(settings, clock, monkeypatch, caplog):
    # The operator reading the app log after a red `wtx status` learns what failed; the
    # proxy's probe every half second does not flood it.
    from wondertix.ops import views

    settings.DATABASE_RIDE_THROUGH_S = 0
    monkeypatch.setattr(views, "_not_ready_logged_at", None)
    with caplog.at_level("WARNING", logger="wondertix.ops.views"), database_away(None):
        for _ in range(3):
            assert Client(raise_request_exception=False).get("/readyz").status_code == 503
    said = [r.getMessage() for r in caplog.records if r.name == "wondertix.ops.views"]
    assert len(said) == 1, said
    assert "OperationalError" in said[0] and LOST.split()[0] in said[0]


def test_the_retry_policy_names_only_writes_that_store_a_key():
    from django.test import RequestFactory

    rf = RequestFactory()
    assert ridethrough.may_retry(rf.get("/staff/"))
    assert ridethrough.may_retry(rf.post("/api/v1/orders", headers={"Idempotency-Key": "k" * 12}))
    assert not ridethrough.may_retry(rf.post("/api/v1/orders"))
    assert ridethrough.may_retry(rf.post("/checkout/"))
    assert not ridethrough.may_retry(rf.post("/cart/empty/"))
    assert not ridethrough.may_retry(rf.delete("/api/v1/holds/abc"))
    assert not ridethrough.may_retry(rf.post("/no/such/page/"))
    # The ticket selection form only with the key its page was rendered with.
    assert ridethrough.may_retry(rf.post("/performances/1/", {"submission": "n" * 22}))
    assert not ridethrough.may_retry(rf.post("/performances/1/", {"qty_1": "2"}))
    # Every write named in the policy exists (a renamed view must not silently lose its retry).
    from django.urls import get_resolver

    names = set()
    for namespace, (_prefix, resolver) in get_resolver().namespace_dict.items():
        names |= {f"{namespace}:{n}" for n in resolver.reverse_dict if isinstance(n, str)}
    assert set(ridethrough.RETRY_WRITES) <= names, set(ridethrough.RETRY_WRITES) - names
