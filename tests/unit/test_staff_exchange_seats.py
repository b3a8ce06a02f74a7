"""The staff exchange to chosen seats: the order page's exchange leads, for a reserved target,
to the point of sale's seat picker (map and seat list); the ticked seats become one seat per
ticket, of the category each ticket moves to, and a choice that does not fit is shown again with
the reason and nothing written. Plain form posts: the page works without JavaScript."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import seating
from wondertix.catalog.models import Performance
from wondertix.sales.models import Order, SeatClaim, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_nights():
    r = make_reserved()
    other = Performance.objects.create(event=r.perf.event, starts_at=r.perf.starts_at + timedelta(days=1), capacity=1)
    return r, seating.use_chart(other, r.perf.seating_chart)


def _buy(r, perf, lines, buyer, card) -> Order:
    return sell(
        [LineRequest(perf.pk, r.prices[cat].pk, 1, seat_ids=(r.seats[label],)) for cat, label in lines],
        CheckoutDetails(buyer=buyer, payment=card),
    )


def _valid(order) -> list[Ticket]:
    return list(order.tickets.filter(status=Ticket.VALID).order_by("pk"))


def _url(order) -> str:
    return f"/staff/sales/orders/{order.pk}/exchange/"


def _box(html: str, seat_id: int) -> str:
    """The seat list's checkbox of one seat, as rendered."""
    return re.search(rf'<input type="checkbox" name="seat" value="{seat_id}"[^>]*>', html).group(0)


def _state():
    return (
        sorted(SeatClaim.objects.values_list("performance_id", "seat_id", "ticket_id")),
        list(Ticket.objects.order_by("pk").values_list("pk", "status", "performance_id", "seat_id")),
        Exchange.objects.count(),
    )


def test_the_order_page_leads_to_the_seat_map_of_a_reserved_target(two_nights, buyer, good_card, staff):
    r, other = two_nights
    order = _buy(r, r.perf, [("Orchestra", "Orchestra/A/1")], buyer, good_card)
    _buy(r, other, [("Orchestra", "Orchestra/B/2")], Buyer("Grace", "Hopper", "grace@example.org"), good_card)
    page = staff.get(f"/staff/sales/orders/{order.pk}/").content.decode()
    assert 'name="seats"' not in page and "seat map" in page  # no seat-id text field any more
    before = _state()

    seat_page = staff.post(_url(order), {"step": "preview", "ticket": [_valid(order)[0].pk], "to_performance": other.pk})
    html = seat_page.content.decode()
    assert seat_page.status_code == 200
    assert "Seats for the exchange to" in html and "a “Orchestra” seat" in html
    # The POS's picker: the map drawn from the seat list, whose checkboxes are the form.
    assert "data-seat-form" in html and "data-seatmap" in html and "seatmap.js" in html
    assert 'name="step" value="seats"' in html
    assert "disabled" not in _box(html, r.seats["Orchestra/C/8"])
    assert "disabled" in _box(html, r.seats["Orchestra/B/2"])  # sold to someone else
    assert "disabled" in _box(html, r.seats["Balcony/A/1"])  # not the category the ticket moves to
    assert _state() == before


def test_ticked_seats_go_one_per_ticket_by_category_and_the_exchange_takes_them(two_nights, buyer, good_card, staff):
    r, other = two_nights
    order = _buy(r, r.perf, [("Balcony", "Balcony/A/1"), ("Orchestra", "Orchestra/A/1")], buyer, good_card)
    balcony, orchestra = sorted(_valid(order), key=lambda t: t.price_type.name)
    # Tickets in one order, seats ticked in the list's (Orchestra first): matched by category.
    fields = {"step": "seats", "ticket": [balcony.pk, orchestra.pk], "to_performance": other.pk,
              "seat": [str(r.seats["Orchestra/C/5"]), str(r.seats["Balcony/B/4"])]}
    preview = staff.post(_url(order), fields)
    html = preview.content.decode()
    assert preview.status_code == 200 and "No price difference" in html
    assert f'name="seats" value="{r.seats["Balcony/B/4"]},{r.seats["Orchestra/C/5"]}"' in html
    key = re.search(r'name="key" value="([^"]+)"', html).group(1)
    confirm = {"step": "confirm", "key": key, "ticket": [balcony.pk, orchestra.pk], "to_performance": other.pk,
               "seats": f'{r.seats["Balcony/B/4"]},{r.seats["Orchestra/C/5"]}'}
    assert staff.post(_url(order), confirm).status_code == 302
    moved = {t.price_type.name: (t.performance_id, t.seat_id) for t in _valid(order)}
    assert moved == {"Balcony": (other.pk, r.seats["Balcony/B/4"]), "Orchestra": (other.pk, r.seats["Orchestra/C/5"])}
    # The old seats are on sale again.
    assert not SeatClaim.objects.filter(performance=r.perf).exists()


@pytest.mark.parametrize(
    ("ticked", "message"),
    [
        (["Orchestra/C/5"], "Tick a “Balcony” seat for ticket"),
        (["Orchestra/C/5", "Balcony/B/4", "Balcony/B/5"], "3 seats are ticked for 2 tickets"),
        ([], "Choose at least one seat"),
    ],
)
def test_a_seat_choice_that_does_not_fit_is_shown_again_with_the_reason(two_nights, buyer, good_card, staff, ticked, message):
    r, other = two_nights
    order = _buy(r, r.perf, [("Balcony", "Balcony/A/1"), ("Orchestra", "Orchestra/A/1")], buyer, good_card)
    before = _state()
    answer = staff.post(_url(order), {"step": "seats", "ticket": [t.pk for t in _valid(order)], "to_performance": other.pk,
                                      "seat": [str(r.seats[label]) for label in ticked]})
    html = answer.content.decode()
    assert answer.status_code == 422 and message in html and 'role="alert"' in html
    assert "data-seat-form" in html  # the seat page again, with what was ticked
    for label in ticked:
        assert "checked" in _box(html, r.seats[label])
    assert _state() == before


def test_a_seat_taken_before_the_confirmation_refuses_the_exchange_with_nothing_changed(two_nights, buyer, good_card, staff):
    r, other = two_nights
    order = _buy(r, r.perf, [("Orchestra", "Orchestra/A/1")], buyer, good_card)
    [ticket] = _valid(order)
    preview = staff.post(_url(order), {"step": "seats", "ticket": [ticket.pk], "to_performance": other.pk, "seat": [str(r.seats["Orchestra/C/5"])]})
    key = re.search(r'name="key" value="([^"]+)"', preview.content.decode()).group(1)
    _buy(r, other, [("Orchestra", "Orchestra/C/5")], Buyer("Grace", "Hopper", "grace@example.org"), good_card)
    before = _state()
    done = staff.post(_url(order), {"step": "confirm", "key": key, "ticket": [ticket.pk], "to_performance": other.pk, "seats": str(r.seats["Orchestra/C/5"])})
    assert done.status_code == 409 and "Orchestra row C seat 5 was just taken" in done.content.decode()
    assert _state() == before


def test_a_general_admission_target_goes_straight_to_the_price_difference(two_nights, make_performance, buyer, good_card, staff):
    r, _ = two_nights
    order = _buy(r, r.perf, [("Orchestra", "Orchestra/A/1")], buyer, good_card)
    ga = make_performance(capacity=10)
    answer = staff.post(_url(order), {"step": "preview", "ticket": [_valid(order)[0].pk], "to_performance": ga.pk, "price_type": ga.adult.pk})
    html = answer.content.decode()
    assert answer.status_code == 200 and "data-seat-form" not in html and "Exchange 1 ticket" in html
