"""Per-performance prices: a preview sells cheaper, a Saturday night dearer, in every sale path.

One performance of a show gets its own Adult price and fee; its sister performance keeps the
list price. Each sale path (storefront checkout, API order, POS sale, exchange, reports) must
charge the override at that performance and the list price elsewhere.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PerformancePrice
from wondertix.ops.models import AuditEntry
from wondertix.reports import services as reports
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets, quote_exchange
from wondertix.sales.models import Order
from wondertix.sales.services import CheckoutDetails, LineRequest, create_hold, sell

pytestmark = pytest.mark.django_db

GOOD_CARD = "4242 4242 4242 4242"
SATURDAY_PRICE, SATURDAY_FEE = 4000, 300  # list: Adult $25.00 + $2.00 fee


@pytest.fixture
def shows(make_performance, admin_user):
    """A weekday performance at list price and a Saturday night of the same event, dearer."""
    weekday = make_performance(capacity=20)
    saturday = Performance.objects.create(event=weekday.event, starts_at=weekday.starts_at.replace(hour=19), capacity=20)
    saturday.adult, saturday.student, saturday.pwyc = weekday.adult, weekday.student, weekday.pwyc  # type: ignore[attr-defined]
    performance_prices.set_override(saturday.pk, weekday.adult.pk, {"price_cents": SATURDAY_PRICE, "fee_cents": SATURDAY_FEE}, actor=admin_user)
    return weekday, saturday


# ---------------------------------------------------------------------------- sale paths


def test_storefront_checkout_charges_the_performance_price(client, shows):
    weekday, saturday = shows
    page = client.get(f"/performances/{saturday.pk}/").content.decode()
    assert "$40.00" in page and "$3.00 fee" in page
    assert "$25.00" in client.get(f"/performances/{weekday.pk}/").content.decode()
    assert client.post(f"/performances/{saturday.pk}/", {f"qty_{saturday.adult.pk}": "2"}).status_code == 302
    assert "2 × Adult at $40.00 + $3.00 fee" in " ".join(client.get("/cart/").content.decode().split())
    done = client.post("/checkout/", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "phone": "555-010-2000",
        "address_line1": "1 Way", "city": "Portland", "region": "OR", "postal_code": "97201",
        "card_number": GOOD_CARD, "card_expiry": "12/30", "card_cvc": "123", "hold": client.session["storefront.hold"],
    })
    assert done.status_code == 302, done.content.decode()[:1500]
    order = Order.objects.get()
    assert (order.subtotal_cents, order.fees_cents, order.total_cents) == (2 * 4000, 2 * 300, 2 * 4300)
    assert sorted(order.tickets.values_list("price_cents", "fee_cents")) == [(4000, 300), (4000, 300)]
    # The event page says which dates have their own prices.
    event_page = " ".join(client.get(f"/events/{weekday.event.slug}/").content.decode().split())
    assert event_page.count("Special prices for this performance") == 1


def test_api_shows_and_charges_the_effective_price_per_performance(client, shows):
    weekday, saturday = shows
    sat = {pt["name"]: pt for pt in client.get(f"/api/v1/performances/{saturday.pk}").json()["price_types"]}
    wk = {pt["name"]: pt for pt in client.get(f"/api/v1/performances/{weekday.pk}").json()["price_types"]}
    assert (sat["Adult"]["price_cents"], sat["Adult"]["fee_cents"], sat["Adult"]["performance_price"]) == (4000, 300, True)
    assert (wk["Adult"]["price_cents"], wk["Adult"]["fee_cents"], wk["Adult"]["performance_price"]) == (2500, 200, False)
    assert sat["Student"]["performance_price"] is False and sat["Student"]["price_cents"] == 1000

    body = {"lines": [{"performance_id": saturday.pk, "price_type_id": saturday.adult.pk, "quantity": 2}],
            "buyer": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
            "card": {"number": GOOD_CARD, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
    made = client.post("/api/v1/orders", json.dumps(body), content_type="application/json")
    assert made.status_code == 201, made.content
    assert (made.json()["subtotal_cents"], made.json()["fees_cents"]) == (8000, 600)
    # A client that sends the list price for the dearer night is refused, not trusted.
    body["lines"][0]["unit_price_cents"] = 2500
    refused = client.post("/api/v1/orders", json.dumps(body), content_type="application/json", headers={"Idempotency-Key": "list-price-1"})
    assert refused.status_code == 422 and refused.json()["code"] == "price_mismatch"
    assert Order.objects.count() == 1


def test_pos_sale_takes_the_performance_price_without_online_fee(make_performance, shows):
    weekday, saturday = shows
    clerk = User.objects.create_user("window-1", is_staff=True)
    clerk.groups.add(Group.objects.get(name="box_office"))
    window = Client()
    window.force_login(clerk)
    page = window.get(f"/staff/pos/{saturday.pk}/")
    assert "$40.00" in page.content.decode()
    key = page.context["form"].initial["idempotency_key"]
    response = window.post(f"/staff/pos/{saturday.pk}/", {f"qty_{saturday.adult.pk}": "2", "payment_method": "cash", "idempotency_key": key})
    assert response.status_code == 302, response.content.decode()[:1500]
    assert Order.objects.get().total_cents == 2 * 4000  # the window charges no online fee


def test_held_price_is_the_performance_price_and_a_hold_at_list_price_is_refused(shows):
    weekday, saturday = shows
    hold = create_hold([LineRequest(saturday.pk, saturday.adult.pk, 1), LineRequest(weekday.pk, weekday.adult.pk, 1)])
    assert sorted(hold.lines.values_list("performance_id", "unit_price_cents")) == sorted([(saturday.pk, 4000), (weekday.pk, 2500)])
    with pytest.raises(SaleError) as refused:
        create_hold([LineRequest(saturday.pk, saturday.adult.pk, 1, 2500)])
    assert refused.value.code == "price_mismatch"


def test_exchange_to_the_dearer_night_charges_the_override_difference(shows, buyer, good_card, admin_user):
    weekday, saturday = shows
    order = sell([LineRequest(weekday.pk, weekday.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))
    request = ExchangeRequest([t.pk for t in order.tickets.all()], saturday.pk, method="card", card=good_card)
    assert quote_exchange(order.pk, request).difference_cents == 2 * (4000 - 2500)
    exchange_tickets(order.pk, request, idempotency_key="sat-1", actor=admin_user)
    assert sorted(order.tickets.filter(performance=saturday).values_list("price_cents", flat=True)) == [4000, 4000]


def test_reports_count_the_revenue_at_the_price_sold(shows, buyer, good_card):
    weekday, saturday = shows
    sell([LineRequest(saturday.pk, saturday.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))
    sell([LineRequest(weekday.pk, weekday.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    rows = {r.key: r for r in reports.sales_by(reports.Period(), "performance").rows}
    assert rows[str(saturday.pk)].gross_cents == 2 * (4000 + 300)
    assert rows[str(weekday.pk)].gross_cents == 2500 + 200
    assert reports.summary(reports.Period()).reconciles


def test_a_performance_limit_overrides_the_type_limit_both_ways(shows, buyer, good_card, admin_user):
    weekday, saturday = shows  # Student: at most 3 per performance
    performance_prices.set_override(saturday.pk, saturday.student.pk, {"limit_per_performance": 5}, actor=admin_user)
    performance_prices.set_override(weekday.pk, weekday.student.pk, {"limit_per_performance": 1}, actor=admin_user)
    sell([LineRequest(saturday.pk, saturday.student.pk, 5)], CheckoutDetails(buyer=buyer, payment=good_card))
    with pytest.raises(SaleError) as refused:
        create_hold([LineRequest(weekday.pk, weekday.student.pk, 2)])
    assert refused.value.code == "sold_out" and "only 1 “Student”" in refused.value.message
    # Lowering a limit below what is already sold at that performance is refused.
    with pytest.raises(SaleError) as low:
        performance_prices.set_override(saturday.pk, saturday.student.pk, {"limit_per_performance": 4}, actor=admin_user)
    assert low.value.code == "limit_below_sold"
    assert PerformancePrice.objects.get(performance=saturday, price_type=saturday.student).limit_per_performance == 5


def test_cleared_override_restores_the_list_price(shows, admin_user):
    weekday, saturday = shows
    assert performance_prices.clear_override(saturday.pk, saturday.adult.pk, actor=admin_user)
    hold = create_hold([LineRequest(saturday.pk, saturday.adult.pk, 1)])
    assert hold.lines.get().unit_price_cents == 2500
    assert AuditEntry.objects.filter(action="performance_price.cleared").count() == 1


# ---------------------------------------------------------------------------- staff page


def test_staff_set_an_override_in_dollars_on_the_performance_page(make_performance, admin):
    perf = make_performance()
    page = admin.get(f"/staff/performances/{perf.pk}/prices/")
    assert page.status_code == 200 and "Prices at this performance" in page.content.decode()
    saved = admin.post(f"/staff/performances/{perf.pk}/prices/", {
        "price_type": perf.adult.pk, f"pt{perf.adult.pk}-price_cents": "18.50", f"pt{perf.adult.pk}-fee_cents": "",
        f"pt{perf.adult.pk}-limit_per_performance": "",
    })
    assert saved.status_code == 302
    row = PerformancePrice.objects.get(performance=perf, price_type=perf.adult)
    assert (row.price_cents, row.fee_cents, row.limit_per_performance) == (1850, None, None)
    entry = AuditEntry.objects.get(action="performance_price.set")
    assert entry.actor_label == "house-manager" and entry.after["price_cents"] == 1850
    # Clearing it from the page puts the list price back.
    admin.post(f"/staff/performances/{perf.pk}/prices/", {"price_type": perf.adult.pk, "action": "clear"})
    assert not PerformancePrice.objects.exists()


@pytest.mark.parametrize(("field", "value", "says"), [
    ("price_cents", "-5", "cannot be negative"),
    ("price_cents", "abc", "not an amount of money"),
    ("price_cents", "12.345", "at most two decimal places"),
    ("fee_cents", "1e3", "plain digits"),
    ("limit_per_performance", "-1", "greater than or equal to 0"),
    ("limit_per_performance", "2.5", "whole number"),
])
def test_bad_override_input_is_refused_with_a_message_and_writes_nothing(make_performance, admin, field, value, says):
    perf = make_performance()
    response = admin.post(f"/staff/performances/{perf.pk}/prices/", {"price_type": perf.adult.pk, f"pt{perf.adult.pk}-{field}": value})
    assert response.status_code == 422
    assert says in response.content.decode()
    assert not PerformancePrice.objects.exists() and not AuditEntry.objects.filter(action__startswith="performance_price").exists()


def test_pay_what_you_can_price_cannot_be_overridden_but_its_fee_can(make_performance, admin_user):
    perf = make_performance()
    with pytest.raises(SaleError) as refused:
        performance_prices.set_override(perf.pk, perf.pwyc.pk, {"price_cents": 100}, actor=admin_user)
    assert refused.value.code == "pwyc_price_override" and refused.value.status == 422
    assert not PerformancePrice.objects.exists()
    performance_prices.set_override(perf.pk, perf.pwyc.pk, {"fee_cents": 0}, actor=admin_user)
    assert PerformancePrice.objects.get().fee_cents == 0


def test_service_refuses_bad_cents_and_a_price_type_of_another_event(make_performance, admin_user):
    perf, other = make_performance(), make_performance()
    for data, code in (({"price_cents": -1}, "invalid_price_cents"), ({"price_cents": 1.5}, "invalid_price_cents"),
                       ({"fee_cents": "x"}, "invalid_fee_cents"), ({"price_cents": True}, "invalid_price_cents"),
                       ({"colour": 1}, "invalid_field")):
        with pytest.raises(SaleError) as refused:
            performance_prices.set_override(perf.pk, perf.adult.pk, data, actor=admin_user)
        assert refused.value.code == code and refused.value.status == 422
    with pytest.raises(SaleError) as wrong:
        performance_prices.set_override(perf.pk, other.adult.pk, {"price_cents": 100}, actor=admin_user)
    assert wrong.value.code == "invalid_price_type"
    assert not PerformancePrice.objects.exists()


def test_performances_without_their_own_prices_cost_the_sale_path_no_lookup(make_performance, buyer, good_card, admin_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    perf = make_performance()
    with CaptureQueriesContext(connection) as sale:
        sell([LineRequest(perf.pk, perf.student.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    assert not [q for q in sale.captured_queries if "catalog_performanceprice" in q["sql"]]
    # The flag follows the overrides: set with the first, cleared with the last.
    performance_prices.set_override(perf.pk, perf.adult.pk, {"price_cents": 100}, actor=admin_user)
    performance_prices.set_override(perf.pk, perf.student.pk, {"limit_per_performance": 1}, actor=admin_user)
    perf.refresh_from_db()
    assert perf.has_own_prices
    with pytest.raises(SaleError):  # the Student limit of 1 is already sold
        sell([LineRequest(perf.pk, perf.student.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    performance_prices.clear_override(perf.pk, perf.adult.pk, actor=admin_user)
    perf.refresh_from_db()
    assert perf.has_own_prices
    performance_prices.clear_override(perf.pk, perf.student.pk, actor=admin_user)
    perf.refresh_from_db()
    assert not perf.has_own_prices


def test_lowering_a_type_limit_ignores_performances_with_their_own(shows, buyer, good_card, admin_user):
    from wondertix.catalog import staff

    weekday, saturday = shows  # Student: at most 3 per performance
    performance_prices.set_override(saturday.pk, saturday.student.pk, {"limit_per_performance": 6}, actor=admin_user)
    sell([LineRequest(saturday.pk, saturday.student.pk, 5)], CheckoutDetails(buyer=buyer, payment=good_card))
    sell([LineRequest(weekday.pk, weekday.student.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))
    with pytest.raises(SaleError) as refused:  # the weekday, under the type's limit, has sold 2
        staff.update_price_type(weekday.student.pk, {"limit_per_performance": 1}, actor=admin_user)
    assert refused.value.code == "limit_below_sold" and refused.value.details["sold"] == 2
    assert staff.update_price_type(weekday.student.pk, {"limit_per_performance": 2}, actor=admin_user).limit_per_performance == 2
