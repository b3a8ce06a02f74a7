"""The public API v1: catalog reads, holds, orders, the OpenAPI document, and robustness —
whatever a client sends, the answer is a JSON 4xx a person can read, never a 500."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from wondertix.sales.models import Hold, HoldLine, Order, Ticket

pytestmark = pytest.mark.django_db

CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
BUYER = {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.org"}
PUBLIC_OPERATIONS = {
    ("get", "/api/v1/events"),
    ("get", "/api/v1/events/{slug}"),
    ("get", "/api/v1/performances"),
    ("get", "/api/v1/performances/{performance_id}"),
    ("post", "/api/v1/holds"),
    ("get", "/api/v1/holds/{token}"),
    ("delete", "/api/v1/holds/{token}"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders/{token}"),
}


@pytest.fixture
def api():
    # Server errors must show up as a 500 response here, exactly as a client would see them.
    return Client(raise_request_exception=False)


def post(client, path: str, body, **headers: str):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", headers=headers)


def lines(perf, quantity: int = 2, price_type=None) -> list[dict]:
    return [{"performance_id": perf.pk, "price_type_id": (price_type or perf.adult).pk, "quantity": quantity}]


# ----------------------------------------------------------------------------- catalog


def test_events_list_shows_upcoming_performances_with_availability(api, make_performance):
    perf = make_performance(capacity=10)
    make_performance(starts_in=-timedelta(days=1))  # over: its event is not listed
    post(api, "/api/v1/holds", {"lines": lines(perf, 3)})
    events = api.get("/api/v1/events").json()
    assert [e["slug"] for e in events] == [perf.event.slug]
    [listed] = events[0]["performances"]
    assert listed == {
        "id": perf.pk,
        "event_id": perf.event_id,
        "event_title": perf.event.title,
        "starts_at": listed["starts_at"],
        "on_sale_from": None,
        "on_sale_until": None,
        "status": "on_sale",
        "capacity": 10,
        "available": 7,
        "access": [],
    }


def test_events_list_reads_availability_once_for_all_events(api, make_performance, django_assert_max_num_queries):
    for _ in range(4):
        make_performance()
    with django_assert_max_num_queries(5):  # events, their performances, access tags, held seats, counters
        assert len(api.get("/api/v1/events").json()) == 4


def test_event_page_lists_only_upcoming_performances(api, make_performance):
    from wondertix.catalog.models import Performance

    perf = make_performance()
    Performance.objects.create(event=perf.event, starts_at=timezone.now() - timedelta(days=1), capacity=5)
    assert [p["id"] for p in api.get(f"/api/v1/events/{perf.event.slug}").json()["performances"]] == [perf.pk]


def test_event_by_slug_and_unknown_slug(api, make_performance):
    perf = make_performance()
    assert api.get(f"/api/v1/events/{perf.event.slug}").json()["title"] == perf.event.title
    response = api.get("/api/v1/events/no-such-show")
    assert response.status_code == 404
    assert response.json() == {"code": "unknown_event", "message": "There is no event at that address."}


def test_performance_shows_price_types_and_what_is_left_of_limited_ones(api, make_performance):
    perf = make_performance(capacity=10, student_limit=3)
    post(api, "/api/v1/orders", {"lines": lines(perf, 1, perf.student), "buyer": BUYER, "card": CARD})
    data = api.get(f"/api/v1/performances/{perf.pk}").json()
    assert data["available"] == 9
    by_name = {pt["name"]: pt for pt in data["price_types"]}
    assert by_name["Adult"]["price_cents"] == 2500 and by_name["Adult"]["available"] is None
    assert by_name["Student"]["available"] == 2
    assert by_name["Pay what you can"]["pay_what_you_can"] is True
    assert by_name["Pay what you can"]["min_price_cents"] == 500


def test_performances_list_can_be_filtered_by_event(api, make_performance):
    first, second = make_performance(), make_performance()
    ids = [p["id"] for p in api.get(f"/api/v1/performances?event_id={second.event_id}").json()]
    assert ids == [second.pk]
    assert {p["id"] for p in api.get("/api/v1/performances").json()} == {first.pk, second.pk}


def test_sold_out_and_not_yet_on_sale_performances_say_so(api, make_performance):
    full = make_performance(capacity=2)
    later = make_performance(on_sale_from=timezone.now() + timedelta(days=1))
    post(api, "/api/v1/orders", {"lines": lines(full, 2), "buyer": BUYER, "card": CARD})
    assert api.get(f"/api/v1/performances/{full.pk}").json()["status"] == "sold_out"
    assert api.get(f"/api/v1/performances/{later.pk}").json()["status"] == "not_on_sale_yet"


# ----------------------------------------------------------------------------- holds


def test_hold_lifecycle_create_read_release(api, make_performance):
    perf = make_performance(capacity=5)
    created = post(api, "/api/v1/holds", {"lines": lines(perf, 2)})
    assert created.status_code == 201
    hold = created.json()
    assert hold["status"] == "active"
    assert hold["lines"] == [{"performance_id": perf.pk, "price_type_id": perf.adult.pk, "quantity": 2, "unit_price_cents": 2500, "seat_ids": []}]
    assert api.get(f"/api/v1/performances/{perf.pk}").json()["available"] == 3
    assert api.get(f"/api/v1/holds/{hold['token']}").json() == hold

    released = api.delete(f"/api/v1/holds/{hold['token']}")
    assert released.status_code == 204
    assert api.get(f"/api/v1/performances/{perf.pk}").json()["available"] == 5
    assert api.get(f"/api/v1/holds/{hold['token']}").json()["status"] == "released"
    assert api.delete(f"/api/v1/holds/{hold['token']}").status_code == 204  # releasing twice is fine


def test_expired_hold_reads_as_expired_and_frees_its_seats(api, make_performance):
    perf = make_performance(capacity=5)
    token = post(api, "/api/v1/holds", {"lines": lines(perf, 5)}).json()["token"]
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(token=token).update(expires_at=past)
    HoldLine.objects.filter(hold__token=token).update(expires_at=past)
    assert api.get(f"/api/v1/holds/{token}").json()["status"] == "expired"
    assert api.get(f"/api/v1/performances/{perf.pk}").json()["available"] == 5


def test_checked_out_hold_cannot_be_released(api, make_performance):
    perf = make_performance(capacity=5)
    token = post(api, "/api/v1/holds", {"lines": lines(perf, 2)}).json()["token"]
    assert post(api, "/api/v1/orders", {"hold_token": token, "buyer": BUYER, "card": CARD}).status_code == 201
    assert api.get(f"/api/v1/holds/{token}").json()["status"] == "checked_out"
    response = api.delete(f"/api/v1/holds/{token}")
    assert response.status_code == 409
    assert response.json()["code"] == "cart_already_checked_out"
    assert Ticket.objects.filter(order__hold__token=token).count() == 2


def test_unknown_hold_is_404(api):
    for response in (api.get("/api/v1/holds/nosuchtoken"), api.delete("/api/v1/holds/nosuchtoken"), api.get("/api/v1/holds/bad%20token")):
        assert response.status_code == 404
        assert response.json()["code"] == "hold_not_found"


# ----------------------------------------------------------------------------- orders


def test_order_in_one_call_issues_tickets_and_can_be_read_by_token(api, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    body = {"lines": lines(perf, 2), "buyer": BUYER, "card": CARD, "donation_cents": 1000}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, "/api/v1/orders", body)
    assert response.status_code == 201, response.content
    order = response.json()
    assert order["status"] == "paid"
    assert order["buyer_email"] == "ada@example.org"
    assert (order["subtotal_cents"], order["fees_cents"], order["donation_cents"], order["total_cents"]) == (5000, 400, 1000, 6400)
    assert len(order["tickets"]) == 2
    assert all(re.fullmatch(r"[A-Z2-9]{16}", t["code"]) for t in order["tickets"])
    assert order["url"].endswith(f"/orders/{order['token']}/")
    assert api.get(f"/api/v1/orders/{order['token']}").json() == order
    assert api.get(f"/api/v1/performances/{perf.pk}").json()["available"] == 8
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.org"]


def test_order_from_a_hold_uses_the_held_seats(api, make_performance):
    perf = make_performance(capacity=2)
    token = post(api, "/api/v1/holds", {"lines": lines(perf, 2)}).json()["token"]
    # The hold has every seat: a sale without it is refused, the hold's checkout is not.
    assert post(api, "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER, "card": CARD}).json()["code"] == "sold_out"
    response = post(api, "/api/v1/orders", {"hold_token": token, "buyer": BUYER, "card": CARD})
    assert response.status_code == 201
    assert len(response.json()["tickets"]) == 2


def test_api_posts_need_no_csrf_token(make_performance):
    # Integrations have no session cookie: Django's CSRF check must not apply to the API.
    strict = Client(enforce_csrf_checks=True)
    perf = make_performance()
    assert post(strict, "/api/v1/holds", {"lines": lines(perf, 1)}).status_code == 201
    assert post(strict, "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER, "card": CARD}).status_code == 201


def test_free_order_needs_no_card(api, make_performance):
    from wondertix.catalog.models import PriceType

    perf = make_performance()
    comp = PriceType.objects.create(event=perf.event, name="Free preview", price_cents=0)
    response = post(api, "/api/v1/orders", {"lines": lines(perf, 1, comp), "buyer": BUYER})
    assert response.status_code == 201, response.content
    assert response.json()["total_cents"] == 0 and response.json()["status"] == "paid"


def test_unknown_order_token_is_404(api):
    for token in ("nosuchorder", "bad%00token"):
        response = api.get(f"/api/v1/orders/{token}")
        assert response.status_code == 404
        assert response.json() == {"code": "order_not_found", "message": "No order has that token."}


# ----------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("{not json", 400, "not valid JSON"),
        (b"\xff\xfe\x00", 400, "not valid JSON"),
        ("[1, 2]", 400, "must be a JSON object"),
        ('"just a string"', 400, "must be a JSON object"),
        ("{}", 422, "buyer is required"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": "two"}', 422, "lines must be a list"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": [{"performance_id": "1", "price_type_id": 1, "quantity": 1}]}', 422, "lines.0.performance_id must be a whole number"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": [{"performance_id": 1, "price_type_id": 1, "quantity": 1.5}]}', 422, "lines.0.quantity must be a whole number"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": [{"performance_id": 1, "price_type_id": 1, "quantity": true}]}', 422, "lines.0.quantity must be a whole number"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": [{"performance_id": 99999999999999999999999, "price_type_id": 1, "quantity": 1}]}', 422, "less than or equal to"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "lines": [{"performance_id": 1, "price_type_id": 1}]}', 422, "lines.0.quantity is required"),
        ('{"buyer": {"first_name": "A\\u0000", "last_name": "B", "email": "a@b.org"}, "lines": []}', 422, "buyer.first_name contains characters that are not allowed"),
        ('{"buyer": null, "lines": []}', 422, "buyer.email is required"),
        ('{"buyer": {"first_name": "A", "last_name": "B", "email": "a@b.org"}, "hold_token": "../../etc"}', 422, "hold_token contains characters"),
    ],
)
def test_malformed_order_requests_get_a_readable_4xx_and_write_nothing(api, body, status, says):
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == status, response.content
    data = response.json()
    assert data["code"] == "invalid_request"
    assert says in data["message"]
    assert Order.objects.count() == 0


def test_schema_errors_do_not_echo_what_was_sent(api):
    body = {"buyer": BUYER, "lines": [], "card": {"number": 4242424242424242}}
    response = post(api, "/api/v1/orders", body)
    assert response.status_code == 422
    assert "4242424242424242" not in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/performances/abc", 422, "invalid_request"),
        ("get", "/api/v1/performances/0", 422, "invalid_request"),
        ("get", "/api/v1/performances/99999999999999999999", 422, "invalid_request"),
        ("get", "/api/v1/performances/123456", 404, "unknown_performance"),
        ("get", "/api/v1/performances?event_id=x", 422, "invalid_request"),
        ("get", "/api/v1/no-such-endpoint", 404, "not_found"),
        ("put", "/api/v1/orders", 405, "method_not_allowed"),
        ("delete", "/api/v1/events", 405, "method_not_allowed"),
    ],
)
def test_unknown_ids_routes_and_methods_get_json_errors(api, method, path, status, code):
    response = getattr(api, method)(path)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["message"]


def test_unknown_endpoint_is_json_even_in_debug(api, settings):
    settings.DEBUG = True
    response = api.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "/api/v1/docs" in response.json()["message"]
    assert api.get("/api/v1/staff/whoami").status_code == 401  # real routes still win


def test_unsupported_method_names_the_allowed_ones(api):
    response = api.put("/api/v1/orders")
    assert response["Allow"] == "POST"
    assert "use POST" in response.json()["message"]


# ----------------------------------------------------------------------------- OpenAPI


def test_openapi_document_is_served_and_lists_the_public_endpoints(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "WonderTix API"
    listed = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    assert PUBLIC_OPERATIONS <= listed
    assert "Idempotency-Key" in json.dumps(schema["paths"]["/api/v1/orders"]["post"]["parameters"])
    assert api.get("/api/v1/docs").status_code == 200


def test_every_status_a_public_endpoint_returns_is_documented(api, make_performance):
    """Run each public operation into its refusals and check the status is in the schema."""
    schema = api.get("/api/v1/openapi.json").json()
    perf = make_performance(capacity=2)
    token = post(api, "/api/v1/holds", {"lines": lines(perf, 1)}).json()["token"]
    order = post(api, "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER, "card": CARD}).json()
    calls = [
        ("get", "/api/v1/events", "/api/v1/events", None),
        ("get", "/api/v1/events/{slug}", f"/api/v1/events/{perf.event.slug}", None),
        ("get", "/api/v1/events/{slug}", "/api/v1/events/nope", None),
        ("get", "/api/v1/performances", "/api/v1/performances", None),
        ("get", "/api/v1/performances", "/api/v1/performances?event_id=zero", None),
        ("get", "/api/v1/performances/{performance_id}", f"/api/v1/performances/{perf.pk}", None),
        ("get", "/api/v1/performances/{performance_id}", "/api/v1/performances/777", None),
        ("get", "/api/v1/performances/{performance_id}", "/api/v1/performances/x", None),
        ("post", "/api/v1/holds", "/api/v1/holds", {"lines": lines(perf, 1)}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"lines": lines(perf, 5)}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"lines": [{"performance_id": 777, "price_type_id": 1, "quantity": 1}]}),
        ("post", "/api/v1/holds", "/api/v1/holds", {"lines": lines(perf, 0)}),
        ("post", "/api/v1/holds", "/api/v1/holds", "{oops"),
        ("get", "/api/v1/holds/{token}", f"/api/v1/holds/{token}", None),
        ("get", "/api/v1/holds/{token}", "/api/v1/holds/nope", None),
        ("delete", "/api/v1/holds/{token}", "/api/v1/holds/nope", None),
        ("delete", "/api/v1/holds/{token}", f"/api/v1/holds/{token}", None),
        ("post", "/api/v1/orders", "/api/v1/orders", {"lines": lines(perf, 9), "buyer": BUYER, "card": CARD}),
        ("post", "/api/v1/orders", "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER, "card": {"number": "4000000000000002"}}),
        ("post", "/api/v1/orders", "/api/v1/orders", {"lines": [{"performance_id": 777, "price_type_id": 1, "quantity": 1}], "buyer": BUYER, "card": CARD}),
        ("post", "/api/v1/orders", "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER}),
        ("post", "/api/v1/orders", "/api/v1/orders", "[]"),
        ("post", "/api/v1/orders", "/api/v1/orders", {"lines": lines(perf, 1), "buyer": BUYER, "card": CARD}),
        ("get", "/api/v1/orders/{token}", f"/api/v1/orders/{order['token']}", None),
        ("get", "/api/v1/orders/{token}", "/api/v1/orders/nope", None),
    ]
    seen: set[tuple[str, str, int]] = set()
    for method, template, url, body in calls:
        response = post(api, url, body) if method == "post" else getattr(api, method)(url)
        documented = set(schema["paths"][template][method]["responses"])
        assert str(response.status_code) in documented, (method, url, response.status_code, response.content)
        assert response.status_code < 500
        seen.add((method, template, response.status_code))
    # The calls above reached every kind of answer the endpoints have.
    assert {s for _, _, s in seen} >= {200, 201, 204, 400, 402, 404, 409, 422}
