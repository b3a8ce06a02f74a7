"""Staff at a live server: accounts with roles, API tokens, signed-in sessions, and a race
runner for requests that are not plain JSON POSTs (HTML forms, signed webhooks).

Accounts and tokens are made with the project's own commands (`create_staff`,
`mint_staff_token`) run against the live server's database and with the live server's
environment, so a token is signed with that server's STAFF_API_TOKEN_KEY.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
from tests.support.liveserver import LiveServer, manage

T = TypeVar("T")


def create_staff(server: LiveServer, username: str, role: str) -> str:
    """A staff account with one role (admin, box_office, usher); returns its password."""
    password = "Pw-" + secrets.token_urlsafe(18)
    manage(server.database_url, "create_staff", username, "--role", role, "--password", password, env=server.env)
    return password


def mint_tokens(server: LiveServer, usernames: list[str]) -> dict[str, str]:
    """`mint_staff_token` for each user, in one process (one Django start-up, not one each)."""
    script = (
        "import io, json\n"
        "from django.core.management import call_command\n"
        "out = {}\n"
        f"for name in {usernames!r}:\n"
        "    buf = io.StringIO()\n"
        "    call_command('mint_staff_token', name, stdout=buf)\n"
        "    out[name] = buf.getvalue().strip()\n"
        "print('TOKENS ' + json.dumps(out))\n"
    )
    output = manage(server.database_url, "shell", "-c", script, env=server.env)
    line = next(line for line in output.splitlines() if line.startswith("TOKENS "))
    return dict(json.loads(line[len("TOKENS "):]))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page's form (CSRF token, idempotency key, ...)."""
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields


def sign_in(server: LiveServer, username: str, password: str, *, timeout: float = 30.0) -> httpx.Cookies:
    """Sign in through the staff login page; returns the session's cookies (session + CSRF)."""
    with httpx.Client(base_url=server.url, timeout=timeout) as client:
        page = client.get("/staff/login/")
        assert page.status_code == 200, page.text[:500]
        token = _CSRF_INPUT.search(page.text)
        assert token, "the login page has no CSRF token"
        r = client.post("/staff/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1), "next": ""})
        assert r.status_code == 302, f"sign in failed ({r.status_code}): {r.text[:500]}"
        assert "sessionid" in client.cookies, "no session cookie after signing in"
        return httpx.Cookies(client.cookies)


def together(calls: list[Callable[[], T]], *, timeout: float = 30.0) -> list[T]:
    """Run every call in its own thread, all released at the same instant by a barrier.

    Each call must bound its own I/O (an httpx timeout); the barrier and the wait for the
    results are bounded too, so a deadlock shows up as a failure, never as a hung test."""
    barrier = threading.Barrier(len(calls), timeout=timeout)

    def one(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(one, call) for call in calls]
        deadline = time.monotonic() + timeout * 2
        return [f.result(timeout=max(0.1, deadline - time.monotonic())) for f in futures]
