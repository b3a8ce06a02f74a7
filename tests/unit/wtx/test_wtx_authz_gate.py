"""The security gate's live authorization matrix and schemathesis run, decided on a stand-in
site: what counts as refused, the staff operations of a document, the JUnit figures, and a
whole matrix against a site that leaves one admin page open. The real ones against stg are in
tests/deploy/test_e_live_checks.py.
"""

from __future__ import annotations

import http.server
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_wtx_pipeline import FakeBackend, fake_release
from tests.support.loopback_http import serving
from wtx_testing import ROOT

from wtx import authz_rules, gate_authz, gate_integration, gates
from wtx import release as releases
from wtx.backends import FrontDoor

R1 = "dddd11112222"
ROUTES = [["staff/", "dashboard"], ["staff/login/", "login"], ["staff/events/", "event-list"],
          ["staff/events/<int:event_id>/", "event-edit"], ["staff/door/<int:performance_id>/", "door"],
          ["staff/audit/", "audit"]]
DOCUMENT = {"paths": {"/api/v1/events": {"get": {}},
                      "/api/v1/staff/whoami": {"get": {"security": [{"StaffToken": []}]}},
                      "/api/v1/staff/checkin": {"post": {"security": [{"StaffToken": []}]}}}}


def test_refused_means_401_403_405_or_a_redirect_to_the_staff_login():
    assert gate_authz.is_refused(302, "/staff/login/?next=/staff/events/")
    assert gate_authz.is_refused(302, "http://stg.wondertix.localhost:8080/staff/login/?next=/staff/")
    assert all(gate_authz.is_refused(s, "") for s in (401, 403, 405))
    assert not gate_authz.is_refused(200, "")
    assert not gate_authz.is_refused(302, "/")  # a redirect elsewhere is not a refusal
    assert not gate_authz.is_refused(404, "") and not gate_authz.is_refused(500, "")


def test_the_staff_operations_of_a_document_are_those_under_the_staff_prefix():
    assert gate_authz.staff_operations(DOCUMENT) == [("/api/v1/staff/whoami", "GET"), ("/api/v1/staff/checkin", "POST")]


def test_a_staff_page_without_a_rule_is_named():
    with pytest.raises(authz_rules.NoRule, match="/staff/new-thing/"):
        authz_rules.allowed_page_roles("staff/new-thing/", "new-thing")
    assert authz_rules.fill_route("staff/events/<int:event_id>/", {}) == "/staff/events/999999/"


def test_junit_figures_count_operations_and_those_with_a_failure(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text('<testsuites><testsuite name="schemathesis">'
                      '<testcase name="GET /api/v1/events"/>'
                      '<testcase name="POST /api/v1/orders"><failure message="Server error"/></testcase>'
                      "</testsuite></testsuites>")
    assert gate_authz.junit_figures(report) == (2, ["POST /api/v1/orders"])


# --------------------------------------------------------------------------------------------
# A whole matrix against a stand-in site


class Site:
    def __init__(self) -> None:
        self.open: set[str] = set()          # pages served to anyone (the bug the gate catches)
        self.requests: list[tuple[str, str, bool]] = []


@pytest.fixture
def site():
    state = Site()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, method: str) -> None:
            clerk = "sessionid=s3ss10n" in self.headers.get("Cookie", "")
            state.requests.append((method, self.path, clerk))
            status, location, body = 200, "", b"{}"
            if self.path == "/api/v1/staff/openapi.json":
                status, body = (200, json.dumps(DOCUMENT).encode()) if clerk else (302, b"")
            elif self.path.startswith("/api/"):
                status = 401
            elif self.path in state.open:
                status = 200
            elif not clerk:
                status, location = 302, f"/staff/login/?next={self.path}"
            elif self.path.startswith(("/staff/events/", "/staff/audit/")):
                status = 403
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.answer("GET")

        def do_POST(self):  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer("POST")

        def log_message(self, *args):
            pass

    with serving(Handler) as state.port:
        yield state


class Stg(FakeBackend):
    def __init__(self, spec: Any, var_dir: Path, site: Site) -> None:
        super().__init__(spec, var_dir)
        self.site = site
        self.scripts: list[str] = []

    def front_door(self, env: str) -> FrontDoor:
        return FrontDoor(host="stg.wondertix.localhost", port=self.site.port)

    def manage(self, env: Any, rel: Any, *args: str, timeout: float = 600, overrides: Any = None):
        script = args[2]
        self.scripts.append(script)
        out = ({"routes": ROUTES, "cookie": "sessionid", "session": "s3ss10n"} if "create()" in script
               else {"deactivated": 1})
        return subprocess.CompletedProcess(args, 0, gate_integration.MARK + json.dumps(out) + "\n", "")


def _matrix(spec, var_dir, site):
    fake_release(var_dir, R1)
    backend = Stg(spec, var_dir, site)
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("security")
    figures: dict[str, Any] = {}
    lines: list[str] = []
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        problems = gate_authz.matrix(work, gate, lines.append, figures)
    return problems, figures, backend


def test_a_site_that_refuses_as_the_rules_say_has_no_problem_and_signs_the_clerk_out(spec, var_dir, site):
    problems, figures, backend = _matrix(spec, var_dir, site)
    assert problems == []
    assert figures == {"authz_pages": 5, "authz_admin_only_pages": 3, "authz_api_operations": 2, "authz_problems": 0}
    assert ("GET", "/staff/events/999999/", True) in site.requests  # admin-only, asked as the clerk
    assert ("POST", "/api/v1/staff/checkin", False) in site.requests
    assert "is_active=False" in backend.scripts[-1] and ".delete()" in backend.scripts[-1]


def test_an_admin_page_left_open_is_named_for_anonymous_and_the_clerk(spec, var_dir, site):
    site.open.add("/staff/audit/")
    problems, figures, backend = _matrix(spec, var_dir, site)
    assert problems == [
        "authz: anonymous GET /staff/audit/ answered 200 (must be refused: login redirect, 401 or 403)",
        "authz: a box-office clerk GET /staff/audit/ answered 200 (the page is for admin only: must be 403)",
    ]
    assert figures["authz_problems"] == 2
    assert "is_active=False" in backend.scripts[-1]  # signed out, problems or not
