"""Refunds and exchanges as staff do them: the order page, its forms, and the staff API."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from wondertix.catalog.models import Performance, PriceType
from wondertix.ops import tokens
from wondertix.ops.models import AuditEntry
from wondertix.sales import inventory
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Refund
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(clerk):
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}


def _order(perf, buyer, card, n=3):
    return sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=card))


def test_refund_one_of_three_tickets_from_the_order_page(make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card)
    page = staff.get(f"/staff/sales/orders/{order.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert order.reference in html and "Refund selected" in html
    key = page.context["key"]
    ticket = order.tickets.first()
    form = {"ticket": [str(ticket.pk)], "method": "original", "reason": "Sick", "key": key}

    done = staff.post(f"/staff/sales/orders/{order.pk}/refund/", form, follow=True)

    assert done.status_code == 200
    assert "Refunded $25.00" in done.content.decode()
    order.refresh_from_db()
    assert order.status == Order.PARTIALLY_REFUNDED and order.refunded_cents == 2500
    assert inventory.availability_for([perf.pk])[perf.pk].available == 8
    # A double submit of the same form (same key) changes nothing.
    staff.post(f"/staff/sales/orders/{order.pk}/refund/", form)
    order.refresh_from_db()
    assert order.refunded_cents == 2500 and Refund.objects.count() == 1
    # The reports page shows the partial refund.
    report = staff.get("/staff/reports/sales-by-performance/").content.decode()
    assert "$25.00" in report and "$81.00" in report and "$56.00" in report  # refunded, gross 3 x $27, net


def test_refund_form_refuses_more_than_was_paid_with_a_422(make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card, 1)
    ticket = order.tickets.get()
    audit_before = AuditEntry.objects.count()
    response = staff.post(f"/staff/sales/orders/{order.pk}/refund/", {"ticket": [str(ticket.pk)], f"amount_{ticket.pk}": "30.00", "include_fees": "on", "method": "original", "key": "k1"})
    assert response.status_code == 422
    assert "at most $27.00 can be refunded" in response.content.decode()
    assert AuditEntry.objects.count() == audit_before and not Refund.objects.exists()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.VALID


def test_exchange_through_the_pages_previews_then_charges(make_performance, buyer, good_card, staff):
    here = make_performance(capacity=10)
    there = make_performance(capacity=10)
    PriceType.objects.filter(pk=there.adult.pk).update(price_cents=3000)
    order = _order(here, buyer, good_card, 2)
    ids = [str(t.pk) for t in order.tickets.all()]
    preview = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", {"ticket": ids, "to_performance": str(there.pk), "step": "preview"})
    assert preview.status_code == 200
    assert "cost $10.00 more" in preview.content.decode()
    key = preview.context["key"]
    done = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", {"ticket": ids, "to_performance": str(there.pk), "price_type": "", "step": "confirm", "method": "cash", "key": key}, follow=True)
    assert "charged $10.00" in done.content.decode()
    assert Ticket.objects.filter(order=order, performance=there, status=Ticket.VALID).count() == 2


def test_exchange_to_a_sold_out_show_is_refused_on_the_page(make_performance, buyer, good_card, staff):
    here = make_performance(capacity=10)
    full = make_performance(capacity=1)
    _order(full, buyer, good_card, 1)
    order = _order(here, buyer, good_card, 1)
    response = staff.post(f"/staff/sales/orders/{order.pk}/exchange/", {"ticket": [str(order.tickets.get().pk)], "to_performance": str(full.pk), "step": "confirm", "method": "cash", "key": "kk"})
    assert response.status_code == 409
    assert "sold out" in response.content.decode()
    assert order.tickets.get().status == Ticket.VALID


def test_order_search_finds_by_reference_name_and_ticket_code(make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card, 1)
    code = order.tickets.get().code
    for q in (order.reference, "Lovelace", code, "ada@example"):
        page = staff.get("/staff/sales/", {"q": q})
        assert f"/staff/sales/orders/{order.pk}/" in page.content.decode(), q


def test_refund_all_buyers_page_after_cancellation(make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card, 2)
    page = staff.get(f"/staff/sales/performances/{perf.pk}/refund-all/")
    assert "Cancel it first" in page.content.decode()
    Performance.objects.filter(pk=perf.pk).update(status=Performance.CANCELED)
    done = staff.post(f"/staff/sales/performances/{perf.pk}/refund-all/", {"method": "original", "reason": "Flooded stage"}, follow=True)
    assert "Refunded 2 ticket(s) on 1 order(s), $54.00" in done.content.decode()
    order.refresh_from_db()
    assert order.status == Order.REFUNDED


def test_staff_api_refund_is_idempotent_and_refuses_overpaying(make_performance, buyer, good_card, api):
    perf = make_performance(capacity=10)
    order = _order(perf, buyer, good_card, 3)
    client = Client()
    got = client.get(f"/api/v1/staff/sales/orders/{order.pk}", **api).json()
    assert got["refundable_cents"] == 3 * 2700 and len(got["tickets"]) == 3
    body = json.dumps({"tickets": [{"ticket_id": got["tickets"][0]["id"]}]})
    headers = {**api, "HTTP_IDEMPOTENCY_KEY": "refund-0001"}
    first = client.post(f"/api/v1/staff/sales/orders/{order.pk}/refunds", body, content_type="application/json", **headers)
    assert first.status_code == 201, first.content
    again = client.post(f"/api/v1/staff/sales/orders/{order.pk}/refunds", body, content_type="application/json", **headers)
    assert again.json()["id"] == first.json()["id"] and first.json()["order_status"] == "partially_refunded"
    assert Refund.objects.count() == 1
    too_much = json.dumps({"tickets": [{"ticket_id": got["tickets"][1]["id"], "amount_cents": 999999}], "include_fees": True})
    refused = client.post(f"/api/v1/staff/sales/orders/{order.pk}/refunds", too_much, content_type="application/json", **{**api, "HTTP_IDEMPOTENCY_KEY": "refund-0002"})
    assert refused.status_code == 422 and refused.json()["code"] == "refund_exceeds_paid"
    missing_key = client.post(f"/api/v1/staff/sales/orders/{order.pk}/refunds", body, content_type="application/json", **api)
    assert missing_key.status_code == 422 and missing_key.json()["code"] == "invalid_idempotency_key"
    assert Refund.objects.count() == 1


def test_staff_api_exchange(make_performance, buyer, good_card, api):
    here = make_performance(capacity=10)
    there = make_performance(capacity=10)
    order = _order(here, buyer, good_card, 1)
    body = json.dumps({"ticket_ids": [order.tickets.get().pk], "to_performance_id": there.pk})
    response = Client().post(f"/api/v1/staff/sales/orders/{order.pk}/exchanges", body, content_type="application/json", **{**api, "HTTP_IDEMPOTENCY_KEY": "exchange-1"})
    assert response.status_code == 201, response.content
    assert response.json()["difference_cents"] == 0 and len(response.json()["new_ticket_codes"]) == 1
