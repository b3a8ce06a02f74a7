"""Acceptance 5 through the API: bad input gets a clear 4xx and writes nothing.

Each case asserts the status, the stable code, a message a person can act on, and that no
row of any kind was written (orders, tickets, payments, patrons, holds, donations, audit
entries, discount usage, the performance's sold counter).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import Payment
from wondertix.sales.models import DiscountCode, Hold, HoldLine, Order, Ticket

pytestmark = pytest.mark.django_db

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
BUYER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


def snapshot() -> dict[str, object]:
    from wondertix.catalog.models import Performance

    return {
        "orders": Order.objects.count(),
        "tickets": Ticket.objects.count(),
        "payments": Payment.objects.count(),
        "patrons": Patron.objects.count(),
        "holds": Hold.objects.count(),
        "hold_lines": HoldLine.objects.count(),
        "donations": Donation.objects.count(),
        "audit": AuditEntry.objects.count(),
        "discount_uses": sorted(DiscountCode.objects.values_list("code", "times_used")),
        "sold": sorted(Performance.objects.values_list("pk", "tickets_sold")),
    }


def post(client, path: str, body: dict, **headers: str):
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def order_body(perf, price_type=None, quantity: int = 2, **extra) -> dict:
    body = {
        "lines": [{"performance_id": perf.pk, "price_type_id": (price_type or perf.adult).pk, "quantity": quantity}],
        "buyer": dict(BUYER),
        "card": CARD,
    }
    body.update(extra)
    return body


def refused(client, path: str, body: dict, status: int, code: str, says: str, **headers: str) -> dict:
    """POST, and prove the refusal: status, code, a message containing `says`, nothing written."""
    before = snapshot()
    response = post(client, path, body, **headers)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert data["code"] == code
    assert says.lower() in data["message"].lower(), data["message"]
    assert snapshot() == before
    return data


@pytest.fixture
def perf(make_performance):
    return make_performance(capacity=30, student_limit=3)


@pytest.mark.parametrize(
    ("quantity", "says"),
    [(0, "at least one ticket"), (-2, "at least one ticket"), (21, "at most 20 tickets")],
)
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/holds"])
def test_bad_quantity_is_refused_and_writes_nothing(client, perf, quantity, says, path):
    data = refused(client, path, order_body(perf, quantity=quantity), 422, "invalid_quantity", says)
    assert data["field"] == "quantity"


def test_quantities_adding_up_above_the_order_maximum_are_refused(client, perf):
    body = order_body(perf, quantity=12)
    body["lines"].append({"performance_id": perf.pk, "price_type_id": perf.student.pk, "quantity": 2})
    body["lines"].append({"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": 9})
    refused(client, "/api/v1/orders", body, 422, "invalid_quantity", "at most 20 tickets")


def test_more_than_a_price_types_limit_is_refused(client, perf):
    data = refused(client, "/api/v1/orders", order_body(perf, perf.student, quantity=4), 409, "sold_out", "only 3 “Student” tickets left")
    assert data["details"]["available"] == 3


def test_more_than_the_seats_left_is_refused(client, make_performance):
    small = make_performance(capacity=2)
    data = refused(client, "/api/v1/orders", order_body(small, quantity=3), 409, "sold_out", "only 2 seats left")
    assert data["details"] == {"performance_id": small.pk, "available": 2}


def test_unknown_performance_is_refused(client, perf):
    body = order_body(perf)
    body["lines"][0]["performance_id"] = perf.pk + 1000
    refused(client, "/api/v1/orders", body, 404, "unknown_performance", "does not exist")


def test_price_type_of_another_event_is_refused(client, perf, make_performance):
    other = make_performance()
    body = order_body(perf, other.adult)
    refused(client, "/api/v1/orders", body, 422, "invalid_price_type", "not sold for this performance")


def test_past_performance_is_refused(client, make_performance):
    past = make_performance(starts_in=-timedelta(hours=2))
    refused(client, "/api/v1/orders", order_body(past), 422, "performance_past", "closed")


def test_performance_not_on_sale_yet_is_refused(client, make_performance):
    later = make_performance(on_sale_from=timezone.now() + timedelta(days=2))
    data = refused(client, "/api/v1/orders", order_body(later), 422, "not_on_sale_yet", "go on sale")
    assert str(timezone.localtime(later.on_sale_from).day) in data["message"]


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "ada example.org", ""])
def test_malformed_email_is_refused(client, perf, email):
    body = order_body(perf)
    body["buyer"]["email"] = email
    data = refused(client, "/api/v1/orders", body, 422, "invalid_email", "not a valid email address")
    assert data["field"] == "email"


def test_unknown_discount_code_is_refused(client, perf):
    refused(client, "/api/v1/orders", order_body(perf, discount_code="NOSUCHCODE"), 422, "discount_unknown", "“NOSUCHCODE” does not exist")


def test_exhausted_discount_code_is_refused(client, perf):
    DiscountCode.objects.create(code="ONCE", kind=DiscountCode.AMOUNT, value=500, usage_limit=1, times_used=1)
    refused(client, "/api/v1/orders", order_body(perf, discount_code="once"), 409, "discount_exhausted", "used up")


def test_discount_code_below_its_minimum_is_refused(client, perf):
    DiscountCode.objects.create(code="FAMILY4", kind=DiscountCode.PERCENT, value=20, min_tickets=4)
    refused(client, "/api/v1/orders", order_body(perf, quantity=3, discount_code="FAMILY4"), 422, "discount_minimum_not_met", "at least 4 eligible tickets")


def test_expired_discount_code_is_refused(client, perf):
    DiscountCode.objects.create(code="SPRING", kind=DiscountCode.AMOUNT, value=500, valid_until=timezone.now() - timedelta(days=1))
    refused(client, "/api/v1/orders", order_body(perf, discount_code="SPRING"), 422, "discount_expired", "has expired")


def test_valid_discount_code_is_applied_and_counted(client, perf):
    code = DiscountCode.objects.create(code="FRIENDS", kind=DiscountCode.AMOUNT, value=500, usage_limit=5)
    response = post(client, "/api/v1/orders", order_body(perf, quantity=2, discount_code="friends"))
    assert response.status_code == 201, response.content
    assert response.json()["discount_cents"] == 1000
    assert response.json()["total_cents"] == 2 * (2500 + 200) - 1000
    code.refresh_from_db()
    assert code.times_used == 1


def test_tampered_price_is_refused(client, perf):
    body = order_body(perf)
    body["lines"][0]["unit_price_cents"] = 1
    data = refused(client, "/api/v1/orders", body, 422, "price_mismatch", "reload the page")
    assert data["field"] == "unit_price_cents"


def test_pay_what_you_can_below_its_minimum_is_refused(client, perf):
    body = order_body(perf, perf.pwyc, quantity=1)
    body["lines"][0]["unit_price_cents"] = 100
    refused(client, "/api/v1/orders", body, 422, "invalid_price", "from $5.00 to $50.00")


def test_replayed_hold_token_is_refused(client, perf):
    hold = post(client, "/api/v1/holds", {"lines": order_body(perf)["lines"]}).json()
    first = post(client, "/api/v1/orders", {"hold_token": hold["token"], "buyer": BUYER, "card": CARD})
    assert first.status_code == 201, first.content
    refused(
        client, "/api/v1/orders", {"hold_token": hold["token"], "buyer": BUYER, "card": CARD},
        409, "cart_already_checked_out", "already been checked out",
    )


def test_expired_hold_is_refused(client, perf):
    hold = post(client, "/api/v1/holds", {"lines": order_body(perf)["lines"]}).json()
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(token=hold["token"]).update(expires_at=past)
    HoldLine.objects.filter(hold__token=hold["token"]).update(expires_at=past)
    refused(
        client, "/api/v1/orders", {"hold_token": hold["token"], "buyer": BUYER, "card": CARD},
        409, "hold_expired", "released",
    )


def test_unknown_hold_token_is_refused(client, perf):
    refused(client, "/api/v1/orders", {"hold_token": "nosuchholdtoken", "buyer": BUYER, "card": CARD}, 404, "hold_not_found", "could not be found")


def test_declined_card_is_refused_and_writes_nothing(client, perf):
    body = order_body(perf)
    body["card"] = {"number": "4000 0000 0000 0002"}
    refused(client, "/api/v1/orders", body, 402, "payment_declined", "declined")


def test_missing_card_is_refused(client, perf):
    body = order_body(perf)
    del body["card"]
    refused(client, "/api/v1/orders", body, 402, "card_required", "card number")


def test_lines_and_hold_token_together_are_refused(client, perf):
    refused(client, "/api/v1/orders", order_body(perf, hold_token="abcdefgh"), 422, "invalid_request", "either lines or hold_token")


def test_one_call_order_with_a_card_is_refused_where_the_card_is_paid_on_stripes_page(client, perf, settings):
    settings.PAYMENT_PROVIDER = "stripe"
    data = refused(client, "/api/v1/orders", order_body(perf), 422, "card_not_accepted", "payment_url")
    assert data["field"] == "card"
