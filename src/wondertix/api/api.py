"""The REST API v1 (django-ninja). OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs.

Every error is JSON: a stable `code` for programs and a `message` for people. Whatever a
client sends — malformed JSON, wrong types, unknown ids, an unsupported method — it gets a
4xx with such a body, never a 500 or an HTML page.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from wondertix.api import documents
from wondertix.ops import errors
from wondertix.ops.requestid import current_request_id
from wondertix.sales.errors import SaleError

log = logging.getLogger(__name__)


class NotAnObject(ValueError):
    """The body parsed as JSON but is not an object (a list, a string, a number)."""


class JsonObjectParser(Parser):
    """Request bodies are JSON objects; anything else is refused before validation."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise NotAnObject("The request body must be a JSON object.")
        return data


_DOCUMENT_URLS = ("openapi-json", "openapi-view")


class WonderTixAPI(NinjaAPI):
    def _get_urls(self) -> list[URLResolver | URLPattern]:
        # Our documents replace django-ninja's: the public one leaves the staff API out.
        ours: list[URLResolver | URLPattern] = [
            path("openapi.json", functools.partial(documents.public_openapi_json, api=self), name="openapi-json"),
            path("docs", functools.partial(documents.public_docs, api=self), name="openapi-view"),
            path("staff/openapi.json", functools.partial(documents.staff_openapi_json, api=self), name=documents.STAFF_DOCUMENT),
            path("staff/docs", functools.partial(documents.staff_docs, api=self), name=documents.STAFF_DOCS),
        ]
        urls = ours + [p for p in super()._get_urls() if getattr(p, "name", None) not in _DOCUMENT_URLS]
        for pattern in urls:
            if isinstance(pattern, URLPattern):
                pattern.callback = _json_not_allowed(pattern.callback)
        return urls


def _json_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """django-ninja answers an unsupported method with a plain-text 405; make it our JSON error."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            body = {
                "code": "method_not_allowed",
                "message": f"{request.method} is not supported here; use {allowed}.",
            }
            json_response = JsonResponse(body, status=405)
            json_response["Allow"] = allowed
            return json_response
        return response

    return wrapper


api = WonderTixAPI(
    title="WonderTix API",
    version="1.0.0",
    description=(
        "Public ticketing API: events, availability, holds and orders.\n\n"
        "**Errors** are JSON: a stable `code` for programs and a human `message` for people, "
        "plus `field` when one input is at fault. Schema errors have code `invalid_request` "
        "(422, with the pydantic `errors` list); a body that is not a JSON object is "
        "`invalid_request` with status 400.\n\n"
        "**Idempotency**: send an `Idempotency-Key` header with `POST /orders`; a retry with "
        "the same key returns the first order and never sells twice. See docs/api.md."
    ),
    urls_namespace="api-v1",
    parser=JsonObjectParser(),
)


@api.exception_handler(SaleError)
def sale_error(request: HttpRequest, exc: SaleError) -> HttpResponse:
    response = api.create_response(request, exc.as_dict(), status=exc.status)
    if "retry_after" in exc.details:
        response["Retry-After"] = str(exc.details["retry_after"])
    return response


# Plainer words than pydantic's for the mistakes people make most.
_PLAIN = {
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "missing": "is required",
    "string_pattern_mismatch": "contains characters that are not allowed",
    "extra_forbidden": "is not a known field",
}


def _describe(error: dict) -> str:
    loc = [str(p) for p in error.get("loc", []) if p not in ("body", "payload", "query", "header", "path")]
    where = ".".join(loc) or "request"
    if error.get("type") == "value_error":  # our own validators already speak plainly
        return f"{where} {str(error.get('msg', '')).removeprefix('Value error, ')}"
    return f"{where} {_PLAIN.get(error.get('type', ''), '') or error.get('msg', 'is not valid').lower()}"


def _public_error(error: dict) -> dict:
    # Never echo what was sent (it may be a card number) and keep the body JSON-serializable.
    return {"loc": list(error.get("loc", [])), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    messages = [_describe(e) for e in exc.errors]
    return api.create_response(
        request,
        {
            "code": "invalid_request",
            "message": "The request is not valid: " + "; ".join(messages),
            "errors": [_public_error(e) for e in exc.errors],
        },
        status=422,
    )


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"code": "unauthorized", "message": "A valid staff API token is required."}, status=401
    )


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"code": "not_found", "message": "Not found."}, status=404)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        cause = exc.__cause__
        if isinstance(cause, NotAnObject):
            message = str(cause)
        elif isinstance(cause, json.JSONDecodeError):
            message = f"The request body is not valid JSON ({cause.msg} at line {cause.lineno} column {cause.colno})."
        else:
            message = "The request body is not valid JSON."
        return api.create_response(request, {"code": "invalid_request", "message": message}, status=400)
    return api.create_response(request, {"code": "error", "message": str(exc)}, status=exc.status_code)


@api.exception_handler(Exception)
def unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The same JSON 500 in every environment (django-ninja would send a traceback in DEBUG).
    if errors.is_database_unavailable(exc):  # 503 + Retry-After, as the documented answers say
        log.warning("database unreachable", extra={"path": request.path, "error": type(exc).__name__})
        return errors.database_unavailable(request, current_request_id() or "")
    log.exception("unhandled API error", extra={"path": request.path})
    return api.create_response(
        request,
        {"code": "server_error", "message": "Something went wrong on our side.", "request_id": current_request_id() or ""},
        status=500,
    )


def _register() -> None:
    from wondertix.api import public, seating
    from wondertix.boxoffice import api as staff_api
    from wondertix.reports import api as reports_api
    from wondertix.sales import staff_api as sales_staff_api

    api.add_router("/", public.router)
    api.add_router("/", seating.public)
    api.add_router("/staff/seating/", seating.staff)
    api.add_router("/staff/", staff_api.router)
    api.add_router("/staff/reports/", reports_api.router)
    api.add_router("/staff/sales/", sales_staff_api.router)
    # Keep last: it answers every path no router above has.
    api.add_router("/", _fallback)


_fallback = Router()


@_fallback.api_operation(["GET", "POST", "PUT", "PATCH", "DELETE"], "/{path:rest}", include_in_schema=False)
def no_such_endpoint(request: HttpRequest, rest: str) -> HttpResponse:
    # JSON in every environment (Django's DEBUG 404 page is HTML).
    return api.create_response(
        request, {"code": "not_found", "message": f"There is no API endpoint /api/v1/{rest}; see /api/v1/docs."}, status=404
    )


_register()
