"""The back office's rules under real concurrency: gunicorn (4 worker processes) on PostgreSQL.

Staff requests go through the staff API (Bearer tokens from `mint_staff_token`) or the staff
pages (a signed-in session with its CSRF token), fired from threads released together by a
barrier. Each test counts what is really stored afterwards: one check-in, one refund, one seat
per seat, one redemption per redemption left.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from tests.support.buyers import Request, order_payload, race, tally
from tests.support.liveserver import LiveServer
from tests.support.staff import bearer, create_staff, form_fields, mint_tokens, sign_in, together

pytestmark = pytest.mark.slow

SCANNERS = 8
CHECKIN = "/api/v1/staff/checkin"


@dataclass(frozen=True)
class Crew:
    ushers: list[tuple[str, str]]  # (username, API token)
    box_office: tuple[str, str]  # (username, API token)
    box_office_password: str


@pytest.fixture(scope="module")
def crew(backoffice_server: LiveServer, live_db: str) -> Crew:
    """Eight ushers with scanner tokens and one box-office clerk (token and password)."""
    from django.contrib.auth.models import Group, User

    tag = uuid.uuid4().hex[:6]
    clerk = f"clerk-{tag}"
    password = create_staff(backoffice_server, clerk, "box_office")
    # Ushers sign in with tokens only: no password (hashing eight would cost seconds).
    ushers = [f"usher{i}-{tag}" for i in range(SCANNERS)]
    usher_group = Group.objects.using(live_db).get(name="usher")
    for name in ushers:
        user = User(username=name, is_staff=True)
        user.set_unusable_password()
        user.save(using=live_db)
        user.groups.add(usher_group)
    tokens = mint_tokens(backoffice_server, [*ushers, clerk])
    return Crew([(u, tokens[u]) for u in ushers], (clerk, tokens[clerk]), password)


def _buy(server: LiveServer, performance_id: int, price_type_id: int, quantity: int, email: str) -> dict:
    r = httpx.post(server.url + "/api/v1/orders", json=order_payload(performance_id, price_type_id, quantity, email=email), timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def _valid_tickets(live_db: str, performance_id: int) -> int:
    from wondertix.sales.models import Ticket

    return Ticket.objects.using(live_db).filter(performance_id=performance_id, status=Ticket.VALID).count()


def _tickets_sold(live_db: str, performance_id: int) -> int:
    from wondertix.catalog.models import Performance

    return Performance.objects.using(live_db).get(pk=performance_id).tickets_sold


# ---------------------------------------------------------------------------- check-in


def _scan_race(backoffice_server: LiveServer, crew: Crew, make_show, live_db: str, scanners: int) -> None:  # noqa: ANN001
    from wondertix.ops.models import AuditEntry
    from wondertix.sales.models import Ticket

    show = make_show(10, name=f"door-{scanners}")
    code = _buy(backoffice_server, show.performance_id, show.adult_id, 1, "door@example.org")["tickets"][0]["code"]
    # What each scanner sends: the QR's code, or what an usher typed (lower case, dashes).
    variants = [code, code.lower(), f"{code[:4]}-{code[4:]}"]
    outcomes = race(
        backoffice_server.url,
        [Request(CHECKIN, {"code": variants[i % len(variants)], "performance_id": show.performance_id}, bearer(token))
         for i, (_, token) in enumerate(crew.ushers[:scanners])],
    )
    summary = tally(outcomes)
    won = [o for o in outcomes if o.status == 200]
    refused = [o for o in outcomes if o.status == 409]
    assert len(won) == 1, f"exactly one scanner must admit the ticket: {summary}"
    assert len(refused) == scanners - 1 and {o.code for o in refused} <= {"already_checked_in"}, summary
    winner = won[0].body["checked_in_by"]
    assert winner in {u for u, _ in crew.ushers[:scanners]}
    for o in refused:
        assert re.fullmatch(rf"Already checked in by {re.escape(winner)} at \d{{1,2}}:\d\d:\d\d [AP]M on [A-Z][a-z]{{2}} \d{{1,2}}\.", o.body["message"]), o.body
        assert o.body["details"]["checked_in_by"] == winner

    ticket = Ticket.objects.using(live_db).select_related("checked_in_by").get(code=code)
    assert ticket.checked_in_at is not None and ticket.checked_in_by.username == winner
    entries = AuditEntry.objects.using(live_db).filter(action="ticket.checked_in", object_id=str(ticket.pk))
    assert [e.actor_label for e in entries] == [winner], "one audit entry, by the scanner who admitted the ticket"


def test_two_scanners_check_in_the_same_ticket_and_one_is_refused(backoffice_server, crew, make_show, live_db):
    _scan_race(backoffice_server, crew, make_show, live_db, 2)


def test_eight_scanners_check_in_the_same_ticket_and_seven_are_refused(backoffice_server, crew, make_show, live_db):
    _scan_race(backoffice_server, crew, make_show, live_db, SCANNERS)


# ---------------------------------------------------------------------------- refunds


@dataclass(frozen=True)
class PaidOrder:
    order_id: int
    ticket_ids: list[int]
    performance_id: int
    total_cents: int


def _paid_order(backoffice_server: LiveServer, make_show, live_db: str, name: str) -> PaidOrder:  # noqa: ANN001
    from wondertix.sales.models import Order

    show = make_show(10, name=name)
    body = _buy(backoffice_server, show.performance_id, show.adult_id, 2, f"{name}@example.org")
    order = Order.objects.using(live_db).get(token=body["token"])
    ticket_ids = sorted(order.tickets.values_list("pk", flat=True))
    return PaidOrder(order.pk, ticket_ids, show.performance_id, order.total_cents)


def _money(live_db: str, order_id: int) -> dict[str, int]:
    from django.db.models import Sum

    from wondertix.ops.models import AuditEntry
    from wondertix.payments.models import Payment
    from wondertix.sales.models import Order
    from wondertix.sales.refund_models import Refund

    order = Order.objects.using(live_db).get(pk=order_id)
    payments = Payment.objects.using(live_db).filter(order_id=order_id, status=Payment.SUCCEEDED)
    return {
        "refunds": Refund.objects.using(live_db).filter(order_id=order_id).count(),
        "refund_payments": payments.filter(kind=Payment.REFUND).count(),
        "refunded_by_payments": payments.filter(kind=Payment.REFUND).aggregate(n=Sum("amount_cents"))["n"] or 0,
        "charged": payments.filter(kind=Payment.CHARGE).aggregate(n=Sum("amount_cents"))["n"] or 0,
        "order_refunded_cents": order.refunded_cents,
        "audit": AuditEntry.objects.using(live_db).filter(action="order.refunded", object_id=str(order_id)).count(),
    }


def _refund_path(order_id: int) -> str:
    return f"/api/v1/staff/sales/orders/{order_id}/refunds"


def test_eight_retries_of_one_refund_refund_once(backoffice_server, crew, make_show, live_db):
    from wondertix.sales.models import Ticket

    paid = _paid_order(backoffice_server, make_show, live_db, "refund-retry")
    sold_before = _tickets_sold(live_db, paid.performance_id)
    key = f"refund-{uuid.uuid4().hex}"
    body = {"tickets": [{"ticket_id": paid.ticket_ids[0]}], "include_fees": True, "reason": "patron is ill"}
    outcomes = race(backoffice_server.url, [Request(_refund_path(paid.order_id), body, {**bearer(crew.box_office[1]), "Idempotency-Key": key})] * SCANNERS)

    assert {o.status for o in outcomes} == {201}, tally(outcomes)
    assert len({o.body["id"] for o in outcomes}) == 1, "every retry must get the first refund"
    assert {o.body["amount_cents"] for o in outcomes} == {2700}  # $25.00 face + $2.00 fee
    money = _money(live_db, paid.order_id)
    assert money == {**money, "refunds": 1, "refund_payments": 1, "refunded_by_payments": 2700, "order_refunded_cents": 2700, "audit": 1}
    assert _tickets_sold(live_db, paid.performance_id) == sold_before - 1, "the seat is returned exactly once"
    assert _valid_tickets(live_db, paid.performance_id) == sold_before - 1
    assert Ticket.objects.using(live_db).get(pk=paid.ticket_ids[0]).status == Ticket.REFUNDED
    assert Ticket.objects.using(live_db).get(pk=paid.ticket_ids[1]).status == Ticket.VALID


def test_eight_different_refunds_of_one_ticket_and_only_one_goes_through(backoffice_server, crew, make_show, live_db):
    paid = _paid_order(backoffice_server, make_show, live_db, "refund-rivals")
    sold_before = _tickets_sold(live_db, paid.performance_id)
    # Eight clerks, each with their own request: back to the card or in cash, each their reason.
    requests = [
        Request(
            _refund_path(paid.order_id),
            {"tickets": [{"ticket_id": paid.ticket_ids[0]}], "include_fees": True, "method": ("original", "cash")[i % 2], "reason": f"request {i}"},
            {**bearer(crew.box_office[1]), "Idempotency-Key": f"rival-{i}-{uuid.uuid4().hex}"},
        )
        for i in range(SCANNERS)
    ]
    outcomes = race(backoffice_server.url, requests)
    summary = tally(outcomes)
    assert sum(o.status == 201 for o in outcomes) == 1, summary
    assert summary[(409, "ticket_already_refunded")] == SCANNERS - 1, summary
    assert all("has already been refunded" in o.body["message"] for o in outcomes if o.status == 409)

    money = _money(live_db, paid.order_id)
    assert money["refunds"] == 1 and money["refund_payments"] == 1 and money["audit"] == 1, money
    assert money["order_refunded_cents"] == money["refunded_by_payments"] == 2700, money
    assert money["order_refunded_cents"] <= money["charged"] == paid.total_cents
    assert _tickets_sold(live_db, paid.performance_id) == sold_before - 1, "tickets_sold moves back exactly once"
    assert _valid_tickets(live_db, paid.performance_id) == _tickets_sold(live_db, paid.performance_id)


def test_refunds_of_every_ticket_and_more_never_refund_more_than_was_paid(backoffice_server, crew, make_show, live_db):
    """Whole-order refunds, single-ticket refunds and cash refunds at once: whatever wins,
    the money back never exceeds what was paid and every seat comes back once."""
    paid = _paid_order(backoffice_server, make_show, live_db, "refund-all")
    sold_before = _tickets_sold(live_db, paid.performance_id)
    both = [{"ticket_id": t} for t in paid.ticket_ids]
    bodies = [
        {"tickets": both, "include_fees": True},
        {"tickets": both, "include_fees": True, "method": "cash"},
        {"tickets": both[:1], "include_fees": True},
        {"tickets": both[1:], "include_fees": True, "method": "cash"},
        {"tickets": both, "include_fees": False},
        {"tickets": [{"ticket_id": paid.ticket_ids[0], "amount_cents": 2700}], "include_fees": True},
        {"tickets": [{"ticket_id": paid.ticket_ids[1], "amount_cents": 2600}], "include_fees": True},
        {"tickets": both, "include_fees": True, "reason": "show moved"},
    ]
    requests = [Request(_refund_path(paid.order_id), b, {**bearer(crew.box_office[1]), "Idempotency-Key": f"all-{i}-{uuid.uuid4().hex}"}) for i, b in enumerate(bodies)]
    outcomes = race(backoffice_server.url, requests)
    summary = tally(outcomes)
    assert all(o.status in (201, 409, 422) for o in outcomes), summary
    assert any(o.status == 201 for o in outcomes), summary

    money = _money(live_db, paid.order_id)
    assert money["refunds"] == sum(o.status == 201 for o in outcomes) == money["audit"], (money, summary)
    assert money["order_refunded_cents"] == money["refunded_by_payments"] == sum(o.body["amount_cents"] for o in outcomes if o.status == 201)
    assert money["order_refunded_cents"] <= money["charged"] == paid.total_cents, money
    assert _tickets_sold(live_db, paid.performance_id) == sold_before - 2 == _valid_tickets(live_db, paid.performance_id)


# ---------------------------------------------------------------------------- exchanges vs sales


def test_exchanges_and_sales_race_for_the_last_seat_and_exactly_one_gets_it(backoffice_server, crew, make_show, live_db):
    from wondertix.sales.models import Order, Ticket
    from wondertix.sales.refund_models import Exchange

    for round_ in range(3):  # a few independent rounds: different interleavings, still one seat
        target = make_show(3, name=f"xch-target-{round_}")
        source = make_show(10, name=f"xch-source-{round_}")
        _buy(backoffice_server, target.performance_id, target.adult_id, 2, "early@example.org")
        movers = []
        for i in range(4):
            body = _buy(backoffice_server, source.performance_id, source.adult_id, 1, f"mover{i}@example.org")
            order = Order.objects.using(live_db).get(token=body["token"])
            movers.append((order.pk, order.tickets.get().pk))
        exchanges = [
            Request(f"/api/v1/staff/sales/orders/{order_id}/exchanges", {"ticket_ids": [ticket_id], "to_performance_id": target.performance_id},
                    {**bearer(crew.box_office[1]), "Idempotency-Key": f"xch-{uuid.uuid4().hex}"})
            for order_id, ticket_id in movers
        ]
        sales = [Request("/api/v1/orders", order_payload(target.performance_id, target.adult_id, 1, email=f"walkup{i}@example.org")) for i in range(4)]
        racers = [r for pair in zip(exchanges, sales, strict=True) for r in pair]
        outcomes = race(backoffice_server.url, racers)
        summary = tally(outcomes)

        assert all(o.status in (201, 409) for o in outcomes), summary
        assert sum(o.status == 201 for o in outcomes) == 1, f"round {round_}: exactly one racer may get the last seat: {summary}"
        assert summary[(409, "sold_out")] == len(racers) - 1, summary
        exchanged = Exchange.objects.using(live_db).filter(order_id__in=[m[0] for m in movers]).count()
        assert exchanged == sum(o.status == 201 for o, r in zip(outcomes, racers, strict=True) if "exchanges" in r.path)

        assert _valid_tickets(live_db, target.performance_id) == 3 == _tickets_sold(live_db, target.performance_id)
        assert _valid_tickets(live_db, source.performance_id) == 4 - exchanged == _tickets_sold(live_db, source.performance_id)
        refused_movers = [m for m, o in zip(movers, outcomes[0::2], strict=True) if o.status != 201]
        assert all(Ticket.objects.using(live_db).get(pk=t).status == Ticket.VALID for _, t in refused_movers), "a refused exchange changes nothing"


# ---------------------------------------------------------------------------- subscriptions


def _subscription_with_one_left(live_db: str) -> tuple[int, int, int]:
    """A season subscription (4 tickets) with 1 redemption left; returns (subscription, performance, price type)."""
    from django.utils import timezone

    from wondertix.catalog.models import Event, Performance, PriceType, Season
    from wondertix.patrons.models import Patron, Subscription, SubscriptionType
    from wondertix.sales.models import Order

    tag = uuid.uuid4().hex[:8]
    today = timezone.localdate()
    season = Season.objects.using(live_db).create(name=f"Season {tag}", slug=f"season-{tag}", starts_on=today, ends_on=today + timedelta(days=200))
    event = Event.objects.using(live_db).create(title=f"Season show {tag}", slug=f"season-show-{tag}", active=True, season=season)
    pt = PriceType.objects.using(live_db).create(event=event, name="Adult", price_cents=2500, fee_cents=200)
    perf = Performance.objects.using(live_db).create(event=event, starts_at=timezone.now() + timedelta(days=20), capacity=50)
    st = SubscriptionType.objects.using(live_db).create(season=season, name=f"Flex 4 {tag}", price_cents=8000, tickets_included=4)
    patron = Patron.objects.using(live_db).create(first_name="Sub", last_name="Scriber", email=f"sub-{tag}@example.org")
    order = Order.objects.using(live_db).create(status=Order.PAID, patron=patron, buyer_name="Sub Scriber", buyer_email=patron.email,
                                                subtotal_cents=8000, total_cents=8000, paid_at=timezone.now())
    sub = Subscription.objects.using(live_db).create(patron=patron, subscription_type=st, order=order, price_cents=8000, tickets_included=4, remaining=1)
    return sub.pk, perf.pk, pt.pk


def test_redemptions_race_for_the_last_one_and_exactly_one_succeeds(backoffice_server, crew, live_db):
    from wondertix.ops.models import AuditEntry
    from wondertix.patrons.models import Redemption, Subscription

    sub_id, perf_id, pt_id = _subscription_with_one_left(live_db)
    cookies = sign_in(backoffice_server, crew.box_office[0], crew.box_office_password)
    page = f"/staff/contacts/subscriptions/{sub_id}/redeem/"
    clients = [httpx.Client(base_url=backoffice_server.url, cookies=cookies, timeout=30) for _ in range(SCANNERS)]
    try:
        forms = []
        for client in clients:  # each clerk opens the page (its own CSRF token and request key)
            r = client.get(page)
            assert r.status_code == 200, r.text[:300]
            fields = form_fields(r.text)
            assert fields.get("csrfmiddlewaretoken") and fields.get("key"), fields
            forms.append({**fields, "performance": str(perf_id), "price_type": str(pt_id), "quantity": "1"})
        answers = together([lambda c=c, f=f: c.post(page, data=f) for c, f in zip(clients, forms, strict=True)])
    finally:
        for client in clients:
            client.close()

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [302] + [422] * (SCANNERS - 1), statuses
    for a in answers:
        if a.status_code == 422:
            assert "This subscription has 0 tickets left to redeem; 1 were asked for." in a.text
    assert Redemption.objects.using(live_db).filter(subscription_id=sub_id).count() == 1
    assert Subscription.objects.using(live_db).get(pk=sub_id).remaining == 0
    assert _valid_tickets(live_db, perf_id) == 1 == _tickets_sold(live_db, perf_id)
    assert AuditEntry.objects.using(live_db).filter(action="subscription.redeemed", object_id=str(sub_id)).count() == 1


def test_refunding_a_redeemed_ticket_while_redeeming_again_from_that_subscription(backoffice_server, crew, live_db):
    """A refund gives its redemption back to the subscription while the same subscriber is
    redeeming another ticket for the same performance: both go through, nothing deadlocks,
    and the subscription's count and the seat counter stay exact."""
    cookies = sign_in(backoffice_server, crew.box_office[0], crew.box_office_password)
    for _ in range(4):  # rounds of two pairs: four requests, one per gunicorn worker
        _refund_and_redeem_round(backoffice_server, crew, live_db, cookies, pairs=2)


