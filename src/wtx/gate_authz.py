"""The security gate's live checks of who may open what, and schemathesis over the live API.

Authorization matrix (`authz = true`), against the environment through its front door (its
Host and basic auth), with the rules of wtx.authz_rules (the unit-level matrix's too):

1. The release (`wondertix shell -c`, the environment's variables and database) lists every
   staff URL of its URL resolver, and signs in a box-office clerk made for the gate
   (`wtx-gate-clerk`, no password: it can only be used through the session made here).
2. Anonymous: every staff page and every staff API operation of `/api/v1/staff/openapi.json`
   (read with the clerk's session) must be refused — a redirect to the login page, 401 or 403
   (405: the method serves nothing) — never a 2xx or a redirect elsewhere.
3. The clerk: every page the rules keep from box office (admin-only pages) must answer 403;
   the dashboard must answer 200 (the session works, so the 403s are the rules' and not a
   dead session's).
4. The release signs the clerk out (its session deleted) and deactivates it.

The staff API's Bearer tokens cannot pass a front door with basic auth (the Authorization
header carries the basic pair, and HAProxy removes it), so the clerk's half of the API matrix
stays in the unit matrix; here every operation is checked anonymously.

schemathesis (`schemathesis_max_examples` > 0): over the environment's public OpenAPI
document, through the front door, at most that many generated cases per operation, with the
`not_a_server_error` check; the JUnit report stays in the gate's log directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from wtx import authz_rules as rules
from wtx.gate_integration import MARK, release_shell

CLERK = "wtx-gate-clerk"
REFUSED = (401, 403)


def _sign_in_script() -> str:
    return f"""
import json
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, User
from django.urls import URLResolver, get_resolver

def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p.name

routes = [[r, n] for r, n in walk(get_resolver().url_patterns) if r.startswith("staff/")]
clerk, _ = User.objects.get_or_create(username={CLERK!r})
clerk.is_staff, clerk.is_active, clerk.is_superuser = True, True, False
clerk.set_unusable_password()
clerk.save()
clerk.groups.set([Group.objects.get(name={rules.BOX!r})])
backend = "django.contrib.auth.backends.ModelBackend"
store = import_module(settings.SESSION_ENGINE).SessionStore()
store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(clerk.pk), backend
store[HASH_SESSION_KEY] = clerk.get_session_auth_hash()
store.create()
print({MARK!r} + json.dumps({{"routes": routes, "cookie": settings.SESSION_COOKIE_NAME,
                              "session": store.session_key}}))
"""


def _sign_out_script(session: str) -> str:
    return f"""
import json
from importlib import import_module
from django.conf import settings
from django.contrib.auth.models import User

import_module(settings.SESSION_ENGINE).SessionStore(session_key={session!r}).delete()
n = User.objects.filter(username={CLERK!r}).update(is_active=False)
print({MARK!r} + json.dumps({{"deactivated": n}}))
"""


def is_refused(status: int, location: str) -> bool:
    """Refused: 401, 403, 405 (nothing served), or a redirect to the staff login page."""
    if status in (*REFUSED, 405):
        return True
    return status in (301, 302, 303, 307, 308) and urlsplit(location).path.startswith(rules.LOGIN_PATH)


def staff_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, METHOD) of every staff operation of an OpenAPI document."""
    return [(path, method.upper()) for path, methods in document.get("paths", {}).items()
            if path.startswith(rules.STAFF_API_PREFIX) for method in methods
            if method.lower() in ("get", "post", "put", "patch", "delete")]


