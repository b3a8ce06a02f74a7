"""Error pages: a friendly page with the request id, never a stack trace, when DEBUG is off."""

from __future__ import annotations

import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from wondertix.ops.requestid import current_request_id


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    body = loader.render_to_string("errors/404.html", {"request_id": current_request_id()}, request)
    return HttpResponse(body, status=404)


# A request that failed because the database could not be reached (stopped, failing over, a
# connection dropped) is answered "try again shortly", never "something broke": the load
# balancer takes a server whose database is gone out of traffic within a few checks, and in
# those seconds the patron gets a page that retries by itself (and API clients Retry-After,
# the front door's own figure: settings.RETRY_AFTER_SECONDS).


def is_database_unavailable(exc: BaseException | None) -> bool:
    """The failure (or what it was raised from) is the database not answering."""
    for _ in range(10):  # the failure, and what it was raised from (bounded)
        if exc is None:
            return False
        if isinstance(exc, OperationalError | InterfaceError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def database_unavailable(request: HttpRequest, rid: str) -> HttpResponse:
    retry = settings.RETRY_AFTER_SECONDS
    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            {"code": "temporarily_unavailable", "message": f"The ticket records could not be reached just now. Please try again in {retry} seconds.",
             "details": {"retry_after": retry}, "request_id": rid},
            status=503,
        )
    else:
        body = loader.render_to_string("errors/503.html", {"request_id": rid, "retry_after": retry})
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(retry)
    # Tells the ride-through middleware (ops.ridethrough) this answer may be worth a retry.
    response.wondertix_database_unavailable = True  # type: ignore[attr-defined]
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    rid = current_request_id() or getattr(request, "request_id", "") or ""
    if is_database_unavailable(sys.exc_info()[1]):  # handler500 runs inside Django's `except`
        return database_unavailable(request, rid)
    if _wants_json(request):
        return JsonResponse(
            {"code": "server_error", "message": "Something went wrong on our side.", "request_id": rid},
            status=500,
        )
    # No context processors here: the failure may be in one of them.
    body = loader.render_to_string("errors/500.html", {"request_id": rid})
    return HttpResponse(body, status=500)
