"""Acceptance 1: who may open what. Every URL under /staff/ and /api/v1/staff/ is found by
walking the URL resolver, so a page added later is covered (or fails here until its allowed
roles are declared in src/wtx/authz_rules.py, which stg's security gate reads too), then
requested as anonymous, a patron, an usher, box office and admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from tests.support.seating import chart_document

from wondertix.api.api import api
from wondertix.catalog import chartfile
from wondertix.catalog.models import Season, SeasonPrice
from wondertix.ops import tokens
from wondertix.payments.models import TerminalPayment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.models import DiscountCode, Hold
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold, sell
from wtx.authz_rules import (
    ADMIN,
    ANON,
    BOX,
    EVERYONE,
    PATRON,
    PUBLIC_STAFF_PAGES,
    USHER,
    allowed_api_roles,
    allowed_page_roles,
    fill_route,
)

pytestmark = pytest.mark.django_db


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def staff_pages() -> list[tuple[str, URLPattern]]:
    return [(route, p) for route, p in _walk(get_resolver().url_patterns) if route.startswith("staff/")]


@pytest.fixture
def world(make_performance):
    """One of everything a staff URL can point at, and a user per role."""
    perf = make_performance(capacity=20)
    order = sell(
        [LineRequest(perf.pk, perf.adult.pk, 2)],
        CheckoutDetails(buyer=Buyer(first_name="Pat", last_name="Ron", email="pat@example.org"),
                        payment=PaymentDetails(card_number="4242424242424242", exp_month=1, exp_year=2031, cvc="1")),
    )
    season = Season.objects.create(name="Season", slug="season", starts_on=timezone.localdate(), ends_on=timezone.localdate() + timedelta(days=90))
    season_price = SeasonPrice.objects.create(season=season, name="Adult", price_cents=2000)
    code = DiscountCode.objects.create(code="FRIENDS", kind="percent", value=10)
    users = {}
    for role in (USHER, BOX, ADMIN):
        users[role] = User.objects.create_user(f"{role}-user", is_staff=True)
        users[role].groups.add(Group.objects.get(name=role))
    users[PATRON] = User.objects.create_user("patron-user")
    hold = create_hold([LineRequest(perf.pk, perf.adult.pk, 1)], actor=users[ADMIN], reason="house", staff=True)
    ids = {
        "performance_id": perf.pk, "event_id": perf.event_id, "price_type_id": perf.adult.pk, "order_id": order.pk,
        "season_id": season.pk, "price_id": season_price.pk, "discount_id": code.pk, "hold_id": hold.pk,
        "patron_id": order.patron_id, "contact_id": order.patron_id, "pk": order.pk,
        "ticket_id": order.tickets.first().pk,
        # A seating chart: its editor, save, duplicate and import pages answer for a real one.
        "chart_id": chartfile.save(chartfile.validate(chart_document())).pk,
        # A reader payment already canceled: its pages answer without calling a card service.
        "payment_id": TerminalPayment.objects.create(order=order, reader_id="tmr_x", amount_cents=100, status=TerminalPayment.CANCELED).pk,
    }
    return {"ids": ids, "users": users, "order": order}


def _client(world, who: str) -> Client:
    client = Client()
    if who != ANON:
        client.force_login(world["users"][who])
    return client


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/staff/login/")


def _request(client: Client, url: str):
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url, {})
    return response


def test_every_staff_page_admits_exactly_its_roles(world):
    pages = [(route, p) for route, p in staff_pages() if route not in PUBLIC_STAFF_PAGES]
    assert len(pages) >= 40  # the box office's own pages, plus whatever the back office adds
    clients = {who: _client(world, who) for who in EVERYONE}
    checked = 0
    for route, pattern in pages:
        allowed = allowed_page_roles(route, pattern.name)
        url = fill_route(route, world["ids"])
        for who in EVERYONE:
            response = _request(clients[who], url)
            where = f"{who} → {url} answered {response.status_code}"
            if who in allowed:
                assert response.status_code not in (401, 403), where
                assert not _is_login_redirect(response), where
                assert response.status_code < 500, where
                if route.startswith(("staff/door", "staff/pos", "staff/audit", "staff/events", "staff/seasons")) or route == "staff/":
                    assert response.status_code in (200, 302), where
            elif who == ANON:
                assert _is_login_redirect(response), where
            else:
                assert response.status_code == 403, where
            checked += 1
    assert checked == len(pages) * len(EVERYONE)


def test_every_staff_form_carries_a_csrf_token_and_posts_without_one_are_refused(world):
    admin = world["users"][ADMIN]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin)
    for route, _ in staff_pages():
        url = fill_route(route, world["ids"])
        response = strict.post(url, {"active": "1", "code": "X", "reason": "r"})
        assert response.status_code == 403, f"POST {url} without a CSRF token answered {response.status_code}"
        page = strict.get(url)
        if page.status_code == 200 and page.get("Content-Type", "").startswith("text/html"):
            html = page.content.decode()
            for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S | re.I):
                assert "csrfmiddlewaretoken" in form, f"a POST form on {url} has no CSRF token"
    # The login form too: no token, no login attempt.
    anon = Client(enforce_csrf_checks=True)
    assert anon.post("/staff/login/", {"username": "admin-user", "password": "x-long-passphrase-1"}).status_code == 403


def _api_operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    ops = []
    for path, methods in schema["paths"].items():
        if path.startswith("/api/v1/staff"):
            for method in methods:
                ops.append((path, method.upper()))
    return ops


def test_every_staff_api_route_is_in_the_openapi_schema():
    documented = {path for path, _ in _api_operations()}
    routed = set()
    for route, _ in _walk(get_resolver().url_patterns):
        # The staff document and its docs page describe the API; they are not operations.
        if route.startswith("api/v1/staff") and route not in ("api/v1/staff/openapi.json", "api/v1/staff/docs"):
            routed.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))
    assert routed and routed <= documented


def test_every_staff_api_endpoint_admits_exactly_its_roles(world):
    operations = _api_operations()
    assert len(operations) >= 4
    users = world["users"]
    headers = {who: {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(users[who])}"} for who in (PATRON, USHER, BOX, ADMIN)}
    headers[ANON] = {}
    client = Client()
    for path, method in operations:
        allowed = allowed_api_roles(path)
        url = re.sub(r"\{(\w+)\}", lambda m: str(world["ids"].get(m.group(1), 999999)), path)
        for who in EVERYONE:
            if method == "GET":
                response = client.get(url, **headers[who])
            else:
                response = client.generic(method, url, "{}", content_type="application/json", **headers[who])
            where = f"{who} {method} {url} answered {response.status_code}"
            if who in allowed:
                assert response.status_code not in (401, 403), where
                assert response.status_code < 500, where
            else:
                assert response.status_code in (401, 403), where
    # A forged or foreign token is refused too.
    assert client.get("/api/v1/staff/whoami", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401


def test_door_api_works_for_an_usher_token(world):
    perf_id = world["ids"]["performance_id"]
    header = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(world['users'][USHER])}"}
    response = Client().get(f"/api/v1/staff/door/{perf_id}", **header)
    assert response.status_code == 200
    body = response.json()
    assert body["sold"] == 2 and body["parties"][0]["counts"] == ["2 x Adult"]
    assert Hold.objects.filter(created_by__isnull=False).count() == 1