def matrix(work: Any, gate: Any, log: Any, figures: dict[str, Any]) -> list[str]:
    """The live authorization matrix; returns the problems found (figures filled in)."""
    from wtx.gates import CheckError, fetch

    door = work.backend.front_door(work.env.name)
    made = release_shell(work, _sign_in_script(), "listing the staff URLs and signing in a clerk",
                         timeout=gate.timeout_s, log=log)
    cookie = {"Cookie": f"{made['cookie']}={made['session']}"}
    problems: list[str] = []
    try:
        def get(url: str, as_clerk: bool, method: str = "GET") -> tuple[int, str]:
            body = b"{}" if method != "GET" else None
            extra = {**(cookie if as_clerk else {}), **({"Content-Type": "application/json"} if body else {})}
            reply = fetch(door, url, timeout=gate.timeout_s, method=method, body=body, headers=extra)
            log(f"{'clerk' if as_clerk else 'anonymous'} {method} {url} -> {reply.status} {reply.header('location')}")
            return reply.status, reply.header("location")

        # One request per URL: a route listed twice is served by the first (Django's order).
        pages, urls = [], set()
        for route, name in made["routes"]:
            if route not in rules.PUBLIC_STAFF_PAGES and rules.fill_route(route, {}) not in urls:
                urls.add(rules.fill_route(route, {}))
                pages.append((route, name))
        if not pages:
            raise CheckError("the release lists no staff page: the authorization matrix checked nothing")
        admin_only = 0
        for route, name in pages:
            try:
                allowed = rules.allowed_page_roles(route, name)
            except rules.NoRule as exc:
                problems.append(str(exc))
                continue
            url = rules.fill_route(route, {})
            status, location = get(url, False)
            if not is_refused(status, location):
                problems.append(f"authz: anonymous GET {url} answered {status}{' to ' + location if location else ''} "
                                "(must be refused: login redirect, 401 or 403)")
            if rules.BOX not in allowed:
                admin_only += 1
                status, _ = get(url, True)
                if status not in (403, 405):
                    problems.append(f"authz: a box-office clerk GET {url} answered {status} (the page is for "
                                    f"{', '.join(sorted(allowed))} only: must be 403)")
        status, _ = get(rules.fill_route("staff/", {}), True)
        if status != 200:
            problems.append(f"authz: the clerk's dashboard answered {status}, not 200: the clerk's session does not "
                            "work, so its refusals prove nothing")

        doc = fetch(door, "/api/v1/staff/openapi.json", timeout=gate.timeout_s, headers=cookie)
        try:
            operations = staff_operations(json.loads(doc.body)) if doc.status == 200 else []
        except ValueError:
            operations = []
        if not operations:
            raise CheckError(f"/api/v1/staff/openapi.json answered {doc.status} to the clerk with no staff operation: "
                             "the API's matrix checked nothing")
        for path, method in operations:
            try:
                rules.allowed_api_roles(path)
            except rules.NoRule as exc:
                problems.append(str(exc))
            url = rules.fill_route(path.lstrip("/").replace("{", "<").replace("}", ">"), {})
            status, _ = get(url, False, method)
            if status not in REFUSED:
                problems.append(f"authz: anonymous {method} {url} answered {status} (must be 401 or 403)")
        figures.update(authz_pages=len(pages), authz_admin_only_pages=admin_only, authz_api_operations=len(operations),
                       authz_problems=len(problems))
    finally:
        release_shell(work, _sign_out_script(made["session"]), "signing the clerk out", timeout=gate.timeout_s, log=log)
    return problems


# --------------------------------------------------------------------------------------------
# schemathesis


SCHEMATHESIS_CONFIG = """# written by wtx's security gate; the credentials come from the environment
[auth]
basic = { username = "${WTX_GATE_BASIC_USER}", password = "${WTX_GATE_BASIC_PASSWORD}" }
"""


def junit_figures(report: Path) -> tuple[int, list[str]]:
    """(operations tested, operations with a failed check) from schemathesis' JUnit report."""
    root = ElementTree.parse(report).getroot()  # noqa: S314 - the report of the run we started
    cases = list(root.iter("testcase"))
    failed = [c.get("name", "?") for c in cases if c.find("failure") is not None or c.find("error") is not None]
    return len(cases), failed


def fuzz(work: Any, gate: Any, log: Any, figures: dict[str, Any]) -> str | None:
    """schemathesis over the live public OpenAPI document; the problem found, if any."""
    from wtx.gates import CheckError, _clean_env, fetch

    door = work.backend.front_door(work.env.name)
    doc = fetch(door, "/api/v1/openapi.json", timeout=gate.timeout_s)
    if doc.status != 200:
        raise CheckError(f"/api/v1/openapi.json answered {doc.status}: schemathesis has nothing to test")
    schema = work.dir / "openapi.json"
    schema.write_bytes(doc.body)
    config = work.dir / "scratch" / "schemathesis.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(SCHEMATHESIS_CONFIG)
    report = work.dir / "schemathesis.xml"
    report.unlink(missing_ok=True)
    scheme = "https" if door.tls else "http"
    args = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run", str(schema),
            "--url", f"{scheme}://{door.address}:{door.port}", "-H", f"Host: {door.host}:{door.port}",
            "--checks", "not_a_server_error", "--max-examples", str(gate.schemathesis_max_examples),
            "--phases", "examples,fuzzing", "--workers", "1", "--no-shrink", "--generation-database", "none",
            "--request-timeout", "10", "--report", "junit", "--report-junit-path", str(report), "--no-color"]
    if door.tls and door.cafile:
        args += ["--tls-verify", str(door.cafile)]
    env = _clean_env(work.dir)
    if door.basic_auth:
        env.update(WTX_GATE_BASIC_USER=door.basic_auth[0], WTX_GATE_BASIC_PASSWORD=door.basic_auth[1])
    else:
        config.write_text("# written by wtx's security gate\n")
    log(f"$ {' '.join(args)}")
    res = subprocess.run(args, capture_output=True, text=True, timeout=gate.schemathesis_timeout_s, env=env,
                         cwd=work.dir / "scratch")
    log(res.stdout[-20000:] + res.stderr[-4000:])
    if not report.is_file():
        raise CheckError(f"schemathesis wrote no report (exit {res.returncode}): "
                         f"{(res.stderr or res.stdout).strip().splitlines()[-1:] or ''}")
    tested, failed = junit_figures(report)
    figures.update(schemathesis_operations=tested, schemathesis_server_error_operations=len(failed),
                   schemathesis_report=work.relative(report))
    if tested == 0:
        return "schemathesis tested no operation of /api/v1/openapi.json"
    if len(failed) > gate.schemathesis_max_server_errors:
        return (f"schemathesis: {len(failed)} of {tested} operation(s) answered 5xx (at most "
                f"{gate.schemathesis_max_server_errors}): {', '.join(failed[:3])}")
    return None

