"""Patron sign-in by emailed link (storefront.account): one answer for every address, the
link sent later by the outbox, single use, expiry, only a hash stored, and the caps."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.sales.services import CheckoutDetails, LineRequest, sell
from wondertix.storefront import account
from wondertix.storefront.models import PatronSignIn

pytestmark = pytest.mark.django_db

URL = "/account/sign-in/"
LINK = re.compile(r"https?://[^\s\"<>]+/account/sign-in/([\w-]+)/")


@pytest.fixture
def patron_order(make_performance, buyer, good_card, settings):
    settings.SITE_URL = "https://tickets.example.org"
    perf = make_performance(capacity=20)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))
    OutboxEmail.objects.update(status=OutboxEmail.SENT)
    mail.outbox.clear()
    return order


def _ask(client: Client, email: str, ip: str = "198.51.100.7"):
    return client.post(URL, {"email": email}, REMOTE_ADDR=ip)


def _page(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode()).replace("unknown@example.org", "ADDRESS").replace("ada@example.org", "ADDRESS")


def _shape(queries: list[dict]) -> list[str]:
    return [re.sub(r"'[^']*'|\"s\d+_x\d+\"|\b\d+(\.\d+)?\b", "?", q["sql"]) for q in queries]


def _link_from_mail() -> str:
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    found = LINK.search(message.body)
    assert found, message.body
    assert found.group(0) in message.alternatives[0][0]  # the HTML part carries the same link
    return found.group(1)


def test_known_and_unknown_addresses_get_the_same_page_and_the_same_work(patron_order):
    client = Client()
    client.get(URL)
    with CaptureQueriesContext(connection) as known_q:
        known = _ask(client, "ada@example.org")
    with CaptureQueriesContext(connection) as unknown_q:
        unknown = _ask(client, "unknown@example.org")

    assert known.status_code == unknown.status_code == 200
    assert _page(known) == _page(unknown)
    assert "If ADDRESS is the address of one of our patrons, we have sent it a link" in _page(known)
    assert _shape(known_q.captured_queries) == _shape(unknown_q.captured_queries)
    assert not any("patrons_patron" in q["sql"] for q in known_q.captured_queries)  # nothing looked up
    assert mail.outbox == []

    # Sent later: the known address gets its link, the unknown one nothing.
    assert outbox.send_due() == {"sent": 2, "retrying": 0, "failed": 0}
    assert [m.to for m in mail.outbox] == [["ada@example.org"]]
    assert "Sign in" in mail.outbox[0].subject


def test_the_link_is_stored_only_as_a_hash_and_signs_in_once(patron_order):
    _ask(Client(), "Ada@Example.org")
    outbox.send_due()
    token = _link_from_mail()
    row = PatronSignIn.objects.get()
    assert row.token_hash == account.token_hash(token) and token not in row.token_hash
    assert not PatronSignIn.objects.filter(salt=token).exists()
    assert "example" not in row.address_digest

    browser = Client()
    assert browser.get(f"/account/sign-in/{token}/").status_code == 200  # a GET (mail scanners) spends nothing
    answer = browser.post(f"/account/sign-in/{token}/")
    assert answer.status_code == 302 and answer["Location"] == "/account/"
    home = browser.get("/account/")
    assert home.status_code == 200 and patron_order.reference in home.content.decode()
    assert "My account" in home.content.decode()

    # Single use: the same link again (another browser) is refused and signs nobody in.
    other = Client()
    again = other.post(f"/account/sign-in/{token}/")
    assert again.status_code == 410 and "expired or was already used" in again.content.decode()
    assert other.get("/account/")["Location"] == "/account/sign-in/"

    # Sign out ends it.
    browser.post("/account/sign-out/")
    assert browser.get("/account/").status_code == 302


def test_an_expired_link_is_refused(patron_order, settings):
    settings.PATRON_SIGN_IN_LINK_MINUTES = 30
    _ask(Client(), "ada@example.org")
    outbox.send_due()
    token = _link_from_mail()
    assert "30 minutes" in mail.outbox[0].body
    later = timezone.now() + timedelta(minutes=31)
    with pytest.raises(Exception, match="expired or was already used"):
        account.use_link(token, now=later)
    assert PatronSignIn.objects.get().used_at is None
    assert account.use_link(token, now=timezone.now() + timedelta(minutes=29)).email == "ada@example.org"


def test_a_link_expired_before_the_email_went_out_is_not_sent(patron_order):
    _ask(Client(), "ada@example.org")
    PatronSignIn.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    outbox.send_due()
    assert mail.outbox == []


def test_a_made_up_link_is_refused():
    response = Client().post("/account/sign-in/not-a-real-token/")
    assert response.status_code == 410


def test_caps_per_address_and_per_client(patron_order, settings):
    settings.PATRON_SIGN_INS_PER_ADDRESS_PER_HOUR = 2
    settings.PATRON_SIGN_INS_PER_CLIENT_PER_HOUR = 4
    client = Client()
    pages = [_ask(client, "ada@example.org") for _ in range(3)]
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert _page(pages[2]) == _page(pages[0])  # the capped request looks the same
    assert OutboxEmail.objects.filter(kind=OutboxEmail.PATRON_SIGN_IN).count() == 2
    _ask(client, "someone@example.org")
    refused = _ask(client, "another@example.org")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many sign-in requests" in refused.content.decode()
    assert PatronSignIn.objects.count() == 4  # the refused request wrote nothing
    assert _ask(client, "another@example.org", ip="198.51.100.9").status_code == 200


def test_a_bad_address_is_refused_writing_nothing():
    response = _ask(Client(), "not an address")
    assert response.status_code == 422
    assert not PatronSignIn.objects.exists() and not OutboxEmail.objects.exists()

