""""Find my tickets": one answer for every address, the links sent later by the outbox, caps
per address and per client, and the staff "Resend confirmation" on an order."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from wondertix.ops import outbox
from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.sales.models import Order
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell
from wondertix.storefront.models import TicketLookup

pytestmark = pytest.mark.django_db

URL = "/tickets/find/"
LINK = re.compile(r"https?://[^\s\"<>]+/orders/[\w-]+/")


@pytest.fixture
def two_orders(make_performance, good_card, settings):
    settings.SITE_URL = "https://tickets.example.org"
    perf = make_performance(capacity=20)
    later = make_performance(capacity=20)
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="Ada@Example.org")
    first = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))
    second = sell([LineRequest(later.pk, later.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    # their confirmations count as sent: these tests read only what "Find my tickets" sends
    OutboxEmail.objects.update(status=OutboxEmail.SENT)
    mail.outbox.clear()
    return first, second


def _ask(client: Client, email: str, ip: str = "198.51.100.7"):
    return client.post(URL, {"email": email}, REMOTE_ADDR=ip)


def _page(response) -> str:
    """The page as a person sees it (without the per-request CSRF token)."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode()).replace("unknown@example.org", "ADDRESS").replace("ada@example.org", "ADDRESS")


def _shape(queries: list[dict]) -> list[str]:
    """Each statement with its literal values blanked: what the database was asked to do."""
    return [re.sub(r"'[^']*'|\"s\d+_x\d+\"|\b\d+(\.\d+)?\b", "?", q["sql"]) for q in queries]


def test_known_and_unknown_addresses_get_the_same_page_and_the_same_work(two_orders):
    client = Client()
    client.get(URL)  # the session and CSRF cookie exist before both measured requests
    with CaptureQueriesContext(connection) as known_q:
        known = _ask(client, "ada@example.org")
    with CaptureQueriesContext(connection) as unknown_q:
        unknown = _ask(client, "unknown@example.org")

    assert known.status_code == unknown.status_code == 200
    assert _page(known) == _page(unknown)
    assert "If we have orders for ADDRESS, we have sent a link to each of them" in _page(known)
    # Same statements, in the same order: no order is looked up in the request (timing class).
    assert _shape(known_q.captured_queries) == _shape(unknown_q.captured_queries)
    assert not any("sales_order" in q["sql"] for q in known_q.captured_queries)
    assert mail.outbox == []  # nothing is sent from the request
    assert OutboxEmail.objects.filter(kind=OutboxEmail.ORDER_LINKS).count() == 2
    # the lookup table keeps no address in clear
    assert not TicketLookup.objects.filter(address_digest__icontains="example").exists()


def test_the_known_address_receives_a_link_to_each_order_and_the_links_open_them(two_orders):
    first, second = two_orders
    _ask(Client(), "ADA@example.ORG")
    _ask(Client(), "unknown@example.org", ip="198.51.100.8")
    assert outbox.send_due() == {"sent": 2, "retrying": 0, "failed": 0}

    assert len(mail.outbox) == 1  # the unknown address gets nothing
    message = mail.outbox[0]
    assert message.to == ["ADA@example.ORG"]
    links = LINK.findall(message.body)
    assert links == [f"https://tickets.example.org/orders/{second.token}/", f"https://tickets.example.org/orders/{first.token}/"]
    html = message.alternatives[0][0]
    assert all(f'href="{link}"' in html for link in links)
    for link, order in zip(links, (second, first), strict=True):
        page = Client().get(link.replace("https://tickets.example.org", ""))
        assert page.status_code == 200 and order.reference in page.content.decode()
    assert second.reference in message.body and first.reference in message.body


def test_pending_and_other_peoples_orders_are_not_linked(two_orders, make_performance, good_card):
    first, second = two_orders
    Order.objects.filter(pk=second.pk).update(status=Order.PENDING)
    perf = make_performance()
    sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=Buyer(first_name="Bo", last_name="B", email="bo@example.org"), payment=good_card))
    OutboxEmail.objects.update(status=OutboxEmail.SENT)
    mail.outbox.clear()
    _ask(Client(), "ada@example.org")
    outbox.send_due()
    assert LINK.findall(mail.outbox[0].body) == [f"https://tickets.example.org/orders/{first.token}/"]


def test_an_address_asked_for_too_often_gets_the_same_page_and_no_more_mail(two_orders, settings):
    settings.TICKET_LOOKUPS_PER_ADDRESS_PER_HOUR = 2
    answers = [_ask(Client(), "ada@example.org", ip=f"198.51.100.{i}") for i in range(1, 5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert len({_page(a) for a in answers}) == 1
    assert OutboxEmail.objects.filter(kind=OutboxEmail.ORDER_LINKS).count() == 2
    assert TicketLookup.objects.count() == 4


def test_one_client_asking_for_many_addresses_is_refused_with_when_to_retry(two_orders, settings):
    settings.TICKET_LOOKUPS_PER_CLIENT_PER_HOUR = 3
    client = Client()
    for i in range(3):
        assert _ask(client, f"someone{i}@example.org").status_code == 200
    refused = _ask(client, "ada@example.org")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "Too many ticket lookups from your connection" in refused.content.decode()
    assert OutboxEmail.objects.filter(kind=OutboxEmail.ORDER_LINKS).count() == 3  # nothing written
    assert TicketLookup.objects.count() == 3
    assert _ask(Client(), "ada@example.org", ip="203.0.113.9").status_code == 200  # another client


@pytest.mark.parametrize("bad", ["", "not an address", "a@b", "x" * 300 + "@example.org"])
def test_a_malformed_address_is_refused_next_to_the_field_and_nothing_is_written(bad):
    response = _ask(Client(), bad)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in response.content.decode()
    assert OutboxEmail.objects.count() == 0 and TicketLookup.objects.count() == 0


def test_the_form_is_linked_from_every_storefront_page_and_has_no_inline_code():
    page = Client().get("/").content.decode()
    assert f'href="{URL}"' in page
    form = Client().get(URL).content.decode()
    assert '<label for="id_email">Email address</label>' in form
    assert "<script>" not in form and " style=" not in form


def test_staff_resend_confirmation_is_on_the_order_and_audited(two_orders, staff, clerk, django_capture_on_commit_callbacks):
    first, _ = two_orders
    page = staff.get(f"/staff/sales/orders/{first.pk}/").content.decode()
    assert "Resend confirmation" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/staff/sales/orders/{first.pk}/resend-confirmation/")
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ada@example.org"]
    assert {a[2] for a in mail.outbox[0].attachments} == {"application/pdf", "text/calendar"}
    entry = AuditEntry.objects.get(action="order.confirmation_resent")
    assert entry.actor == clerk and entry.object_id == str(first.pk)


def test_lookups_older_than_a_day_are_forgotten(two_orders):
    from datetime import timedelta

    from django.utils import timezone

    _ask(Client(), "ada@example.org")
    TicketLookup.objects.update(created_at=timezone.now() - timedelta(days=2))
    _ask(Client(), "nobody@example.org")
    assert TicketLookup.objects.count() == 1


def test_an_order_without_an_address_says_why_there_is_no_resend(two_orders, staff):
    first, _ = two_orders
    Order.objects.filter(pk=first.pk).update(buyer_email="")
    page = staff.get(f"/staff/sales/orders/{first.pk}/").content.decode()
    assert "Resend confirmation</button>" not in page
    assert "No email address on this order, so there is no confirmation to resend: print the tickets instead." in page
