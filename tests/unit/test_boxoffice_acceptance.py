"""Acceptance 2, tried as a new staff member would: set up a show through the staff pages,
see it on the storefront, sell to a patron with an accommodation, then work the door."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from wondertix.catalog.models import Event, Performance, PriceType
from wondertix.ops.models import AuditEntry
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.models import Ticket
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def _staff(username: str, role: str) -> User:
    user = User.objects.create_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _storefront_lists(title: str) -> None:
    """The public storefront (/) when it is mounted, and the public API always."""
    api = Client().get("/api/v1/events")
    assert api.status_code == 200
    assert title in [e["title"] for e in api.json()]
    try:
        match = resolve("/")
    except Resolver404:
        return
    if match.func.__module__.startswith("wondertix.storefront"):
        page = Client().get("/")
        assert page.status_code == 200
        assert title in page.content.decode()


def test_new_show_is_set_up_sold_and_admitted_at_the_door():
    admin = _client(_staff("stage-manager", "admin"))
    usher_user = _staff("usher-1", "usher")
    usher = _client(usher_user)
    title = "The Tempest"

    # 1. Create the event (inactive at first, so not on the storefront yet).
    r = admin.post("/staff/events/new/", {"title": title, "slug": "the-tempest", "description": "Storm and magic."})
    assert r.status_code == 302, r.content.decode()[:2000]
    event = Event.objects.get(slug="the-tempest")
    assert r["Location"] == f"/staff/events/{event.pk}/"
    assert event.active is False
    assert title not in [e["title"] for e in Client().get("/api/v1/events").json()]

    # 2. One price type, one performance of 10 seats.
    r = admin.post(f"/staff/events/{event.pk}/price-types/new/", {"name": "Adult", "price_cents": "25.00", "fee_cents": "", "sort_order": "0"})
    assert r.status_code == 302, r.content.decode()[:3000]
    adult = PriceType.objects.get(event=event, name="Adult")
    assert adult.price_cents == 2500
    starts = timezone.localtime(timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    r = admin.post(f"/staff/events/{event.pk}/performances/new/", {"starts_at": starts.strftime("%Y-%m-%dT%H:%M"), "capacity": "10"})
    assert r.status_code == 302, r.content.decode()[:3000]
    perf = Performance.objects.get(event=event)
    assert perf.capacity == 10
    assert perf.starts_at == starts

    # 3. Activate it: now it is on the storefront.
    r = admin.post(f"/staff/events/{event.pk}/active/", {"active": "1"})
    assert r.status_code == 302
    event.refresh_from_db()
    assert event.active is True
    _storefront_lists(title)
    page = admin.get(f"/staff/events/{event.pk}/").content.decode()
    assert "0 / 10" in page and "Adult" in page and "$25.00" in page

    # 4. A patron who needs wheelchair space buys 3 tickets.
    patron_buyer = Buyer(first_name="Grace", last_name="Hopper", email="grace@example.org", accommodation="Wheelchair space")
    order = sell(
        [LineRequest(perf.pk, adult.pk, 3)],
        CheckoutDetails(buyer=patron_buyer, payment=PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")),
    )
    assert order.tickets.count() == 3

    # 5. The door list shows her with "3 x Adult" and the accommodation.
    r = usher.get(f"/staff/door/{perf.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    row = re.search(r'<tr id="patron-\d+">(.*?)</tr>', html, re.S)
    assert row is not None
    assert "Grace Hopper" in row.group(1)
    assert "3 x Adult" in row.group(1)
    assert "Wheelchair space" in row.group(1)
    assert "0 / 3" in row.group(1)

    # 6. Each ticket scans in; a second scan of any is refused with who and when.
    codes = list(Ticket.objects.filter(order=order).values_list("code", flat=True))
    for code in codes:
        r = usher.post(f"/staff/door/{perf.pk}/checkin/", {"code": code})
        assert r.status_code == 200
        assert "scan-ok" in r.content.decode()
    assert Ticket.objects.filter(order=order, checked_in_at__isnull=False).count() == 3
    r = usher.post(f"/staff/door/{perf.pk}/checkin/", {"code": codes[0]})
    assert r.status_code == 409
    body = r.content.decode()
    assert "scan-bad" in body and "Already checked in by usher-1" in body
    assert AuditEntry.objects.filter(action="ticket.checked_in").count() == 3

    row = re.search(r'<tr id="patron-\d+">(.*?)</tr>', usher.get(f"/staff/door/{perf.pk}/").content.decode(), re.S)
    assert row is not None and "all 3" in row.group(1)

    # Everything the admin did is in the audit log.
    actions = set(AuditEntry.objects.filter(actor_label="stage-manager").values_list("action", flat=True))
    assert {"event.created", "price_type.created", "performance.created", "event.activated"} <= actions
