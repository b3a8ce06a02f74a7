"""Season subscriptions: types, sales with a limit, redemptions that take real seats."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.catalog.models import Performance, Season
from wondertix.ops.models import AuditEntry
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Redemption, Subscription
from wondertix.payments.models import Payment
from wondertix.reports import services as reports
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refunds import RefundRequest, TicketRefund, refund_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return User.objects.create_user("clerk", password="x" * 12, is_staff=True)


@pytest.fixture
def season_show(make_performance):
    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=300))
    perf = make_performance(capacity=5)
    perf.event.season = season
    perf.event.save()
    return season, perf


def _type(season, clerk, **kw):
    data = {"season_id": season.pk, "name": "Flex 4", "price_cents": 8000, "tickets_included": 4, "limit_sold": 2} | kw
    return subs.save_type(subs.TypeInput(**data), actor=clerk)


def _world():
    return (
        AuditEntry.objects.count(), Order.objects.count(), Ticket.objects.count(), Redemption.objects.count(),
        list(Subscription.objects.order_by("pk").values_list("remaining", flat=True)),
        list(Performance.objects.order_by("pk").values_list("tickets_sold", flat=True)),
    )


def test_selling_a_subscription_charges_its_price_and_respects_the_limit(season_show, buyer, good_card, clerk):
    season, _perf = season_show
    st = _type(season, clerk, limit_sold=2)
    first = subs.sell_subscription(st.pk, buyer, payment=good_card, idempotency_key="a")
    assert first.remaining == 4 and first.price_cents == 8000
    assert first.order.total_cents == 8000 and first.order.status == Order.PAID
    assert first.order.payments.get().amount_cents == 8000
    assert subs.sell_subscription(st.pk, buyer, payment=good_card, idempotency_key="a").pk == first.pk  # a retry
    subs.sell_subscription(st.pk, buyer, payment=good_card, channel=Order.BOX_OFFICE, provider_name="cash", actor=clerk)
    with pytest.raises(SaleError) as exc:
        subs.sell_subscription(st.pk, buyer, payment=good_card, idempotency_key="c")
    assert exc.value.code == "sold_out"
    assert Subscription.objects.count() == 2
    summary = reports.summary(reports.Period())
    assert summary.total.subscriptions.gross_cents == 16000 and summary.reconciles


def test_limit_cannot_go_below_what_is_sold(season_show, buyer, good_card, clerk):
    season, _ = season_show
    st = _type(season, clerk, limit_sold=5)
    subs.sell_subscription(st.pk, buyer, payment=good_card)
    subs.sell_subscription(st.pk, buyer, payment=good_card)
    with pytest.raises(SaleError) as exc:
        subs.save_type(subs.TypeInput(season.pk, "Flex 4", 8000, 4, limit_sold=1), type_id=st.pk, actor=clerk)
    assert exc.value.code == "limit_below_sold"


def test_redeeming_takes_seats_and_counts_down(season_show, buyer, good_card, clerk):
    season, perf = season_show
    sub = subs.sell_subscription(_type(season, clerk).pk, buyer, payment=good_card)
    redemption = subs.redeem(sub.pk, perf.pk, perf.adult.pk, 3, actor=clerk, idempotency_key="r1")
    sub.refresh_from_db()
    assert sub.remaining == 1
    assert redemption.order.tickets.filter(status=Ticket.VALID).count() == 3
    assert redemption.order.total_cents == 0 and redemption.order.patron_id == sub.patron_id
    assert inventory.availability_for([perf.pk])[perf.pk].available == 2
    assert not Payment.objects.filter(order=redemption.order).exists()
    assert subs.redeem(sub.pk, perf.pk, perf.adult.pk, 3, actor=clerk, idempotency_key="r1").pk == redemption.pk
    sub.refresh_from_db()
    assert sub.remaining == 1


def test_redeeming_more_than_allowed_is_refused_and_writes_nothing(season_show, buyer, good_card, clerk):
    season, perf = season_show
    sub = subs.sell_subscription(_type(season, clerk, tickets_included=2).pk, buyer, payment=good_card)
    before = _world()
    with pytest.raises(SaleError) as exc:
        subs.redeem(sub.pk, perf.pk, perf.adult.pk, 3, actor=clerk)
    assert exc.value.code == "subscription_exhausted"
    assert "2 tickets left" in exc.value.message
    assert _world() == before


def test_redemption_into_a_sold_out_performance_uses_nothing(season_show, buyer, good_card, clerk):
    season, perf = season_show
    Performance.objects.filter(pk=perf.pk).update(capacity=1)
    sub = subs.sell_subscription(_type(season, clerk).pk, buyer, payment=good_card)
    before = _world()
    with pytest.raises(SaleError) as exc:
        subs.redeem(sub.pk, perf.pk, perf.adult.pk, 2, actor=clerk)
    assert exc.value.code == "sold_out"
    assert _world() == before


def test_redeeming_outside_the_season_is_refused(season_show, make_performance, buyer, good_card, clerk):
    season, _ = season_show
    other = make_performance(capacity=5)
    sub = subs.sell_subscription(_type(season, clerk).pk, buyer, payment=good_card)
    with pytest.raises(SaleError) as exc:
        subs.redeem(sub.pk, other.pk, other.adult.pk, 1, actor=clerk)
    assert exc.value.code == "not_in_season"


def test_refunding_a_redeemed_ticket_gives_the_redemption_back(season_show, buyer, good_card, clerk):
    season, perf = season_show
    sub = subs.sell_subscription(_type(season, clerk).pk, buyer, payment=good_card)
    red = subs.redeem(sub.pk, perf.pk, perf.adult.pk, 2, actor=clerk)
    refund_order(red.order_id, RefundRequest(tickets=[TicketRefund(red.order.tickets.first().pk)]), idempotency_key="back", actor=clerk)
    sub.refresh_from_db()
    assert sub.remaining == 3


def test_unused_subscription_can_be_refunded_but_not_once_redeemed(season_show, buyer, good_card, clerk):
    season, perf = season_show
    st = _type(season, clerk)
    unused = subs.sell_subscription(st.pk, buyer, payment=good_card)
    refund_order(unused.order_id, RefundRequest(subscriptions=[unused.pk]), idempotency_key="u", actor=clerk)
    unused.refresh_from_db()
    assert unused.status == Subscription.REFUNDED and unused.remaining == 0
    assert unused.order.payments.filter(kind=Payment.REFUND).get().amount_cents == 8000
    used = subs.sell_subscription(st.pk, buyer, payment=good_card)
    subs.redeem(used.pk, perf.pk, perf.adult.pk, 1, actor=clerk)
    with pytest.raises(SaleError) as exc:
        refund_order(used.order_id, RefundRequest(subscriptions=[used.pk]), idempotency_key="v", actor=clerk)
    assert exc.value.code == "subscription_in_use"
    assert reports.summary(reports.Period()).reconciles


def test_types_on_sale_online_hide_ended_seasons_and_show_what_is_left(season_show, buyer, good_card, clerk):
    season, _ = season_show
    st = _type(season, clerk, limit_sold=3)
    old = Season.objects.create(name="Old", slug="old", starts_on=date(2020, 1, 1), ends_on=date(2020, 12, 31))
    _type(old, clerk, name="Old pack")
    subs.sell_subscription(st.pk, buyer, payment=good_card)
    shown = subs.types_on_sale(online=True)
    assert [t.name for t in shown] == ["Flex 4"]
    assert shown[0].left == 2
