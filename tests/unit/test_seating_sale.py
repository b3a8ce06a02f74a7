"""Reserved seats on the sale path: each seat sold once, holds hold seats, prices by category."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from tests.unit.seating_fixtures import make_reserved

from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Hold, HoldLine, Order, SeatClaim, Ticket
from wondertix.sales.services import (
    CheckoutDetails,
    LineRequest,
    checkout,
    create_hold,
    release_hold,
    sell,
)

pytestmark = pytest.mark.django_db


def _details(buyer, card):
    return CheckoutDetails(buyer=buyer, payment=card)


def _line(r, category, *labels):
    ids = tuple(r.seats[label] for label in labels)
    return LineRequest(r.perf.pk, r.prices[category].pk, len(ids), seat_ids=ids)


def _refused(fn, *args, **kwargs) -> SaleError:
    with pytest.raises(SaleError) as exc:
        fn(*args, **kwargs)
    return exc.value


def test_capacity_of_a_reserved_performance_is_its_seats_plus_standing():
    r = make_reserved(standing=30)
    assert r.perf.capacity == 3 * 8 + 2 * 8 + 30


def test_a_seat_is_sold_once_and_the_second_buyer_is_told_which_seat(buyer, good_card):
    r = make_reserved()
    order = sell([_line(r, "Orchestra", "Orchestra/A/4", "Orchestra/A/5")], _details(buyer, good_card))
    assert order.total_cents == 2 * (4500 + 200)
    assert sorted(t.seat_id for t in order.tickets.all()) == sorted([r.seats["Orchestra/A/4"], r.seats["Orchestra/A/5"]])
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/A/5", "Orchestra/A/6")], _details(buyer, good_card))
    assert err.code == "seat_taken" and err.status == 409
    assert "Orchestra row A seat 5" in err.message
    assert err.details["seat_ids"] == [r.seats["Orchestra/A/5"]]
    # The refusal wrote nothing: seat 6 is still free, and only the first order exists.
    assert Order.objects.count() == 1 and Ticket.objects.count() == 2
    assert not SeatClaim.objects.filter(seat_id=r.seats["Orchestra/A/6"]).exists()
    r.perf.refresh_from_db()
    assert r.perf.tickets_sold == 2


def test_prices_follow_the_seat_category(buyer, good_card):
    r = make_reserved()
    order = sell([_line(r, "Balcony", "Balcony/B/1")], _details(buyer, good_card))
    assert order.subtotal_cents == 3000
    # An Orchestra price for a Balcony seat is refused (no cheap seats at the wrong price).
    wrong = LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Balcony/B/2"],))
    err = _refused(sell, [wrong], _details(buyer, good_card))
    assert err.code == "invalid_seats" and "Balcony" in err.message


def test_a_reserved_performance_needs_seats_and_general_admission_refuses_them(make_performance, buyer, good_card):
    r = make_reserved()
    err = _refused(sell, [LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 2)], _details(buyer, good_card))
    assert err.code == "seats_required"
    ga = make_performance(capacity=10)
    err = _refused(sell, [LineRequest(ga.pk, ga.adult.pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))], _details(buyer, good_card))
    assert err.code == "invalid_seats"
    err = _refused(sell, [LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 2, seat_ids=(r.seats["Orchestra/A/1"],))], _details(buyer, good_card))
    assert err.code == "invalid_seats"
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/A/1"), _line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    assert err.code == "invalid_seats" and "twice" in err.message
    other = make_reserved(2)
    err = _refused(sell, [LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(other.seats["Orchestra/A/1"],))], _details(buyer, good_card))
    assert err.code == "invalid_seats"
    assert Ticket.objects.count() == 0


def test_house_seats_are_not_sold_online_but_staff_may(buyer, good_card):
    r = make_reserved(flags={("Orchestra", "A", "1"): ["house_seat"]})
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    assert err.code == "seat_not_for_sale"
    order = sell([_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card), staff=True, channel=Order.BOX_OFFICE)
    assert order.tickets.get().seat_id == r.seats["Orchestra/A/1"]


def test_a_hold_holds_its_seats_until_it_expires_then_anyone_may_buy_them(buyer, good_card):
    r = make_reserved()
    hold = create_hold([_line(r, "Orchestra", "Orchestra/B/3", "Orchestra/B/4")])
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/B/4")], _details(buyer, good_card))
    assert err.code == "seat_taken"
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    SeatClaim.objects.filter(hold_line__hold=hold).update(expires_at=past)
    order = sell([_line(r, "Orchestra", "Orchestra/B/4")], _details(buyer, good_card))
    assert order.tickets.get().seat_id == r.seats["Orchestra/B/4"]
    err = _refused(checkout, hold.token, _details(buyer, good_card))
    assert err.code == "hold_expired"


def test_checking_out_a_hold_sells_exactly_its_seats(buyer, good_card):
    r = make_reserved()
    hold = create_hold([_line(r, "Balcony", "Balcony/A/7", "Balcony/A/8")])
    order = checkout(hold.token, _details(buyer, good_card))
    assert sorted(t.seat_id for t in order.tickets.all()) == sorted([r.seats["Balcony/A/7"], r.seats["Balcony/A/8"]])
    claims = SeatClaim.objects.filter(performance=r.perf)
    assert claims.count() == 2 and all(c.ticket_id and c.expires_at is None for c in claims)
    assert inventory.availability_for([r.perf.pk])[r.perf.pk].sold == 2


def test_a_released_hold_gives_its_seats_back(buyer, good_card):
    r = make_reserved()
    hold = create_hold([_line(r, "Orchestra", "Orchestra/C/1")])
    release_hold(hold.token)
    assert not SeatClaim.objects.exists()
    sell([_line(r, "Orchestra", "Orchestra/C/1")], _details(buyer, good_card))


def test_two_holds_cannot_hold_one_seat():
    r = make_reserved()
    create_hold([_line(r, "Orchestra", "Orchestra/A/2")])
    err = _refused(create_hold, [_line(r, "Orchestra", "Orchestra/A/1", "Orchestra/A/2")])
    assert err.code == "seat_taken"
    assert Hold.objects.count() == 1 and SeatClaim.objects.count() == 1


def test_a_standing_area_is_sold_without_seats_up_to_its_size(buyer, good_card):
    r = make_reserved(standing=3)
    standing = r.prices["Standing"]
    sell([LineRequest(r.perf.pk, standing.pk, 2)], _details(buyer, good_card))
    create_hold([LineRequest(r.perf.pk, standing.pk, 1)])
    err = _refused(sell, [LineRequest(r.perf.pk, standing.pk, 1)], _details(buyer, good_card))
    assert err.code == "sold_out" and "Standing" in err.message
    err = _refused(sell, [LineRequest(r.perf.pk, standing.pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))], _details(buyer, good_card))
    assert err.code == "invalid_seats"


def test_a_category_limit_caps_its_sales(buyer, good_card):
    r = make_reserved()
    cat = r.prices["Balcony"].seat_category
    cat.limit_per_performance = 2
    cat.save()
    sell([_line(r, "Balcony", "Balcony/A/1", "Balcony/A/2")], _details(buyer, good_card))
    err = _refused(sell, [_line(r, "Balcony", "Balcony/A/3")], _details(buyer, good_card))
    assert err.code == "sold_out" and "Balcony" in err.message


def test_general_admission_price_types_are_not_sold_for_reserved_seats(make_performance, buyer, good_card):
    r = make_reserved()
    ga = make_performance()
    ga_type = ga.adult
    ga_type.event = r.perf.event
    ga_type.name = "GA Adult"
    ga_type.save()
    err = _refused(sell, [LineRequest(r.perf.pk, ga_type.pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))], _details(buyer, good_card))
    assert err.code == "invalid_price_type"


def test_a_chart_cannot_change_under_sold_tickets(buyer, good_card):
    from wondertix.catalog import seating

    r = make_reserved()
    sell([_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    with pytest.raises(SaleError) as exc:
        seating.use_chart(r.perf, None)
    assert exc.value.code == "chart_in_use"


def test_a_refunded_seat_can_be_sold_again(buyer, good_card, clerk):
    from wondertix.sales.refunds import RefundRequest, TicketRefund, refund_order

    r = make_reserved()
    order = sell([_line(r, "Orchestra", "Orchestra/A/1", "Orchestra/A/2")], _details(buyer, good_card))
    ticket = order.tickets.get(seat_id=r.seats["Orchestra/A/1"])
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    assert err.code == "seat_taken"
    refund_order(order.pk, RefundRequest(tickets=[TicketRefund(ticket.pk)], reason="cannot come"), idempotency_key="seat-refund-1", actor=clerk)
    again = sell([_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    assert again.tickets.get().seat_id == r.seats["Orchestra/A/1"]
    assert not SeatClaim.objects.filter(ticket=ticket).exists()
    # Seat 2 is still the first order's.
    assert _refused(sell, [_line(r, "Orchestra", "Orchestra/A/2")], _details(buyer, good_card)).code == "seat_taken"
    # The refund email names the seat given back.
    from wondertix.sales.change_emails import refund_email
    from wondertix.sales.refund_models import Refund

    text, html = refund_email(Refund.objects.get(order=order)).render()
    assert "Orchestra row A seat 1, Orchestra, ticket" in text and "Orchestra row A seat 1" in html


def test_an_exchange_to_a_reserved_performance_needs_its_seats(buyer, good_card, clerk):
    from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets

    r = make_reserved()
    order = sell([_line(r, "Orchestra", "Orchestra/A/1")], _details(buyer, good_card))
    err = _refused(exchange_tickets, order.pk, ExchangeRequest(ticket_ids=[order.tickets.get().pk], to_performance_id=r.perf.pk, price_type_id=r.prices["Balcony"].pk),
                   idempotency_key="seat-exchange-1", actor=clerk)
    assert err.code == "seats_required"  # (tests/unit/test_exchange_seats.py: with seats)


def test_a_general_admission_order_sends_no_seating_statement(make_performance, buyer, good_card):
    """General admission keeps its sale path: not one read or write of seats, claims or categories."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    perf = make_performance(capacity=10)
    with CaptureQueriesContext(connection) as sale:
        sell([LineRequest(perf.pk, perf.adult.pk, 2)], _details(buyer, good_card))
    with CaptureQueriesContext(connection) as held:
        hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 2)])
    with CaptureQueriesContext(connection) as bought:
        checkout(hold.token, _details(buyer, good_card))
    seating_tables = ("seatclaim", "catalog_seat", "seatcategory", "seatingchart")
    assert not [q["sql"] for q in sale.captured_queries if any(t in q["sql"] for t in seating_tables)]
    assert not [q["sql"] for q in held.captured_queries if any(t in q["sql"] for t in seating_tables)]
    # A hold's checkout reads its seats (none here): one indexed read, nothing else.
    assert len([q for q in bought.captured_queries if any(t in q["sql"] for t in seating_tables)]) == 1


