"""Inputs that must never hurt: hostile values in every public form and every API operation.

Nothing here lists the forms or operations by hand. The public pages come from the URL
resolver (everything outside /staff/, /admin/ and /api/) and their forms from the HTML they
serve; the API operations come from the OpenAPI document, with bodies built from their
request schemas. A new page, form or operation is fuzzed the day it is added.

Per request the acceptance bound of the hardening issue is asserted: no 5xx, and no more
than 1 s of CPU (`time.process_time()` around the test client call; one `9e999997` in a money
field used to cost tens of seconds). The figures are printed at the end of the module.
"""

from __future__ import annotations

import functools
import json
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wondertix.api.api import api
from wondertix.boxoffice.roles import ADMIN
from wondertix.catalog.models import Season
from wondertix.ops import tokens
from wondertix.patrons.models import SubscriptionType
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CPU_LIMIT_S = 1.0  # the acceptance bound, per request
FIGURES: list[tuple[str, float]] = []

HOSTILE = [
    "9e999997", "9e999999", "1e400", "-1e-400", "NaN", "-NaN", "nan", "Infinity", "-Infinity", "inf", "²", "³²", "٣٤",
    "१२", "１２", "-1", "-0", "0", "00", "", " ", "+5", "1_000", "0x1F", "12.345", "$-5", "1,2,3", "$$1", ".", "1.",
    "9" * 25, "9" * 400, "9" * 5000, "x" * 20000, "\x00", "a\x00b", "\u202e", "🎭", "<script>alert(1)</script>",
    "' OR 1=1 --", "%s%n%x", "../../etc/passwd", '{"a": [1, {"b": null}]}', "[[[[[[]]]]]]", "2026-02-30", "0000-00-00",
    "9999-12-31", "true", "null",
]
FORM_VALUE = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats().map(repr),
    st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=3),  # one name sent several times
)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.sampled_from(HOSTILE),
    st.integers(min_value=-(2**80), max_value=2**80), st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
ANY_JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
RAW_BODIES = [
    b"", b"NaN", b"9e999999", b"{", b"[]", b"null", b'{"lines": NaN}', b'{"quantity": 9e999999}',
    b'{"lines": [{"quantity": 1' + b"0" * 5000 + b"}]}", b'{"donation_cents": -Infinity}', b"[" * 5000 + b"]" * 5000,
    b"\xff\xfe\x00", b'{"a": "\\ud800"}', json.dumps({"x" * 1000: ["y" * 1000] * 50}).encode(),
]
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def checked(label: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """One request: never a 5xx, never more than CPU_LIMIT_S of CPU."""
    start = time.process_time()
    response = call(*args, **kwargs)
    spent = time.process_time() - start
    FIGURES.append((label, spent))
    assert response.status_code < 500, (label, args[:1], response.content[:300])
    assert spent <= CPU_LIMIT_S, f"{label} {args[:1]} took {spent:.2f} s of CPU"
    return response


@pytest.fixture(scope="module", autouse=True)
def print_figures():
    yield
    if FIGURES:
        spent = sorted(s for _, s in FIGURES)
        worst = max(FIGURES, key=lambda item: item[1])
        print(f"\ninput fuzz: {len(FIGURES)} requests, CPU per request p50 {spent[len(spent) // 2] * 1000:.1f} ms, "
              f"p99 {spent[int(len(spent) * 0.99)] * 1000:.1f} ms, max {worst[1] * 1000:.1f} ms ({worst[0]})")
        totals: dict[str, list[float]] = {}
        for label, s in FIGURES:
            totals.setdefault(label, []).append(s)
        for label, values in sorted(totals.items(), key=lambda kv: -sum(kv[1]))[:8]:
            print(f"  {label}: {len(values)} requests, {sum(values):.2f} s CPU")


@pytest.fixture
def site(make_performance, settings):
    """One of everything a public page or operation can point at."""
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_only"  # noqa: S105 (unconfigured, the webhook answers 503 by design)
    perf = make_performance(capacity=5000, student_limit=1000)
    card = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2031, cvc="123")
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"), payment=card))
    season = Season.objects.create(name="Season", slug="season", starts_on=timezone.localdate(), ends_on=timezone.localdate() + timedelta(days=90))
    perf.event.season = season
    perf.event.save(update_fields=["season"])
    SubscriptionType.objects.create(season=season, name="Flex 4", price_cents=8000, tickets_included=4)
    admin = User.objects.create_user("fuzz-admin", is_staff=True)
    admin.groups.add(Group.objects.get(name=ADMIN))
    return {
        "perf": perf, "order": order, "token": tokens.mint(admin),
        "params": {"slug": perf.event.slug, "performance_id": perf.pk, "token": order.token, "code": order.tickets.first().code,
                   "order_id": order.pk, "report": "summary", "event_id": perf.event_id},
    }


