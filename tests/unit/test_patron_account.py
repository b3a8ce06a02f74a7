"""A signed-in patron's account (storefront.account_*): only their own orders, online exchange
(pay only the difference, refund of the difference, sold out refused with nothing written),
subscription redemption, and the newsletter choice kept across purchases."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from test_stripe_payments import fake_stripe  # noqa: F401 (fixture)

from wondertix.catalog.models import Performance, PriceType, Season
from wondertix.ops import outbox
from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.patrons.models import Patron, Subscription, SubscriptionType
from wondertix.payments.models import Payment
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def show(make_performance):
    """One show, two performances, and a dearer ticket type (Premium, $40)."""
    first = make_performance(capacity=10)
    second = Performance.objects.create(event=first.event, starts_at=first.starts_at + timedelta(days=1), capacity=10)
    premium = PriceType.objects.create(event=first.event, name="Premium", price_cents=4000, fee_cents=200)
    second.adult, second.student = first.adult, first.student  # type: ignore[attr-defined]
    return first, second, premium


def _buy(perf, buyer, card, n=3) -> Order:
    return sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card))


def _signed_in(patron: Patron) -> Client:
    client = Client()
    session = client.session
    session["patron_id"] = patron.pk
    session.save()
    return client


def _state():
    return (
        AuditEntry.objects.count(), Payment.objects.count(), Exchange.objects.count(), OutboxEmail.objects.count(),
        list(Ticket.objects.order_by("pk").values_list("pk", "status", "performance_id")),
        list(Order.objects.order_by("pk").values_list("total_cents", "status")),
        list(Performance.objects.order_by("pk").values_list("tickets_sold", flat=True)),
    )


def _quote(client, order, tickets, perf, price_type=None):
    data = {"tickets": [t.pk for t in tickets], "performance": perf.pk}
    if price_type is not None:
        data["price_type"] = price_type.pk
    return client.post(f"/account/orders/{order.pk}/exchange/", data)


def _confirm(client, order, quote_page, card=True):
    html = quote_page.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(step|key|difference|performance|price_type)" value="([^"]*)">', html))
    fields["tickets"] = re.findall(r'<input type="hidden" name="tickets" value="(\d+)">', html)
    if card:
        fields.update(card_number="4242 4242 4242 4242", card_expiry="12/30", card_cvc="123")
    return client.post(f"/account/orders/{order.pk}/exchange/", fields)


def test_history_lists_only_the_patrons_orders_and_another_patrons_order_is_404(show, buyer, good_card):
    first, second, _ = show
    mine = _buy(first, buyer, good_card, 2)
    theirs = _buy(second, Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card, 1)
    client = _signed_in(mine.patron)
    page = client.get("/account/").content.decode()
    assert mine.reference in page and f"/orders/{mine.token}/" in page
    assert theirs.reference not in page and theirs.token not in page
    assert client.get(f"/account/orders/{theirs.pk}/exchange/").status_code == 404
    assert client.post(f"/account/orders/{theirs.pk}/exchange/", {"tickets": [t.pk for t in theirs.tickets.all()], "performance": first.pk}).status_code == 404
    # Signed out: the account pages send the patron to sign in.
    assert Client().get(f"/account/orders/{mine.pk}/exchange/")["Location"] == "/account/sign-in/"


def test_exchange_two_tickets_to_a_dearer_performance_pays_only_the_difference(show, buyer, good_card):
    first, second, premium = show
    order = _buy(first, buyer, good_card, 3)
    OutboxEmail.objects.update(status=OutboxEmail.SENT)  # the confirmation: not what this test reads
    mail.outbox.clear()
    client = _signed_in(order.patron)
    moving = list(order.tickets.order_by("pk")[:2])

    quote = _quote(client, order, moving, second, premium)
    assert quote.status_code == 200
    assert "To pay: the difference of $30.00" in quote.content.decode()
    assert not Exchange.objects.exists()  # the quote writes nothing

    done = _confirm(client, order, quote)
    assert done.status_code == 302 and done["Location"] == f"/orders/{order.token}/"
    charges = list(order.payments.filter(kind=Payment.CHARGE).order_by("pk").values_list("amount_cents", "status"))
    assert charges == [(3 * 2700, Payment.SUCCEEDED), (3000, Payment.SUCCEEDED)]  # only the difference
    assert Ticket.objects.filter(order=order, performance=second, price_type=premium, status=Ticket.VALID).count() == 2
    assert set(Ticket.objects.filter(pk__in=[t.pk for t in moving]).values_list("status", flat=True)) == {Ticket.EXCHANGED}
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.tickets_sold, second.tickets_sold) == (1, 2)
    # The exchange email, through the outbox.
    outbox.send_due()
    assert [m.to for m in mail.outbox] == [["ada@example.org"]] and "new tickets" in mail.outbox[0].subject.lower()
    # The same form sent again (a double click) does not exchange twice.
    before = _state()
    _confirm(client, order, quote)
    assert _state() == before


def test_exchange_to_a_cheaper_ticket_refunds_the_difference_to_the_card(show, buyer, good_card):
    first, second, _ = show
    order = _buy(first, buyer, good_card, 2)
    client = _signed_in(order.patron)
    quote = _quote(client, order, list(order.tickets.all()), second, first.student)
    assert "Back to your card: $30.00" in quote.content.decode()
    done = _confirm(client, order, quote, card=False)
    assert done.status_code == 302
    refunds = list(order.payments.filter(kind=Payment.REFUND).values_list("amount_cents", "status"))
    assert refunds == [(3000, Payment.SUCCEEDED)]
    assert Ticket.objects.filter(order=order, performance=second, price_type=first.student, status=Ticket.VALID).count() == 2


def test_exchange_to_a_sold_out_performance_is_refused_and_nothing_is_written(show, buyer, good_card):
    first, second, premium = show
    order = _buy(first, buyer, good_card, 2)
    client = _signed_in(order.patron)
    quote = _quote(client, order, list(order.tickets.all()), second, premium)
    assert quote.status_code == 200
    # Between the quote and the confirmation someone buys the rest of the performance.
    _buy(second, Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card, 9)
    before = _state()
    refused = _confirm(client, order, quote)
    assert refused.status_code == 409
    assert "is sold out. Your tickets were not changed." in refused.content.decode()
    assert _state() == before  # refused under the lock: no exchange, payment, ticket or email
    # Chosen when already sold out, the quote itself refuses.
    again = _quote(client, order, list(order.tickets.all()), second, premium)
    assert again.status_code == 409 and "is sold out" in again.content.decode()


def test_a_declined_card_for_the_difference_changes_nothing(show, buyer, good_card):
    first, second, premium = show
    order = _buy(first, buyer, good_card, 1)
    client = _signed_in(order.patron)
    quote = _quote(client, order, list(order.tickets.all()), second, premium)
    html = quote.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(step|key|difference|performance|price_type)" value="([^"]*)">', html))
    fields.update(tickets=[order.tickets.get().pk], card_number="4000 0000 0000 0002", card_expiry="12/30", card_cvc="123")
    refused = client.post(f"/account/orders/{order.pk}/exchange/", fields)
    assert refused.status_code == 402
    assert order.tickets.get(performance=first).status == Ticket.VALID
    assert not Ticket.objects.filter(performance=second, status=Ticket.VALID).exists()


def test_tickets_of_another_show_or_a_past_performance_cannot_be_chosen(show, make_performance, buyer, good_card):
    first, second, _ = show
    other_show = make_performance(capacity=10)
    order = _buy(first, buyer, good_card, 1)
    client = _signed_in(order.patron)
    refused = _quote(client, order, list(order.tickets.all()), other_show)
    assert refused.status_code == 422 and "another performance of the same show" in refused.content.decode()
    Performance.objects.filter(pk=first.pk).update(starts_at=timezone.now() - timedelta(hours=1))
    assert "No ticket of this order can be exchanged online" in client.get(f"/account/orders/{order.pk}/exchange/").content.decode()


def test_a_subscriber_redeems_their_subscription_online(show, buyer, good_card):
    first, _, _ = show
    today = timezone.localdate()
    season = Season.objects.create(name="Season", slug="season", starts_on=today, ends_on=today + timedelta(days=300))
    first.event.season = season
    first.event.save()
    order = _buy(first, buyer, good_card, 1)
    st = SubscriptionType.objects.create(season=season, name="Flex pass", price_cents=10000, tickets_included=4)
    sub = Subscription.objects.create(patron=order.patron, subscription_type=st, order=order, price_cents=10000, tickets_included=4, remaining=4)
    client = _signed_in(order.patron)
    assert "Flex pass" in client.get("/account/").content.decode()
    done = client.post(f"/account/subscriptions/{sub.pk}/redeem/", {"performance": first.pk, "quantity": 2, "key": "k1"})
    assert done.status_code == 302
    sub.refresh_from_db()
    assert sub.remaining == 2
    redeemed = Order.objects.get(redemption__subscription=sub)
    assert done["Location"] == f"/orders/{redeemed.token}/"
    assert redeemed.tickets.filter(status=Ticket.VALID, price_cents=0).count() == 2
    # The same form sent twice (a double click) redeems once.
    client.post(f"/account/subscriptions/{sub.pk}/redeem/", {"performance": first.pk, "quantity": 2, "key": "k1"})
    sub.refresh_from_db()
    assert sub.remaining == 2
    # Another patron cannot redeem it.
    stranger = Patron.objects.create(first_name="Grace", last_name="Hopper", email="grace@example.org")
    _signed_in(stranger).post(f"/account/subscriptions/{sub.pk}/redeem/", {"performance": first.pk, "quantity": 1, "key": "k2"})
    sub.refresh_from_db()
    assert sub.remaining == 2


def test_a_later_checkout_without_the_box_ticked_keeps_the_newsletter_opt_in(make_performance, good_card):
    perf = make_performance(capacity=10)
    opted = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org", newsletter=True)
    sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=opted, payment=good_card))
    unticked = Buyer(first_name="Ada", last_name="Lovelace", email="ADA@example.org", newsletter=False)
    sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=unticked, payment=good_card))
    patron = Patron.objects.get()
    assert patron.newsletter is True
    # The patron changes it themselves, signed in.
    client = _signed_in(patron)
    client.post("/account/newsletter/", {})
    patron.refresh_from_db()
    assert patron.newsletter is False
    client.post("/account/newsletter/", {"newsletter": "on"})
    patron.refresh_from_db()
    assert patron.newsletter is True
