"""The interactive API docs at /api/v1/docs, in a real browser under the site's
Content-Security-Policy: Swagger UI comes from our own static files (never a CDN), lists the
public operations, leaves the staff API out, and the browser reports no CSP violation."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

# Each public operation as Swagger UI shows it: method and path.
PUBLIC = [
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/{slug}"),
    ("GET", "/api/v1/performances"),
    ("GET", "/api/v1/performances/{performance_id}"),
    ("POST", "/api/v1/holds"),
    ("GET", "/api/v1/holds/{token}"),
    ("DELETE", "/api/v1/holds/{token}"),
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/orders/{token}"),
]
# Records what the browser refuses, from before the page's first script runs.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""


def test_api_docs_list_the_public_operations_under_the_sites_csp(browser, live_server, artifacts):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    console: list[str] = []
    requested: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
    page.on("request", lambda request: requested.append(request.url))
    try:
        response = page.goto(live_server.url + "/api/v1/docs")
        assert response is not None and response.status == 200
        assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
        page.locator(".opblock").first.wait_for()
        listed = {
            (block.locator(".opblock-summary-method").inner_text().strip(), block.locator(".opblock-summary-path").inner_text().strip().replace("\u200b", ""))
            for block in page.locator(".opblock").all()
        }
        page.screenshot(path=str(artifacts / "api-docs.png"), full_page=False)
        violations = page.evaluate("window.__csp")
    finally:
        context.close()

    assert set(PUBLIC) <= listed, sorted(listed)
    assert not [p for _, p in listed if p.startswith("/api/v1/staff")], "the public docs show staff operations"
    assert violations == [], violations
    assert not [line for line in console if "Content Security Policy" in line or line.startswith(("error", "page error"))], console
    assert all(url.startswith(live_server.url) for url in requested), [u for u in requested if not u.startswith(live_server.url)]


def test_signed_in_staff_see_the_staff_operations_in_their_docs(browser, live_server, clerk):
    password = "docs-reader-" + "5" * 8
    clerk.set_password(password)
    clerk.save()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/api/v1/staff/docs")
        page.wait_for_url("**/staff/login/**")
        page.get_by_label("Username").fill(clerk.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/api/v1/staff/docs")
        page.locator(".opblock").first.wait_for()
        paths = {p.inner_text().strip().replace("\u200b", "") for p in page.locator(".opblock-summary-path").all()}
        violations = page.evaluate("window.__csp")
    finally:
        context.close()
    assert {"/api/v1/staff/checkin", "/api/v1/staff/sales/orders/{order_id}", "/api/v1/orders"} <= paths, sorted(paths)
    assert violations == [], violations
