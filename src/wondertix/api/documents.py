"""The OpenAPI documents and their interactive docs: one for everyone, one for staff.

`/api/v1/openapi.json` and `/api/v1/docs` describe the public operations only: what the staff
API can do (refunds, door lists, reports) is nobody else's business. The full document —
public and staff operations — is at `/api/v1/staff/openapi.json` for a staff API token or a
signed-in staff member, and `/api/v1/staff/docs` shows it to signed-in staff.

The docs pages are django-ninja's Swagger UI served from the project's static files (no CDN):
the site's Content-Security-Policy allows scripts and styles from 'self' only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from ninja.openapi.docs import Swagger

if TYPE_CHECKING:
    from ninja import NinjaAPI

STAFF_DOCUMENT = "staff-openapi-json"
STAFF_DOCS = "staff-openapi-view"
_REF = "#/components/schemas/"


STAFF_NOTE = (
    "\n\n**Staff API** (`/api/v1/staff/…`): send `Authorization: Bearer <token>` with a token from "
    "`wondertix mint_staff_token`. This document is shown to staff only."
)


# What each error status means here (django-ninja writes the HTTP reason phrase).
ANSWERS = {
    400: "The body is not valid JSON or not a JSON object (`invalid_request`)",
    401: "No valid staff API token for this operation (`unauthorized`)",
    402: "The payment was refused (`payment_declined`, `invalid_card`, `card_required`)",
    404: "No such id, slug or token",
    409: "In conflict with the current state (e.g. `sold_out`, `hold_expired`)",
    422: "The input was refused: `invalid_request` (schema, with `errors`) or a business rule's code",
    429: "Too many requests from this client: wait `Retry-After` seconds",
    503: "Too busy or the database is unavailable: retry after `Retry-After` seconds (nothing was written)",
}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}


def full_document(api: NinjaAPI) -> dict[str, Any]:
    """Every operation, public and staff (what django-ninja generates), with what each error
    status means and the `Retry-After` header of the answers that ask for a retry."""
    doc = dict(api.get_openapi_schema())
    doc["info"] = {**doc["info"], "description": doc["info"]["description"] + STAFF_NOTE}
    for operations in doc["paths"].values():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if int(status) in ANSWERS:
                    answer["description"] = ANSWERS[int(status)]
                if int(status) in (429, 503):
                    answer["headers"] = {"Retry-After": RETRY_AFTER}
    return doc


def is_staff_operation(operation: dict[str, Any]) -> bool:
    # Staff operations are exactly those that need a staff token.
    return bool(operation.get("security"))


def public_document(full: dict[str, Any]) -> dict[str, Any]:
    """`full` without the staff operations and without what only they use."""
    doc = copy.deepcopy(full)
    doc["info"]["description"] = doc["info"]["description"].replace(STAFF_NOTE, "")
    paths: dict[str, Any] = {}
    for path, operations in doc["paths"].items():
        kept = {method: op for method, op in operations.items() if not is_staff_operation(op)}
        if kept:
            paths[path] = kept
    doc["paths"] = paths
    components = doc.get("components", {})
    components.pop("securitySchemes", None)
    schemas = components.get("schemas", {})
    used = _referenced(paths, schemas)
    components["schemas"] = {name: schema for name, schema in schemas.items() if name in used}
    return doc


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF):]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _referenced(paths: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(_refs(paths))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_refs(schemas.get(name, {})))
    return seen


def _is_staff(request: HttpRequest) -> bool:
    from wondertix.api.auth import StaffToken

    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    return StaffToken()(request) is not None


def public_openapi_json(request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
    return JsonResponse(public_document(full_document(api)))


def staff_openapi_json(request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
    if not _is_staff(request):
        return JsonResponse(
            {
                "code": "unauthorized",
                "message": "The staff API document is for staff: send a staff API token "
                "(Authorization: Bearer …) or sign in to the staff pages first.",
            },
            status=401,
        )
    response = JsonResponse(full_document(api))
    response["Cache-Control"] = "private, no-store"
    return response


class _Docs(Swagger):
    """django-ninja's Swagger UI pointed at one of our documents."""

    def __init__(self, document: str) -> None:
        super().__init__(settings={"validatorUrl": None})
        self.document = document

    def get_openapi_url(self, api: NinjaAPI, path_params: dict[str, Any]) -> str:
        return reverse(f"{api.urls_namespace}:{self.document}", kwargs=path_params)


def public_docs(request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
    return _Docs("openapi-json").render_page(request, api, **kwargs)


def staff_docs(request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
    user = getattr(request, "user", None)
    if user is None or not (user.is_authenticated and user.is_staff):
        return redirect_to_login(request.get_full_path())
    return _Docs(STAFF_DOCUMENT).render_page(request, api, **kwargs)