# ------------------------------------------------------------------ public pages and their forms


@functools.cache
def public_routes() -> list[tuple[str, list[tuple[str, str]]]]:
    """(route with <…> placeholders, [(name, converter)]) of every page outside staff, admin and API."""
    found: list[tuple[str, list[tuple[str, str]]]] = []

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                found.append((route, re.findall(r"<(?:(\w+):)?(\w+)>", route)))

    walk(get_resolver().url_patterns, "")
    return [(r, params) for r, params in found if not r.startswith(("staff/", "admin/", "api/", "ops/"))]


def fill(route: str, values: dict[str, Any], hostile: dict[str, str] | None = None) -> str:
    def one(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        if hostile and name in hostile and converter not in ("int",):
            return quote(hostile[name], safe="")
        return str(values.get(name, "x"))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", one, route).lstrip("^").rstrip("$")


class Forms(HTMLParser):
    """The POST forms of a page: action and [name, value] pairs as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self.forms.append({"action": a.get("action", ""), "fields": {}})
        elif not self.forms or "name" not in a:
            if tag == "option" and self._select and self.forms:
                self.forms[-1]["fields"].setdefault(self._select, a.get("value", ""))
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a and a["name"] in self.forms[-1]["fields"]:
                return
            if kind not in ("submit", "button", "image"):
                self.forms[-1]["fields"][a["name"]] = a.get("value", "" if kind != "checkbox" else "on")
        elif tag == "textarea":
            self.forms[-1]["fields"][a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "form" and self.forms:
            self.forms[-1]["closed"] = True


def forms_of(html: str) -> list[dict[str, Any]]:
    parser = Forms()
    parser.feed(html)
    return parser.forms


def prime_cart(client: Client, perf: Any) -> None:
    """Tickets in the cart, so the cart and checkout pages show their forms."""
    checked("select tickets", client.post, f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "1", f"qty_{perf.pwyc.pk}": "1", f"amount_{perf.pwyc.pk}": "7"})


def test_every_public_page_is_found_and_has_its_forms(site):
    """The fuzzing below is only as good as what it finds: the storefront's forms are all there."""
    client = Client(raise_request_exception=False)
    prime_cart(client, site["perf"])
    actions = set()
    for route, _ in public_routes():
        page = checked("GET page", client.get, fill(route, site["params"]))
        if page.status_code == 200 and page.get("Content-Type", "").startswith("text/html"):
            actions |= {(form["action"] or fill(route, site["params"])) for form in forms_of(page.content.decode())}
    for needed in (f"/performances/{site['perf'].pk}/", "/checkout/", "/donate/", "/subscriptions/", "/cart/"):
        assert any(a.startswith(needed) for a in actions), (needed, actions)


@pytest.fixture
def public_forms(site) -> list[dict[str, Any]]:
    """Every POST form of every public page, found with tickets in the cart (as a patron sees them)."""
    client = Client(raise_request_exception=False)
    prime_cart(client, site["perf"])
    found = []
    for route, _ in public_routes():
        url = fill(route, site["params"])
        page = checked("GET page", client.get, url)
        if page.status_code == 200 and page.get("Content-Type", "").startswith("text/html"):
            for form in forms_of(page.content.decode()):
                found.append({**form, "action": form["action"] or url, "page": route, "needs_cart": route.startswith(("cart", "checkout"))})
    return found


@settings(FUZZ, max_examples=350)
@given(data=st.data())
def test_hostile_values_in_every_public_form_never_fail_or_freeze(site, public_forms, data):
    form = data.draw(st.sampled_from(public_forms), label="form")
    client = Client(raise_request_exception=False)
    if form["needs_cart"]:
        prime_cart(client, site["perf"])
    fields = dict(form["fields"])
    names = sorted(fields) + ["unexpected_field"]
    for name in data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True), label="fields"):
        fields[name] = data.draw(FORM_VALUE, label=name)
    checked(f"POST {form['page']}", client.post, form["action"], fields)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_hostile_path_segments_and_query_strings_on_public_pages_never_fail(site, data):
    client = Client(raise_request_exception=False)
    route, params = data.draw(st.sampled_from(public_routes()), label="page")
    value = data.draw(st.one_of(st.sampled_from(HOSTILE[:40]), st.text(min_size=1, max_size=40)), label="value")
    url = fill(route, site["params"], hostile={name: value for _, name in params})
    checked("GET hostile", client.get, url, {"q": value, "from": value, "to": value, "page": value, "hold": value})
    checked("POST hostile", client.post, url, {"q": value, "amount": value, "hold": value})