def _refund_and_redeem_round(server: LiveServer, crew: Crew, live_db: str, cookies: httpx.Cookies, *, pairs: int) -> None:
    from wondertix.patrons.models import Redemption, Subscription
    from wondertix.sales.models import Order

    made = [_subscription_with_one_left(live_db) for _ in range(pairs)]
    Subscription.objects.using(live_db).filter(pk__in=[m[0] for m in made]).update(remaining=2)
    clients = [httpx.Client(base_url=server.url, cookies=cookies, timeout=30) for _ in range(pairs * 2)]
    try:
        calls = []
        for i, (sub_id, perf_id, pt_id) in enumerate(made):
            client, refund_client = clients[2 * i], clients[2 * i + 1]
            page = f"/staff/contacts/subscriptions/{sub_id}/redeem/"
            fields = {"performance": str(perf_id), "price_type": str(pt_id), "quantity": "1"}
            first = client.post(page, data={**form_fields(client.get(page).text), **fields})
            assert first.status_code == 302, first.text[:300]
            order = Order.objects.using(live_db).get(pk=Redemption.objects.using(live_db).get(subscription_id=sub_id).order_id)
            refund = {"tickets": [{"ticket_id": order.tickets.get().pk}], "method": "cash", "reason": "cannot come"}
            headers = {**bearer(crew.box_office[1]), "Idempotency-Key": f"back-{uuid.uuid4().hex}"}
            again = {**form_fields(client.get(page).text), **fields}
            calls.append(lambda c=refund_client, o=order.pk, b=refund, h=headers: c.post(_refund_path(o), json=b, headers=h).status_code)
            calls.append(lambda c=client, p=page, d=again: c.post(p, data=d).status_code)
        statuses = together(calls)
    finally:
        for client in clients:
            client.close()

    assert statuses == [201, 302] * pairs, f"{statuses}\n{server.log_tail(20)}"
    for sub_id, perf_id, _ in made:
        assert Subscription.objects.using(live_db).get(pk=sub_id).remaining == 1  # 2 - 1 redeemed + 1 refunded - 1 redeemed
        assert Redemption.objects.using(live_db).filter(subscription_id=sub_id).count() == 2
        assert _valid_tickets(live_db, perf_id) == 1 == _tickets_sold(live_db, perf_id)


