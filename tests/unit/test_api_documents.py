"""The published API documents: one name per schema, public operations documented with the
public models, and the staff API described to staff only."""

from __future__ import annotations

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
