"""Request ids, source-network rules and request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from wondertix.ops import metrics, requestid
from wondertix.ops.netaddr import address_in, client_address, parse_networks

log = logging.getLogger("wondertix.request")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid, token = requestid.begin(request.headers.get("X-Request-Id"))
        request.request_id = rid  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            requestid.end(token)
        response["X-Request-Id"] = rid
        return response


class SourceNetworkMiddleware:
    """Refuses clients outside ALLOWED_SOURCE_NETWORKS (HAProxy enforces it first)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.allowed = parse_networks(settings.ALLOWED_SOURCE_NETWORKS)
        self.trusted = parse_networks(settings.TRUSTED_PROXY_NETWORKS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client = client_address(
            request.META.get("REMOTE_ADDR", ""),
            request.META.get("HTTP_X_FORWARDED_FOR"),
            self.trusted,
        )
        request.client_ip = client  # type: ignore[attr-defined]
        if self.allowed and not address_in(client, self.allowed):
            # Health checks come from the proxy itself; they stay reachable.
            if request.path not in ("/healthz", "/readyz"):
                log.warning("refused source address", extra={"client": client})
                return JsonResponse(
                    {"code": "forbidden_source", "message": "Access from your network is not allowed."},
                    status=403,
                )
        return self.get_response(request)


def client_of(request: HttpRequest) -> str:
    """The real client address of a request: per-client hold caps, and django-axes'
    AXES_CLIENT_IP_CALLABLE.

    Behind HAProxy, REMOTE_ADDR is always the proxy: keyed on it, five wrong passwords from
    anyone would lock a username for every client. SourceNetworkMiddleware has already worked
    out the client from the proxy's X-Forwarded-For (trusted only from TRUSTED_PROXY_NETWORKS).
    """
    client = getattr(request, "client_ip", None)
    if client is None:
        client = client_address(
            request.META.get("REMOTE_ADDR", ""),
            request.META.get("HTTP_X_FORWARDED_FOR"),
            parse_networks(settings.TRUSTED_PROXY_NETWORKS),
        )
    return str(client)


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if settings.METRICS_ENABLED:
            match = getattr(request, "resolver_match", None)
            route = match.route if match is not None else "unmatched"
            metrics.observe_request(
                request.method or "GET", route, response.status_code, time.perf_counter() - started
            )
        return response

