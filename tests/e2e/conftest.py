"""E2E layer: a real browser (Debian's /usr/bin/chromium driven by Playwright) against a live
server. Browsers are never downloaded; CI installs the chromium package when missing.

The live server is pytest-django's, on a free loopback port, with the test database
pytest-django makes — or, when WONDERTIX_TEST_DATABASE_URL is set (stg's integration gate
runs the journeys so, as it runs the integration suites: wtx.gate_journeys), that given
empty scratch database, migrated here and emptied after every journey as a test database is;
nothing is created or dropped beside it."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXPECTED_REFUSAL = re.compile(r"Failed to load resource: the server responded with a status of (402|409|422)")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}
# Screenshots; stg's integration gate keeps them next to its log.
ARTIFACTS = Path(os.environ.get("WONDERTIX_E2E_ARTIFACTS") or Path(__file__).resolve().parents[2] / "var" / "e2e")

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# from that same thread (arranging rows, counting tickets) are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

EXTERNAL_DATABASE = os.environ.get("WONDERTIX_TEST_DATABASE_URL", "")

if EXTERNAL_DATABASE:

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_blocker) -> Iterator[None]:  # noqa: ANN001
        """The given database instead of a test database of pytest-django's making (the role
        that reaches it may create nothing else)."""
        import environ
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        config = connections.configure_settings({"default": environ.Env.db_url_config(EXTERNAL_DATABASE)})["default"]
        config["CONN_MAX_AGE"] = 0
        settings.DATABASES["default"] = config
        connections.settings["default"] = config
        connections["default"].close()
        del connections["default"]  # the next use connects to the given database
        with django_db_blocker.unblock():
            call_command("migrate", "--noinput", verbosity=0)
        yield


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install the Debian package (apt-get install -y chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone(browser) -> Iterator:
    """A fresh browser context the size of a phone (new cookies, new session)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def on_console(msg) -> None:  # noqa: ANN001
        # A refused form answers 402/409/422 on purpose; the browser logs that as an error.
        if msg.type == "error" and not EXPECTED_REFUSAL.search(msg.text):
            problems.append(f"console {msg.type}: {msg.text}")

    page.on("console", on_console)
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def desktop(browser) -> Iterator:
    """A fresh desktop-sized browser context (staff screens: the seat-map editor)."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()
