"""The published API documents: one name per schema, public operations documented with the
public models, and the staff API described to staff only."""

from __future__ import annotations

import io
import json
import re
import typing
from collections import defaultdict
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pydantic import BaseModel

from wondertix.api.api import api as ninja_api
from wondertix.ops import tokens

REF = "#/components/schemas/"


def _models(annotation: object, seen: set[type]) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation, seen)
    for arg in typing.get_args(annotation):
        yield from _models(arg, seen)


def _operations() -> Iterator[tuple[str, str, typing.Any]]:
    for bound in ninja_api._get_bound_routers():
        for path, view in bound.path_operations.items():
            for op in view.operations:
                if not op.include_in_schema:
                    continue
                full = "/api/v1/" + "/".join(p.strip("/") for p in (bound.prefix, path) if p.strip("/"))
                for method in op.methods:
                    yield method.lower(), full, op


def _operation_models(op: typing.Any) -> dict[int, type[BaseModel]]:
    """Status → the model django-ninja documents for that answer (None for an empty body)."""
    out = {}
    for status, wrapper in (op.response_models or {}).items():
        if isinstance(wrapper, type) and issubclass(wrapper, BaseModel):
            out[status] = wrapper.model_fields["response"].annotation
    return out


def test_no_two_schema_classes_share_a_name():
    by_name: dict[str, set[type]] = defaultdict(set)
    seen: set[type] = set()
    for _, _, op in _operations():
        roots = list(_operation_models(op).values()) + list(op.models)
        for root in roots:
            for model in _models(root, seen):
                if model.__module__.startswith("wondertix."):
                    by_name[model.__name__].add(model)
    assert by_name, "no schema found"
    shared = {name: sorted(f"{c.__module__}.{c.__qualname__}" for c in classes) for name, classes in by_name.items() if len(classes) > 1}
    assert shared == {}, f"one OpenAPI component name for several schemas: {shared}"


def _component_for(doc: dict, schema: dict) -> str | None:
    ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
    return ref[len(REF):] if ref else None


def test_public_operations_are_documented_with_the_public_models(clerk):
    # The staff document has public and staff operations together: where a name clash shows.
    doc = Client().get("/api/v1/staff/openapi.json", HTTP_AUTHORIZATION=f"Bearer {tokens.mint(clerk)}").json()
    checked = 0
    for method, path, op in _operations():
        if path.startswith("/api/v1/staff/"):
            continue
        for status, model in _operation_models(op).items():
            inner = typing.get_args(model)[0] if typing.get_origin(model) is list else model
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                continue
            content = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
            name = _component_for(doc, content)
            assert name == inner.__name__, (method, path, status, name)
            documented = set(doc["components"]["schemas"][name]["properties"])
            assert documented == set(inner.model_json_schema(by_alias=True)["properties"]), (method, path, status, name)
            checked += 1
    assert checked >= 15
    order = doc["components"]["schemas"][_component_for(doc, doc["paths"]["/api/v1/orders/{token}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"])]
    assert {"token", "url", "tickets"} <= set(order["properties"])


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_public_document_shows_anonymous_callers_only_the_public_operations(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["paths"], "no operation documented"
    assert not [p for p in doc["paths"] if p.startswith("/api/v1/staff")]
    assert not [op for ops in doc["paths"].values() for op in ops.values() if op.get("security") or "staff" in op.get("tags", [])]
    assert "securitySchemes" not in doc["components"]
    assert not [name for name in doc["components"]["schemas"] if name.startswith(("Staff", "Refund", "Exchange", "Door", "CheckIn", "Summary", "Table"))]
    assert "staff" not in doc["info"]["description"].lower()
    # Every reference resolves within the document.
    for ref in _refs(doc):
        assert ref.startswith(REF) and ref[len(REF):] in doc["components"]["schemas"], ref


def test_staff_document_is_refused_to_anonymous_callers_and_patrons(db):
    anonymous = Client().get("/api/v1/staff/openapi.json")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    assert "staff" in anonymous.json()["message"]
    patron = User.objects.create_user("patron", password="x" * 12)
    assert Client().get("/api/v1/staff/openapi.json", HTTP_AUTHORIZATION=f"Bearer {tokens.mint(patron)}").status_code == 401
    assert Client().get("/api/v1/staff/openapi.json", HTTP_AUTHORIZATION="Bearer forged").status_code == 401
    signed_in = Client()
    signed_in.force_login(patron)
    assert signed_in.get("/api/v1/staff/openapi.json").status_code == 401


@pytest.mark.parametrize("how", ["token", "session"])
def test_staff_see_the_staff_operations(clerk, how):
    client = Client()
    headers = {}
    if how == "token":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {tokens.mint(clerk)}"
    else:
        client.force_login(clerk)
    response = client.get("/api/v1/staff/openapi.json", **headers)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    paths = response.json()["paths"]
    assert {"/api/v1/staff/sales/orders/{order_id}", "/api/v1/staff/checkin", "/api/v1/staff/reports/summary"} <= set(paths)
    assert "/api/v1/orders" in paths  # and the public operations too
    assert response.json()["components"]["securitySchemes"]["StaffToken"]["scheme"] == "bearer"


def test_staff_docs_page_is_for_signed_in_staff(clerk, staff):
    anonymous = Client().get("/api/v1/staff/docs")
    assert anonymous.status_code == 302 and "/staff/login/" in anonymous["Location"]
    page = staff.get("/api/v1/staff/docs")
    assert page.status_code == 200
    assert "/api/v1/staff/openapi.json" in page.content.decode()
    public = Client().get("/api/v1/docs").content.decode()
    assert "/api/v1/openapi.json" in public and "/api/v1/staff/openapi.json" not in public


# ----------------------------------------------------------------------------- every answer documented


def _staff_document(clerk) -> dict:
    return Client().get("/api/v1/staff/openapi.json", HTTP_AUTHORIZATION=f"Bearer {tokens.mint(clerk)}").json()


def _url(template: str, value: str) -> str:
    return re.sub(r"\{\w+\}", value, template)


def test_every_operation_documents_its_refusals(clerk, api_answers_match_the_published_document):
    """Drive every operation into the answers any client can provoke — no token, a body that is
    not JSON, an id beyond the database's range — and require each to be documented (the
    autouse checker compares every answer with the document) and none to be a 5xx."""
    from django.contrib.auth.models import Group

    doc = _staff_document(clerk)
    # Also an admin here, so admin-only operations (seating charts) get as far as their body.
    clerk.groups.add(Group.objects.get(name="admin"))
    token = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}
    client = Client(raise_request_exception=False)
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for template, operations in doc["paths"].items():
        for method, op in operations.items():
            staff = bool(op.get("security"))
            answers = []
            if staff:
                answers.append(client.generic(method.upper(), _url(template, "1"), "{}", content_type="application/json"))
            if "requestBody" in op:
                answers.append(client.generic(method.upper(), _url(template, "1"), "{not json", content_type="application/json", **token))
            if "{" in template:
                answers.append(client.generic(method.upper(), _url(template, str(2**70)), "{}", content_type="application/json", **token))
            for response in answers:
                assert response.status_code < 500, (method, template, response.status_code, response.content[:300])
                seen[(method, template)].add(response.status_code)
            documented = {int(s) for s in op["responses"]}
            assert 503 in documented, (method, template)
            if staff:
                assert 401 in documented and 401 in seen[(method, template)], (method, template)
            if "requestBody" in op:
                assert 400 in documented and 400 in seen[(method, template)], (method, template)
    assert api_answers_match_the_published_document.checked >= 25
    assert not api_answers_match_the_published_document.problems