def test_a_ticket_scanned_at_the_door_while_it_is_exchanged_is_either_admitted_or_moved(backoffice_server, crew, make_show, live_db):
    """The usher scans the ticket at the same moment a clerk moves it to another performance:
    exactly one of the two goes through, never both (an admitted ticket cannot be exchanged;
    an exchanged ticket cannot be admitted)."""
    from wondertix.sales.models import Order, Ticket

    source = make_show(20, name="door-or-move")
    target = make_show(20, name="door-or-move-target")
    for round_ in range(4):
        orders = []
        for i in range(2):  # two tickets per round: four requests, one per gunicorn worker
            body = _buy(backoffice_server, source.performance_id, source.adult_id, 1, f"door-or-move{round_}-{i}@example.org")
            order = Order.objects.using(live_db).get(token=body["token"])
            orders.append((order.pk, order.tickets.get()))
        racers = []
        for (order_id, ticket), (_, token) in zip(orders, crew.ushers, strict=False):
            racers.append(Request(CHECKIN, {"code": ticket.code, "performance_id": source.performance_id}, bearer(token)))
            racers.append(Request(f"/api/v1/staff/sales/orders/{order_id}/exchanges", {"ticket_ids": [ticket.pk], "to_performance_id": target.performance_id},
                                  {**bearer(crew.box_office[1]), "Idempotency-Key": f"move-{uuid.uuid4().hex}"}))
        outcomes = race(backoffice_server.url, racers)
        summary = tally(outcomes)
        for i, (_, ticket) in enumerate(orders):
            scan, move = outcomes[2 * i], outcomes[2 * i + 1]
            stored = Ticket.objects.using(live_db).get(pk=ticket.pk)
            if scan.status == 200:
                assert (move.status, move.code) == (422, "ticket_used"), summary
                assert stored.status == Ticket.VALID and stored.checked_in_at is not None
            else:
                assert (scan.status, scan.code, move.status) == (422, "ticket_not_valid", 201), summary
                assert stored.status == Ticket.EXCHANGED and stored.checked_in_at is None
        assert _valid_tickets(live_db, source.performance_id) == _tickets_sold(live_db, source.performance_id)
        assert _valid_tickets(live_db, target.performance_id) == _tickets_sold(live_db, target.performance_id)


