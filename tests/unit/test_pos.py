"""Point of sale: cash, card, comp, price overrides, walk-ups, contacts and house seats,
all through the one sale path with the same capacity rules."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from wondertix.boxoffice import pos
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Patron
from wondertix.payments.models import Payment
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Hold, Order, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    user = User.objects.create_user("window-1", is_staff=True)
    user.groups.add(Group.objects.get(name="box_office"))
    return user


@pytest.fixture
def window(clerk):
    client = Client()
    client.force_login(clerk)
    return client


def _available(perf) -> int:
    return inventory.availability_for([perf.pk])[perf.pk].available


def test_cash_sale_to_a_walk_up_from_the_page(make_performance, window):
    perf = make_performance(capacity=10)
    page = window.get(f"/staff/pos/{perf.pk}/")
    assert page.status_code == 200
    key = page.context["form"].initial["idempotency_key"]
    data = {f"qty_{perf.adult.pk}": "2", "payment_method": "cash", "idempotency_key": key}
    response = window.post(f"/staff/pos/{perf.pk}/", data)
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/staff/pos/orders/{order.pk}/"
    assert (order.channel, order.status, order.total_cents) == (Order.BOX_OFFICE, Order.PAID, 5000)  # no online fees at the window
    assert order.payments.get().provider == "cash"
    assert order.buyer_name == "Walk-up Guest"
    assert _available(perf) == 8
    # A double-tap re-sends the same form: the idempotency key answers with the same order.
    again = window.post(f"/staff/pos/{perf.pk}/", data)
    assert again["Location"] == response["Location"]
    assert Order.objects.count() == 1 and _available(perf) == 8
    entry = AuditEntry.objects.get(action="pos.sale")
    assert entry.actor_label == "window-1" and entry.after["payment_method"] == "cash" and entry.after["walk_up"] is True


def test_card_sale_to_an_existing_contact_found_by_search(make_performance, window):
    perf = make_performance()
    patron = Patron.objects.create(first_name="Mary", last_name="Shelley", email="mary@example.org", accommodation="Aisle seat")
    found = window.get(f"/staff/pos/{perf.pk}/", {"contact_q": "shell"}).content.decode()
    assert "mary@example.org" in found and f"?patron={patron.pk}" in found
    response = window.post(f"/staff/pos/{perf.pk}/", {
        f"qty_{perf.student.pk}": "1", "payment_method": "card", "patron_id": patron.pk,
        "card_number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2030", "cvc": "123",
    })
    assert response.status_code == 302
    order = Order.objects.get()
    assert order.patron == patron and order.total_cents == 1000
    assert order.payments.get().provider == "test"


def test_declined_card_sells_nothing(make_performance, window):
    perf = make_performance()
    response = window.post(f"/staff/pos/{perf.pk}/", {
        f"qty_{perf.adult.pk}": "2", "payment_method": "card", "card_number": "4000 0000 0000 0002", "exp_month": "1", "exp_year": "2031", "cvc": "1",
    })
    assert response.status_code == 402
    assert "declined" in response.content.decode()
    assert not Order.objects.exists() and _available(perf) == 10


def test_comp_needs_a_reason_and_is_free(make_performance, clerk):
    perf = make_performance()
    sale = pos.PosSale(performance_id=perf.pk, quantities={perf.adult.pk: 2}, payment_method=pos.COMP)
    with pytest.raises(SaleError) as exc:
        pos.sell_at_box_office(sale, actor=clerk)
    assert exc.value.code == "reason_required"
    assert not Order.objects.exists()
    sale.reason = "Reviewer, Daily Bugle"
    order = pos.sell_at_box_office(sale, actor=clerk)
    assert order.total_cents == 0 and not Payment.objects.exists()
    assert set(order.tickets.values_list("price_cents", flat=True)) == {0}
    assert AuditEntry.objects.get(action="pos.sale").after["reason"] == "Reviewer, Daily Bugle"


def test_price_override_needs_a_reason(make_performance, window):
    perf = make_performance()
    data = {f"qty_{perf.adult.pk}": "1", f"price_{perf.adult.pk}": "10", "payment_method": "cash"}
    refused = window.post(f"/staff/pos/{perf.pk}/", data)
    assert refused.status_code == 422 and "reason for the price override" in refused.content.decode()
    assert not Order.objects.exists()
    window.post(f"/staff/pos/{perf.pk}/", {**data, "reason": "Season subscriber swap"})
    ticket = Ticket.objects.get()
    assert ticket.price_cents == 1000 and ticket.order.total_cents == 1000


def test_pay_what_you_can_at_the_window_takes_the_amount_without_a_reason(make_performance, clerk):
    perf = make_performance()
    order = pos.sell_at_box_office(pos.PosSale(performance_id=perf.pk, quantities={perf.pwyc.pk: 1}, payment_method=pos.CASH,
                                               price_overrides={perf.pwyc.pk: 700}), actor=clerk)
    assert order.total_cents == 700


def test_the_window_cannot_oversell(make_performance, window):
    perf = make_performance(capacity=3, student_limit=1)
    response = window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "4", "payment_method": "cash"})
    assert response.status_code == 409 and "only 3 seats left" in response.content.decode()
    response = window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.student.pk}": "2", "payment_method": "cash"})
    assert response.status_code == 409 and "only 1 “Student” ticket left" in response.content.decode()
    assert not Order.objects.exists()
    assert window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "abc", "payment_method": "cash"}).status_code == 422


def test_house_seats_are_held_back_and_released_for_sale_with_a_reason(make_performance, clerk, window):
    perf = make_performance(capacity=4)
    window.post(f"/staff/pos/{perf.pk}/hold/", {"price_type": perf.adult.pk, "quantity": "2", "reason": "Director's guests"})
    hold = Hold.objects.get()
    assert hold.created_by == clerk and hold.reason == "Director's guests"
    assert _available(perf) == 2
    refused = window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "3", "payment_method": "cash"})
    assert refused.status_code == 409
    window.post(f"/staff/pos/holds/{hold.pk}/release/", {"reason": "", "back": f"/staff/pos/{perf.pk}/"})
    assert _available(perf) == 2  # no reason, no release
    window.post(f"/staff/pos/holds/{hold.pk}/release/", {"reason": "Guests did not come", "back": f"/staff/pos/{perf.pk}/"})
    assert _available(perf) == 4
    assert window.post(f"/staff/pos/{perf.pk}/", {f"qty_{perf.adult.pk}": "4", "payment_method": "cash"}).status_code == 302
    actions = list(AuditEntry.objects.filter(action__startswith="hold.").order_by("id").values_list("action", flat=True))
    assert actions == ["hold.created", "hold.released"]
    with pytest.raises(SaleError):
        pos.release_house_seats(hold.pk, "again", actor=clerk)


def test_staff_only_price_types_sell_at_the_window_only(make_performance, clerk):
    from wondertix.catalog.models import PriceType

    perf = make_performance()
    house = PriceType.objects.create(event=perf.event, name="House", price_cents=0, staff_only=True)
    order = pos.sell_at_box_office(pos.PosSale(performance_id=perf.pk, quantities={house.pk: 1}, payment_method=pos.CASH), actor=clerk)
    assert order.tickets.get().price_type == house


def test_card_at_the_window_on_a_reader_needs_the_reader_and_writes_nothing_without_it(make_performance, clerk, settings):
    # With Stripe the card is taken on a reader (tests/unit/test_stripe_window.py); without
    # one chosen the sale is refused before anything is written.
    settings.PAYMENT_PROVIDER = "stripe"
    perf = make_performance()
    sale = pos.PosSale(performance_id=perf.pk, quantities={perf.adult.pk: 1}, payment_method=pos.CARD)
    with pytest.raises(SaleError) as exc:
        pos.sell_at_box_office(sale, actor=clerk)
    assert exc.value.code == "reader_required"
    assert not Order.objects.exists() and not AuditEntry.objects.filter(action="pos.sale").exists()


@pytest.mark.parametrize(("field", "value"), [
    ("qty", "²"), ("qty", "٣"), ("qty", "9e999997"), ("price", "9e999997"), ("price", "NaN"), ("price", "9e999999"),
    ("card_number", "⁴²⁴²⁴²⁴²⁴²⁴²⁴²⁴²"), ("exp_month", "١٢"),
])
def test_hostile_numbers_at_the_window_are_refused_with_a_message_and_sell_nothing(make_performance, clerk, field, value):
    window = Client(raise_request_exception=False)
    window.force_login(clerk)
    perf = make_performance(capacity=10)
    data = {f"qty_{perf.adult.pk}": "1", "payment_method": "card", "card_number": "4242424242424242", "exp_month": "12",
            "exp_year": "2031", "cvc": "123", "reason": "Testing"}
    key = {"qty": f"qty_{perf.adult.pk}", "price": f"price_{perf.adult.pk}"}.get(field, field)
    data[key] = value
    response = window.post(f"/staff/pos/{perf.pk}/", data)
    assert response.status_code == 422, response.content[:300]
    assert Order.objects.count() == 0
