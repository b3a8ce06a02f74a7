"""The REST API v1 (django-ninja). OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from wondertix.sales.errors import SaleError

api = NinjaAPI(
    title="WonderTix API",
    version="1.0.0",
    description=(
        "Public ticketing API (events, availability, holds, orders) and the token-authenticated "
        "staff API. Errors are JSON: a stable `code` and a human `message`."
    ),
    urls_namespace="api-v1",
)


@api.exception_handler(SaleError)
def sale_error(request: HttpRequest, exc: SaleError) -> HttpResponse:
    return api.create_response(request, exc.as_dict(), status=exc.status)


def _describe(error: dict) -> str:
    loc = [str(p) for p in error.get("loc", []) if p not in ("body", "payload", "query", "header")]
    where = ".".join(loc) or "request"
    return f"{where}: {error.get('msg', 'invalid value')}"


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    messages = [_describe(e) for e in exc.errors]
    return api.create_response(
        request,
        {"code": "invalid_request", "message": "The request is not valid: " + "; ".join(messages), "errors": exc.errors},
        status=422,
    )


@api.exception_handler(AuthenticationError)
def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"code": "unauthorized", "message": "A valid staff API token is required."}, status=401
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"code": "error", "message": str(exc)}, status=exc.status_code)


def _register() -> None:
    from wondertix.api import public
    from wondertix.boxoffice import api as staff_api
    from wondertix.reports import api as reports_api
    from wondertix.sales import staff_api as sales_staff_api

    api.add_router("/", public.router)
    api.add_router("/staff/", staff_api.router)
    api.add_router("/staff/reports/", reports_api.router)
    api.add_router("/staff/sales/", sales_staff_api.router)


_register()
