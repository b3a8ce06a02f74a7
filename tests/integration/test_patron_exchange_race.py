"""Patrons exchanging online race walk-up buyers for the last seat: gunicorn (4 workers) on
PostgreSQL. The patron's exchange page calls the box office's exchange, which takes the same
performance lock as a sale; exactly one racer gets the seat and every refused exchange leaves
the patron's ticket as it was."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import httpx
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer
from tests.support.staff import form_fields, together

pytestmark = pytest.mark.slow

MOVERS = 4


def _signed_in_patron(server: LiveServer, live_db: str, email: str) -> httpx.Client:
    """A browser session signed in by a sign-in link (its row written here, its secret
    derived with the server's key, as the email would carry it)."""
    from django.utils import timezone

    from wondertix.ops.models import OutboxEmail
    from wondertix.storefront.account import link_token, token_hash
    from wondertix.storefront.models import PatronSignIn

    now = timezone.now()
    mail = OutboxEmail.objects.using(live_db).create(kind=OutboxEmail.PATRON_SIGN_IN, recipient=email, status=OutboxEmail.SENT, next_attempt_at=now)
    salt = secrets.token_hex(16)
    token = link_token(salt, secret_key=server.env["SECRET_KEY"])
    PatronSignIn.objects.using(live_db).create(address_digest="x" * 64, salt=salt, token_hash=token_hash(token),
                                               expires_at=now + timedelta(minutes=30), email=mail)
    client = httpx.Client(base_url=server.url, timeout=30)
    page = client.get(f"/account/sign-in/{token}/")
    r = client.post(f"/account/sign-in/{token}/", data=form_fields(page.text))
    assert r.status_code == 302 and r.headers["location"] == "/account/", r.text[:300]
    return client


def test_patrons_exchanging_online_and_buyers_race_for_the_last_seat_and_exactly_one_gets_it(backoffice_server, make_show, live_db):
    from wondertix.catalog.models import Performance
    from wondertix.sales.models import Order, Ticket
    from wondertix.sales.refund_models import Exchange

    source = make_show(10, name="patron-xch")
    event_id = Performance.objects.using(live_db).get(pk=source.performance_id).event_id
    target = Performance.objects.using(live_db).create(event_id=event_id, starts_at=Performance.objects.using(live_db).get(pk=source.performance_id).starts_at + timedelta(days=1), capacity=3)
    r = httpx.post(backoffice_server.url + "/api/v1/orders", json=order_payload(target.pk, source.adult_id, 2, email="early@example.org"), timeout=30)
    assert r.status_code == 201, r.text

    confirms = []
    movers = []
    for i in range(MOVERS):
        email = f"patron{i}-{uuid.uuid4().hex[:6]}@example.org"
        r = httpx.post(backoffice_server.url + "/api/v1/orders", json=order_payload(source.performance_id, source.adult_id, 1, email=email), timeout=30)
        assert r.status_code == 201, r.text
        order = Order.objects.using(live_db).get(token=r.json()["token"])
        ticket = order.tickets.get()
        client = _signed_in_patron(backoffice_server, live_db, email)
        form = client.get(f"/account/orders/{order.pk}/exchange/")
        quote = client.post(f"/account/orders/{order.pk}/exchange/", data={**form_fields(form.text), "tickets": str(ticket.pk), "performance": str(target.pk)})
        assert quote.status_code == 200 and "Same price: nothing to pay" in quote.text, quote.text[:500]
        fields = form_fields(quote.text)
        confirms.append((client, f"/account/orders/{order.pk}/exchange/", fields))
        movers.append(ticket.pk)

    def exchange(call):  # noqa: ANN001, ANN202
        client, path, fields = call
        return client.post(path, data=fields)

    def buy(i: int) -> httpx.Response:
        return httpx.post(backoffice_server.url + "/api/v1/orders", json=order_payload(target.pk, source.adult_id, 1, email=f"walkup{i}@example.org"), timeout=30)

    answers = together([(lambda c=c: exchange(c)) for c in confirms] + [(lambda i=i: buy(i)) for i in range(MOVERS)])
    exchanged = [a for a in answers[:MOVERS] if a.status_code == 302]
    refused = [a for a in answers[:MOVERS] if a.status_code == 409]
    sold = [a for a in answers[MOVERS:] if a.status_code == 201]
    assert len(exchanged) + len(refused) == MOVERS, [a.status_code for a in answers[:MOVERS]]
    assert all("is sold out. Your tickets were not changed." in a.text for a in refused)
    assert len(exchanged) + len(sold) == 1, (len(exchanged), [a.status_code for a in answers[MOVERS:]])

    assert Ticket.objects.using(live_db).filter(performance_id=target.pk, status=Ticket.VALID).count() == 3
    assert Performance.objects.using(live_db).get(pk=target.pk).tickets_sold == 3
    assert Exchange.objects.using(live_db).filter(order__tickets__pk__in=movers).distinct().count() == len(exchanged)
    valid_movers = Ticket.objects.using(live_db).filter(pk__in=movers, status=Ticket.VALID).count()
    assert valid_movers == MOVERS - len(exchanged)  # a refused exchange changes nothing
    for client, _, _ in confirms:
        client.close()