def test_clerks_race_to_sell_the_last_subscription_of_a_limited_type_and_one_does(backoffice_server, crew, live_db):
    cookies = sign_in(backoffice_server, crew.box_office[0], crew.box_office_password)
    for _ in range(3):  # independent rounds: more interleavings, still one pass each
        _sell_last_subscription_round(backoffice_server, live_db, cookies)


def _sell_last_subscription_round(server: LiveServer, live_db: str, cookies: httpx.Cookies) -> None:
    from django.utils import timezone

    from wondertix.catalog.models import Season
    from wondertix.patrons.models import Subscription, SubscriptionType
    from wondertix.payments.models import Payment

    tag = uuid.uuid4().hex[:8]
    today = timezone.localdate()
    season = Season.objects.using(live_db).create(name=f"Limited {tag}", slug=f"limited-{tag}", starts_on=today, ends_on=today + timedelta(days=100))
    st = SubscriptionType.objects.using(live_db).create(season=season, name=f"Patron pass {tag}", price_cents=12000, tickets_included=6, limit_sold=1)
    page = "/staff/contacts/subscriptions/sell/"
    clients = [httpx.Client(base_url=server.url, cookies=cookies, timeout=30) for _ in range(SCANNERS)]
    try:
        forms = []
        for i, client in enumerate(clients):  # eight windows, eight walk-ups paying cash
            fields = form_fields(client.get(page).text)
            forms.append({**fields, "subscription_type": str(st.pk), "first_name": "Walk", "last_name": f"Up{i}",
                          "email": f"walkup-{i}-{tag}@example.org", "payment": "cash"})
        answers = together([lambda c=c, f=f: c.post(page, data=f) for c, f in zip(clients, forms, strict=True)])
    finally:
        for client in clients:
            client.close()

    assert sorted(a.status_code for a in answers) == [302] + [409] * (SCANNERS - 1), [a.status_code for a in answers]
    assert all("subscription is sold out" in a.text for a in answers if a.status_code == 409)
    sold = Subscription.objects.using(live_db).filter(subscription_type=st)
    assert sold.count() == 1
    assert Payment.objects.using(live_db).filter(order_id=sold.get().order_id).count() == 1
