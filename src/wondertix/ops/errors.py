"""Error pages: a friendly page with the request id, never a stack trace, when DEBUG is off."""

from __future__ import annotations

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


def server_error(request: HttpRequest) -> HttpResponse:
    rid = current_request_id() or getattr(request, "request_id", "")
    if _wants_json(request):
        return JsonResponse(
            {"code": "server_error", "message": "Something went wrong on our side.", "request_id": rid},
            status=500,
        )
    # No context processors here: the failure may be in one of them.
    body = loader.render_to_string("errors/500.html", {"request_id": rid})
    return HttpResponse(body, status=500)