def test_rate_limited_operations_document_429_with_retry_after(clerk):
    doc = _staff_document(clerk)
    for method, path in (("post", "/api/v1/holds"), ("post", "/api/v1/orders")):
        answer = doc["paths"][path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"] and answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


@pytest.mark.parametrize("query", ["date_to=0", "date_from=0", "date_to=1700000000", "date_from=10000-01-01", "date_to=0001-01-01", "date_to=tomorrow"])
def test_report_filters_refuse_dates_nobody_meant(clerk, query):
    token = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}
    for path in ("/api/v1/staff/reports/summary", "/api/v1/staff/reports/sales-by-event"):
        response = Client().get(f"{path}?{query}", **token)
        assert response.status_code == 422, (path, query, response.content)
        body = response.json()
        assert body["code"] == "invalid_request"
        field = query.split("=")[0]
        # the field is named, and the message says what a report date looks like or may be
        assert body["message"].startswith(f"The request is not valid: {field} "), body["message"]
        assert "YYYY-MM-DD" in body["message"] or "Report dates run from 2000-01-01 to 2999-12-31" in body["message"], body["message"]


def test_report_filters_take_calendar_dates(clerk):
    token = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(clerk)}"}
    response = Client().get("/api/v1/staff/reports/summary?date_from=2026-11-01&date_to=2026-11-30", **token)
    assert response.status_code == 200
    assert (response.json()["date_from"], response.json()["date_to"]) == ("2026-11-01", "2026-11-30")
    # Leave a filter out for no limit; an empty one is refused like any other non-date.
    assert Client().get("/api/v1/staff/reports/summary?date_to=", **token).status_code == 422


# ----------------------------------------------------------------------------- examples


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_request_examples_work_against_the_demo_data():
    """What a reader of /api/v1/docs tries first must work on `make run`'s demo data."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    doc = Client().get("/api/v1/openapi.json").json()
    sent = 0
    for template, operations in doc["paths"].items():
        for method, op in operations.items():
            schema = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if not schema:
                continue
            component = doc["components"]["schemas"][schema["$ref"][len(REF):]]
            examples = component.get("examples", [])
            assert examples, f"{method.upper()} {template} has no example"
            for example in examples:
                response = Client().generic(method.upper(), template, json.dumps(example), content_type="application/json")
                assert response.status_code in (200, 201), (template, example, response.content)
                sent += 1
    assert sent >= 2