# ------------------------------------------------------------------ every API operation


@functools.cache
def openapi() -> dict:
    return api.get_openapi_schema()


def operations() -> list[tuple[str, str, dict]]:
    schema = openapi()
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = openapi()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(schema: dict, name: str, ids: dict[str, Any]) -> Any:
    """A plausible value for a schema (the fuzzer then spoils parts of it)."""
    schema = resolve(schema)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(s).get("type") != "null"]
            return example(options[0], name, ids) if options else None
    kind = schema.get("type")
    if kind == "object":
        return {prop: example(sub, prop, ids) for prop, sub in schema.get("properties", {}).items() if prop != "hold_token"}
    if kind == "array":
        return [example(schema.get("items", {}), name, ids)]
    if kind == "integer":
        return ids.get(name, ids.get("performance_id") if name.endswith("_id") or name.endswith("_ids") else 1)
    if kind == "boolean":
        return False
    if kind == "string":
        return {"email": "ada@example.org", "number": "4242424242424242", "code": ids["code"], "method": "cash"}.get(name, "Ada")
    return None


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in leaves(v, path + (k,))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in leaves(v, path + (i,))]
    return [path]


def spoil(body: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


@settings(FUZZ, max_examples=600)
@given(data=st.data())
def test_hostile_requests_to_every_api_operation_never_fail_or_freeze(site, data):
    method, path, op = data.draw(st.sampled_from(operations()), label="operation")
    ids = {**site["params"], "price_type_id": site["perf"].adult.pk, "unit_price_cents": 2500}
    headers: dict[str, str] = {}
    if op.get("security") and data.draw(st.integers(0, 4), label="token") > 0:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {site['token']}"
    query: dict[str, Any] = {}
    url = path
    for param in op.get("parameters", []):
        name = param["name"]
        real = ids.get(name, "x")
        hostile = data.draw(st.one_of(st.just(real), st.sampled_from(HOSTILE), st.text(max_size=30),
                                      st.integers(min_value=-(2**80), max_value=2**80)), label=name)
        if param["in"] == "path":
            segment = quote(str(hostile), safe="") or "x"
            url = url.replace("{" + name + "}", segment)
        elif param["in"] == "query":
            query[name] = hostile
        elif param["in"] == "header":
            headers["HTTP_" + name.upper().replace("-", "_")] = str(hostile)[:200]
    client = Client(raise_request_exception=False)
    if method in ("GET", "DELETE"):
        response = checked(f"{method} {path}", getattr(client, method.lower()), url, query, **headers)
    else:
        content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        body = example(content.get("schema", {}), "", ids)
        kind = data.draw(st.sampled_from(["spoil", "spoil", "spoil", "json", "raw"]), label="body kind")
        if kind == "raw":
            raw = data.draw(st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=80)), label="raw body")
        else:
            if kind == "json":
                body = data.draw(ANY_JSON, label="body")
            else:
                for where in data.draw(st.lists(st.sampled_from(leaves(body)), min_size=1, max_size=3), label="spoiled"):
                    try:
                        body = spoil(body, where, data.draw(st.one_of(SCALAR, ANY_JSON), label=str(where)))
                    except (KeyError, IndexError, TypeError):
                        pass  # an earlier spoil replaced a parent of this leaf
            raw = json.dumps(body).encode()
        response = checked(f"{method} {path}", client.generic, method, url + ("?" + "&".join(f"{k}={quote(str(v))}" for k, v in query.items()) if query else ""),
                           raw, content_type="application/json", **headers)
    if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
        error = response.json()
        assert isinstance(error.get("message", error.get("detail")), str | list), error
