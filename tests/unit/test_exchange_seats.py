"""Exchanges to chosen seats: the target's seats are claimed under the lock exactly like a
sale's, the old seats are given back, and a seat someone else has is refused `seat_taken`
with nothing changed (the box office's exchange, the staff API and the staff order page)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import seating
from wondertix.catalog.models import Performance
from wondertix.ops import tokens
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Order, SeatClaim, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_nights():
    """A reserved show with two performances on the same chart."""
    r = make_reserved()
    other = Performance.objects.create(event=r.perf.event, starts_at=r.perf.starts_at + timedelta(days=1), capacity=1)
    other = seating.use_chart(other, r.perf.seating_chart)
    return r, other


@pytest.fixture
def api(clerk):
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}


def _buy(r, perf, category, labels, buyer, card) -> Order:
    ids = tuple(r.seats[label] for label in labels)
    return sell([LineRequest(perf.pk, r.prices[category].pk, len(ids), seat_ids=ids)], CheckoutDetails(buyer=buyer, payment=card))


def _claims() -> set[tuple[int, int, int | None]]:
    return set(SeatClaim.objects.values_list("performance_id", "seat_id", "ticket_id"))


def _state():
    return (
        _claims(), Exchange.objects.count(),
        list(Ticket.objects.order_by("pk").values_list("pk", "status", "performance_id", "seat_id")),
        list(Performance.objects.order_by("pk").values_list("tickets_sold", flat=True)),
        list(Order.objects.order_by("pk").values_list("total_cents", flat=True)),
    )


def _tickets(order):
    return list(order.tickets.filter(status=Ticket.VALID).order_by("pk"))


def test_an_exchange_moves_tickets_to_chosen_seats_and_gives_the_old_ones_back(two_nights, buyer, good_card, clerk):
    r, other = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1", "Orchestra/A/2"], buyer, good_card)
    old = _tickets(order)
    new_seats = [r.seats["Orchestra/B/5"], r.seats["Orchestra/B/6"]]

    exchange = exchange_tickets(order.pk, ExchangeRequest([t.pk for t in old], other.pk, seat_ids=new_seats), idempotency_key="seat-move-1", actor=clerk)
    assert exchange.status == Exchange.SUCCEEDED
    new = _tickets(order)
    assert [(t.performance_id, t.seat_id) for t in new] == [(other.pk, s) for s in new_seats]
    assert _claims() == {(other.pk, s, t.pk) for s, t in zip(new_seats, new, strict=True)}
    # The old seats are for sale again; the new ones are not.
    grace = Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org")
    assert _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], grace, good_card).status == Order.PAID
    with pytest.raises(SaleError) as taken:
        _buy(r, other, "Orchestra", ["Orchestra/B/5"], grace, good_card)
    assert taken.value.code == "seat_taken"
    # The same request again (a retry) exchanges once.
    again = exchange_tickets(order.pk, ExchangeRequest([t.pk for t in old], other.pk, seat_ids=new_seats), idempotency_key="seat-move-1", actor=clerk)
    assert again.pk == exchange.pk and Exchange.objects.count() == 1


def test_a_seat_someone_else_has_is_refused_seat_taken_with_nothing_changed(two_nights, buyer, good_card, clerk):
    r, other = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1", "Orchestra/A/2"], buyer, good_card)
    _buy(r, other, "Orchestra", ["Orchestra/C/3"], Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card)
    before = _state()
    request = ExchangeRequest([t.pk for t in _tickets(order)], other.pk, seat_ids=[r.seats["Orchestra/C/2"], r.seats["Orchestra/C/3"]])
    with pytest.raises(SaleError) as refused:
        exchange_tickets(order.pk, request, idempotency_key="seat-move-2", actor=clerk)
    assert refused.value.code == "seat_taken" and "Orchestra row C seat 3" in refused.value.message
    assert _state() == before


def test_seats_must_fit_the_chart_the_category_and_the_number_of_tickets(two_nights, make_performance, buyer, good_card, clerk):
    r, other = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    before = _state()

    def refused(**kw) -> str:
        with pytest.raises(SaleError) as exc:
            exchange_tickets(order.pk, ExchangeRequest([ticket.pk], other.pk, **kw), idempotency_key=f"bad-{len(kw)}-{kw}", actor=clerk)
        return exc.value.code

    assert refused() == "seats_required"  # a reserved target needs a seat per ticket
    assert refused(seat_ids=[r.seats["Orchestra/B/1"], r.seats["Orchestra/B/2"]]) == "seats_required"
    assert refused(seat_ids=[r.seats["Balcony/A/1"]]) == "invalid_seats"  # an Orchestra price, a Balcony seat
    assert _state()[0] == before[0]


def test_moving_to_its_own_seat_at_the_same_price_is_refused(two_nights, buyer, good_card, clerk):
    r, _ = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([ticket.pk], r.perf.pk, price_type_id=r.prices["Orchestra"].pk, seat_ids=[r.seats["Orchestra/A/1"]]),
                         idempotency_key="same-seat", actor=clerk)
    assert exc.value.code == "same_ticket"


def test_a_general_admission_target_takes_no_seats_and_the_old_seat_is_freed(two_nights, make_performance, buyer, good_card, clerk):
    r, _ = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    ga = make_performance(capacity=10)
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, ExchangeRequest([ticket.pk], ga.pk, price_type_id=ga.adult.pk, method="original", seat_ids=[r.seats["Orchestra/A/1"]]),
                         idempotency_key="ga-with-seat", actor=clerk)
    assert exc.value.code == "invalid_seats"
    exchange_tickets(order.pk, ExchangeRequest([ticket.pk], ga.pk, price_type_id=ga.adult.pk, method="original"), idempotency_key="ga", actor=clerk)
    [moved] = _tickets(order)
    assert (moved.performance_id, moved.seat_id) == (ga.pk, None) and _claims() == set()


def test_a_dearer_seat_paid_by_card_and_a_declined_card_keeps_the_old_seat(two_nights, buyer, good_card, clerk):
    r, other = two_nights
    order = _buy(r, r.perf, "Balcony", ["Balcony/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    before = _state()
    declined = PaymentDetails(card_number="4000000000000002")
    request = ExchangeRequest([ticket.pk], r.perf.pk, price_type_id=r.prices["Orchestra"].pk, method="card", card=declined, seat_ids=[r.seats["Orchestra/A/4"]])
    with pytest.raises(SaleError):
        exchange_tickets(order.pk, request, idempotency_key="declined-seat", actor=clerk)
    after = _state()
    assert after[0] == before[0]  # the old seat is still the ticket's; the new one is free again
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.VALID

    request = ExchangeRequest([ticket.pk], r.perf.pk, price_type_id=r.prices["Orchestra"].pk, method="card", card=good_card, seat_ids=[r.seats["Orchestra/A/4"]])
    exchange = exchange_tickets(order.pk, request, idempotency_key="paid-seat", actor=clerk)
    assert exchange.status == Exchange.SUCCEEDED and exchange.difference_cents == 1500
    [new] = _tickets(order)
    assert _claims() == {(r.perf.pk, r.seats["Orchestra/A/4"], new.pk)}


def test_a_price_type_change_keeping_the_seat_and_a_declined_card_keeps_the_seat(two_nights, buyer, good_card, clerk):
    """The new ticket takes the old ticket's own seat (given back early); undone, the old ticket
    has it again."""
    from wondertix.catalog.models import PriceType

    r, _ = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    premium = PriceType.objects.create(event=r.perf.event, name="Premium", price_cents=6000, fee_cents=200, seat_category=r.prices["Orchestra"].seat_category)
    before = _state()
    request = ExchangeRequest([ticket.pk], r.perf.pk, price_type_id=premium.pk, method="card", card=PaymentDetails(card_number="4000000000000002"),
                              seat_ids=[r.seats["Orchestra/A/1"]])
    with pytest.raises(SaleError):
        exchange_tickets(order.pk, request, idempotency_key="declined-premium", actor=clerk)
    assert _state()[0] == before[0]


def test_the_staff_api_and_the_staff_page_name_the_seats(two_nights, buyer, good_card, clerk, api, staff):
    r, other = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], buyer, good_card)
    [ticket] = _tickets(order)
    body = {"ticket_ids": [ticket.pk], "to_performance_id": other.pk, "seat_ids": [r.seats["Orchestra/B/3"]]}
    answer = Client().post(f"/api/v1/staff/sales/orders/{order.pk}/exchanges", body, content_type="application/json", **{**api, "HTTP_IDEMPOTENCY_KEY": "api-seat-1"})
    assert answer.status_code == 201, answer.content
    [moved] = _tickets(order)
    assert (moved.performance_id, moved.seat_id) == (other.pk, r.seats["Orchestra/B/3"])

    # The staff order page: preview, then confirm, naming the seat.
    fields = {"step": "preview", "ticket": [moved.pk], "to_performance": r.perf.pk, "seats": str(r.seats["Orchestra/C/8"])}
    preview = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", fields)
    assert preview.status_code == 200 and f'name="seats" value="{r.seats["Orchestra/C/8"]}"' in preview.content.decode()
    key = __import__("re").search(r'name="key" value="([^"]+)"', preview.content.decode()).group(1)
    done = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", fields | {"step": "confirm", "key": key})
    assert done.status_code in (200, 302)
    [final] = _tickets(order)
    assert (final.performance_id, final.seat_id) == (r.perf.pk, r.seats["Orchestra/C/8"])
    bad = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", fields | {"seats": "C8"})
    assert "Seats are seat numbers" in bad.content.decode()


def test_a_signed_in_patron_chooses_new_seats_online(two_nights, buyer, good_card):
    import re

    from test_patron_account import _signed_in

    r, other = two_nights
    order = _buy(r, r.perf, "Orchestra", ["Orchestra/A/1", "Orchestra/A/2"], buyer, good_card)
    _buy(r, other, "Orchestra", ["Orchestra/A/1"], Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), good_card)
    client = _signed_in(order.patron)
    old = _tickets(order)
    assert "Exchange tickets" in client.get("/account/").content.decode()

    # Step 1: a reserved performance asks for the seats, listing only free seats of the category.
    step = client.post(f"/account/orders/{order.pk}/exchange/", {"tickets": [t.pk for t in old], "performance": other.pk})
    page = step.content.decode()
    assert step.status_code == 200 and "Your new seats" in page
    offered = set(map(int, re.findall(r'<option value="(\d+)"', page.split('id="exchange-seats"')[1])))
    assert r.seats["Orchestra/A/2"] in offered and r.seats["Orchestra/A/1"] not in offered  # sold to Grace
    assert r.seats["Balcony/A/1"] not in offered  # another category

    # Step 2: the quote with the seats, then the confirmation.
    wanted = [r.seats["Orchestra/B/1"], r.seats["Orchestra/B/2"]]
    quote = client.post(f"/account/orders/{order.pk}/exchange/", {"tickets": [t.pk for t in old], "performance": other.pk, "seat": wanted})
    assert quote.status_code == 200 and "Same price" in quote.content.decode()
    html = quote.content.decode()
    fields = dict(re.findall(r'<input type="hidden" name="(step|key|difference|performance)" value="([^"]*)">', html))
    fields["tickets"] = re.findall(r'<input type="hidden" name="tickets" value="(\d+)">', html)
    fields["seat"] = re.findall(r'<input type="hidden" name="seat" value="(\d+)">', html)
    done = client.post(f"/account/orders/{order.pk}/exchange/", fields)
    assert done.status_code == 302
    assert sorted((t.performance_id, t.seat_id) for t in _tickets(order)) == sorted((other.pk, s) for s in wanted)

    # A seat taken between the quote and the confirmation is refused with nothing changed.
    moved = _tickets(order)
    shown = client.post(f"/account/orders/{order.pk}/exchange/", {"tickets": [moved[0].pk], "performance": r.perf.pk, "seat": [r.seats["Orchestra/A/1"]]})
    assert shown.status_code == 200 and "Confirm the exchange" in shown.content.decode()  # the old seat is free again
    fields = {"step": "confirm", "key": "k-taken", "difference": "0", "performance": r.perf.pk, "tickets": [moved[0].pk], "seat": [r.seats["Orchestra/A/1"]]}
    _buy(r, r.perf, "Orchestra", ["Orchestra/A/1"], Buyer(first_name="Alan", last_name="Turing", email="alan@example.org"), good_card)
    before = _state()
    taken = client.post(f"/account/orders/{order.pk}/exchange/", fields)
    assert "just taken by someone else" in taken.content.decode()
    assert _state() == before


def test_an_exchange_into_a_full_standing_area_is_refused_with_nothing_changed(buyer, good_card, clerk):
    """The standing area's size binds an exchange as it binds a sale (one check: seats.ensure_category_limits)."""
    r = make_reserved(standing=2)
    other = seating.use_chart(Performance.objects.create(event=r.perf.event, starts_at=r.perf.starts_at + timedelta(days=1), capacity=1), r.perf.seating_chart)
    standing = r.prices["Standing"]
    sell([LineRequest(other.pk, standing.pk, 2)], CheckoutDetails(buyer=Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org"), payment=good_card))
    order = sell([LineRequest(r.perf.pk, standing.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    before = _state()
    with pytest.raises(SaleError) as refused:
        exchange_tickets(order.pk, ExchangeRequest([t.pk for t in _tickets(order)], other.pk), idempotency_key="standing-full", actor=clerk)
    assert refused.value.code == "sold_out" and "Standing" in refused.value.message
    assert _state() == before
    assert Ticket.objects.filter(performance=other, price_type=standing, status=Ticket.VALID).count() == 2