def test_the_capacity_of_a_reserved_performance_follows_its_chart(clerk):
    from wondertix.catalog.staff import update_performance

    r = make_reserved()
    err = _refused(update_performance, r.perf.pk, {"capacity": 10}, actor=clerk)
    assert err.code == "capacity_follows_chart"
    update_performance(r.perf.pk, {"capacity": r.perf.capacity, "note": "Matinee"}, actor=clerk)
    r.perf.refresh_from_db()
    assert r.perf.capacity == 40 and r.perf.note == "Matinee"


@pytest.mark.parametrize("edit", ["deleted", "recategorised"])
def test_a_seat_the_editor_changed_while_the_sale_waited_for_the_lock_is_refused_cleanly(buyer, good_card, monkeypatch, edit):
    # A sale reads its seats, then takes the performance lock; the seat-map editor saves under
    # that same lock. An edit that committed in between is seen under the lock: 409, nothing sold.
    from wondertix.catalog.models import Seat

    r = make_reserved()
    target = r.seats["Orchestra/A/5"]
    real = inventory.claim_seats

    def edited_first(*args, **kwargs):  # noqa: ANN002, ANN003
        seat = Seat.objects.get(pk=target)
        if edit == "deleted":  # as committed by the editor before this sale wrote its tickets
            Seat.objects.filter(pk=target)._raw_delete(Seat.objects.db)
        else:
            seat.category = r.prices["Balcony"].seat_category
            seat.save(update_fields=["category"])
        return real(*args, **kwargs)

    monkeypatch.setattr(inventory, "claim_seats", edited_first)
    err = _refused(sell, [_line(r, "Orchestra", "Orchestra/A/4", "Orchestra/A/5")], _details(buyer, good_card))
    assert err.code == "seat_changed" and err.status == 409
    assert "choose your seats again" in err.message and err.details["seat_ids"] == [target]
    assert Order.objects.count() == 0 and Ticket.objects.count() == 0 and SeatClaim.objects.count() == 0


def test_a_simulated_card_checkout_of_an_expired_standing_hold_never_overfills_the_area(buyer, good_card):
    """The simulated card charges inside the sale's transaction, after the lock's re-checks: a
    hold that expired while others filled the area is refused before any charge."""
    from wondertix.payments.models import Payment

    r = make_reserved(standing=3)
    standing = r.prices["Standing"]
    hold = create_hold([LineRequest(r.perf.pk, standing.pk, 2)])
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    sell([LineRequest(r.perf.pk, standing.pk, 3)], _details(buyer, good_card))
    err = _refused(checkout, hold.token, _details(buyer, good_card))
    assert err.code in ("hold_expired", "sold_out")
    assert Ticket.objects.filter(performance=r.perf, price_type=standing, status=Ticket.VALID).count() == 3
    assert Order.objects.count() == 1 and Payment.objects.count() == 1
