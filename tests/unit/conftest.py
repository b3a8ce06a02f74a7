"""Unit-layer fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from tests.support.openapi_check import ResponseChecker


@pytest.fixture(autouse=True)
def api_answers_match_the_published_document(monkeypatch) -> Iterator[ResponseChecker]:
    """Every API answer any unit test receives is checked against the OpenAPI document:
    its status is documented for the operation and its body matches the documented schema."""
    checker = ResponseChecker()
    request = Client.request

    def checked(self: Client, **environ: Any) -> Any:
        response = request(self, **environ)
        checker.check(environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), response)
        return response

    monkeypatch.setattr(Client, "request", checked)
    yield checker
    assert not checker.problems, "answers that do not match the published API:\n" + "\n".join(checker.problems)


@pytest.fixture
def admin_user(db):  # noqa: ANN001, ANN201
    """A staff member with the admin role (the house manager)."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("house-manager", is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    return user


@pytest.fixture
def admin(admin_user) -> Client:  # noqa: ANN001
    """A browser signed in as the admin."""
    client = Client()
    client.force_login(admin_user)
    return client
