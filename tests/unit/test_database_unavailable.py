"""When the database cannot be reached (stopped, failing over, a dropped connection) a patron
gets "one moment, retrying by itself" with Retry-After — never the "something broke" 500 page.
HAProxy takes such a server out of traffic after a few readiness checks; this covers the
seconds before that, and a database blip shorter than them."""

from __future__ import annotations

import contextlib

import pytest
from django.db import OperationalError, connection
from django.test import Client

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def database_gone():
    def refuse(execute, sql, params, many, context):  # noqa: ANN001
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(refuse):
        yield


def test_a_page_asks_the_patron_to_wait_and_retries_by_itself(make_performance, settings):
    settings.RETRY_AFTER_SECONDS = 5
    make_performance()
    client = Client(raise_request_exception=False)
    with database_gone():
        response = client.get("/", headers={"X-Request-Id": "req-dbgone12345"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.content.decode()
    assert '<meta http-equiv="refresh" content="5">' in body
    assert "tries again by itself in 5 seconds" in body and "req-dbgone12345" in body
    assert "Something went wrong" not in body and "Traceback" not in body


def test_an_api_client_is_told_when_to_retry(make_performance, settings):
    settings.RETRY_AFTER_SECONDS = 5
    perf = make_performance()
    client = Client(raise_request_exception=False)
    with database_gone():
        response = client.get(f"/api/v1/performances/{perf.pk}")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "temporarily_unavailable"
    assert response.json()["details"] == {"retry_after": 5}


def test_any_other_failure_is_still_a_500(monkeypatch, make_performance):
    make_performance()
    import wondertix.storefront.views as views

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "render", broken)
    response = Client(raise_request_exception=False).get("/")
    assert response.status_code == 500 and "Retry-After" not in response
