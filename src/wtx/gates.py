"""The gates: checks run against a release *as installed in an environment*.

Each check reads its thresholds from the spec (deploy/environments.toml, validated by
wtx.spec), writes what it did to a log under var/gates/<env>/<release>/<run>/<check>.log and
returns a GateResult (pass/fail, figures, one line). A check that cannot check fails: there
is no gate that passes without looking.

lint and unit need the release's tests, which a release (a wheel and its locked
dependencies) does not ship. They run the checkout's files *at the commit the release was
built from* (a local clone, detached at that commit) — after proving that every file of the
release's app wheel is byte-identical to that commit's source — with the release's installed
code and dependencies first on the path and the project's test tools (pytest, ruff, mypy)
after them. A dirty release (built with --allow-dirty) has no such commit, so its lint and
unit gates fail.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from wtx import gate_authz
from wtx.backends import Backend, FrontDoor
from wtx.pipeline import GateResult
from wtx.release import Release
from wtx.spec import (
    Environment,
    IntegrationMinimalGate,
    LintGate,
    SecurityGate,
    SmokeGate,
    Spec,
    UnitGate,
)

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def gates_dir(var_dir: Path) -> Path:
    return Path(var_dir) / "gates"


class Workspace:
    """One gate run: its directory, logs, and (made on first use) the checkout at the
    release's commit and an interpreter that runs the release's installed code."""

    def __init__(self, spec: Spec, backend: Backend, root: Path, env: Environment, release: Release,
                 run: str) -> None:
        self.spec, self.backend, self.root, self.env, self.release, self.run = spec, backend, root, env, release, run
        self.dir = gates_dir(backend.var_dir) / env.name / release.id / run
        self._checkout: Path | None = None
        self._python: Path | None = None

    def __enter__(self) -> Workspace:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        # Logs stay (the ledger points at them); the checkout and interpreter are scratch.
        shutil.rmtree(self.dir / "checkout", ignore_errors=True)
        shutil.rmtree(self.dir / "python", ignore_errors=True)
        shutil.rmtree(self.dir / "scratch", ignore_errors=True)

    def log_path(self, check: str) -> Path:
        return self.dir / f"{check}.log"

    def relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.backend.var_dir))
        except ValueError:
            return str(path)

    # -- the release's commit and its installed code ------------------------------------------
    def checkout(self) -> Path:
        if self._checkout is None:
            self._checkout = _checkout_at_commit(self.root, self.release, self.dir / "checkout")
        return self._checkout

    def python(self) -> Path:
        """An interpreter whose path is: the release as installed (app + locked deps), then
        the test tools wtx itself runs with (pytest, ruff, mypy and their plugins)."""
        if self._python is None:
            release_python = self.backend.release_python(self.release)
            res = subprocess.run([str(release_python), "-c", "import json, sys; print(json.dumps(sys.path))"],
                                 capture_output=True, text=True, timeout=60, env=_clean_env(self.dir))
            if res.returncode != 0:
                raise CheckError(f"the installed release's interpreter does not start: {_tail(res)}")
            release_paths = [p for p in json.loads(res.stdout) if p.endswith("site-packages")]
            venv = self.dir / "python"
            subprocess.run([_base_python(), "-m", "venv", "--without-pip", str(venv)], check=True,
                           capture_output=True, timeout=120)
            site = next((venv / "lib").glob("python3*/site-packages"))
            # The test tools as this interpreter finds them: its site-packages, and the paths
            # a gate's own interpreter lists (a gate's tests that make a gate run inside one).
            tools = [p for p in sys.path if p.endswith("site-packages") and p not in release_paths]
            tools = tools or [sysconfig.get_paths()["purelib"]]
            (site / "_wtx_gate.pth").write_text("\n".join([*release_paths, *tools]) + "\n")
            self._python = venv / "bin" / "python"
        return self._python


class CheckError(Exception):
    """A check could not run; its gate fails with this message."""


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _clean_env(workdir: Path) -> dict[str, str]:
    """Nothing of the operator's shell (WTX_VAR_DIR, DATABASE_URL, …) reaches a check."""
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": str(scratch), "PYTHONDONTWRITEBYTECODE": "1",
            "WONDERTIX_VAR_DIR": str(scratch / "var"), "TMPDIR": str(scratch)}


def _tail(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (res.stderr or res.stdout or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {res.returncode}"


def _checkout_at_commit(root: Path, release: Release, dest: Path) -> Path:
    if release.manifest.get("dirty"):
        raise CheckError(f"release {release.id} was built from uncommitted changes: there is no commit to "
                         "test it at (build it from a commit)")
    commit = release.commit
    known = subprocess.run(["git", "-C", str(root), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True, text=True)
    if known.returncode != 0:
        raise CheckError(f"commit {commit[:12]} of release {release.id} is not in the checkout {root}")
    shutil.rmtree(dest, ignore_errors=True)
    for args in (["clone", "-q", "--no-checkout", str(root), str(dest)],
                 ["-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit]):
        res = subprocess.run(["git", *args], capture_output=True, text=True)
        if res.returncode != 0:
            raise CheckError(f"git {args[0]} failed: {_tail(res)}")
    differs, compared = _wheel_matches_source(release, dest / "src")
    if differs:
        raise CheckError(f"release {release.id}'s wheel is not commit {commit[:12]}: {differs}")
    if compared == 0:
        raise CheckError(f"release {release.id}'s wheel holds no file of {dest / 'src'} to compare")
    return dest


def _wheel_matches_source(release: Release, src: Path) -> tuple[str, int]:
    """('', files compared) when every file of the app wheel equals the commit's source."""
    compared = 0
    with zipfile.ZipFile(release.app_wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or ".dist-info/" in name:
                continue
            source = src / name
            if not source.is_file():
                return f"{name} is in the wheel and not in the source", compared
            if source.read_bytes() != zf.read(info):
                return f"{name} differs", compared
            compared += 1
    return "", compared


# --------------------------------------------------------------------------------------------
# A small HTTP client for the front door (loopback only)


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    ms: float

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def fetch(door: FrontDoor, path: str, *, source: str | None = None, auth: bool = True,
          timeout: float = 10.0, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Reply:
    """GET (or `method`) `path` from the environment's front door, with its Host (and SNI),
    optionally from a chosen loopback source address and with extra `headers`."""
    if not ipaddress.ip_address(door.address).is_loopback:
        raise CheckError(f"{door.address} is not a loopback address; checks reach only this machine")
    src = (source, 0) if source else None
    conn: http.client.HTTPConnection
    if door.tls:
        ctx = ssl.create_default_context(cafile=str(door.cafile) if door.cafile else None)

        class _Tls(http.client.HTTPSConnection):
            def connect(self) -> None:
                sock = socket.create_connection((door.address, door.port), timeout, src)
                self.sock = ctx.wrap_socket(sock, server_hostname=door.host)

        conn = _Tls(door.address, door.port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(door.address, door.port, timeout=timeout, source_address=src)
    sent = {"Host": f"{door.host}:{door.port}", "Connection": "close", "User-Agent": "wtx-gate", **(headers or {})}
    if door.basic_auth and auth:
        sent["Authorization"] = "Basic " + base64.b64encode(":".join(door.basic_auth).encode()).decode()
    started = time.monotonic()
    try:
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        body = resp.read()
        return Reply(resp.status, resp.getheaders(), body, round((time.monotonic() - started) * 1000, 1))
    except (OSError, http.client.HTTPException) as exc:
        raise CheckError(f"{method} {path}: no answer from {door.host} ({type(exc).__name__}: {exc})") from None
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# The checks


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = path.open("a", encoding="utf-8")

    def __call__(self, text: str) -> None:
        self.fh.write(text.rstrip("\n") + "\n")
        self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def run_check(work: Workspace, gate: Any) -> GateResult:
    """Run one gate; any failure to run is a failed gate with the reason as its summary."""
    log = _Log(work.log_path(gate.check))
    started = time.monotonic()
    log(f"# gate {gate.check} of {work.env.name} for release {work.release.id} (run {work.run})")
    log(f"# thresholds: {gate.model_dump()}")
    try:
        result = CHECKS[type(gate)](work, gate, log)
    except CheckError as exc:
        result = GateResult(gate.check, False, str(exc))
    except subprocess.TimeoutExpired as exc:
        result = GateResult(gate.check, False, f"did not finish within {gate.timeout_s} s ({exc.cmd[0] if exc.cmd else ''})")
    result.seconds = round(time.monotonic() - started, 2)
    result.log = work.relative(log.path)
    log(f"# {'PASSED' if result.passed else 'FAILED'}: {result.summary} {json.dumps(result.figures)}")
    log.close()
    return result


def _run(work: Workspace, gate: Any, log: _Log, args: list[str],
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    log(f"$ {' '.join(args)}")
    res = subprocess.run(args, cwd=work.checkout(), capture_output=True, text=True, timeout=gate.timeout_s,
                         env=env or _clean_env(work.dir))
    log(res.stdout)
    log(res.stderr)
    return res


def check_lint(work: Workspace, gate: LintGate, log: _Log) -> GateResult:
    python = str(work.python())
    figures: dict[str, Any] = {}
    for tool in gate.tools:
        if tool == "ruff":
            res = _run(work, gate, log, [python, "-m", "ruff", "check", "--output-format", "concise", *gate.paths])
            if res.returncode not in (0, 1):
                raise CheckError(f"ruff could not run: {_tail(res)}")
            figures["ruff_findings"] = len(re.findall(r"^\S+:\d+:\d+: ", res.stdout, re.M))
        else:
            res = _run(work, gate, log, [python, "-m", "mypy"])
            if res.returncode not in (0, 1):
                raise CheckError(f"mypy could not run: {_tail(res)}")
            found = re.search(r"Found (\d+) errors?", res.stdout)
            figures["mypy_errors"] = int(found.group(1)) if found else (0 if res.returncode == 0 else 1)
    total = sum(figures.values())
    passed = total <= gate.max_findings
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in figures.items()) + f" (at most {gate.max_findings})"
    return GateResult(gate.check, passed, summary, figures)


def junit_totals(report: Path) -> dict[str, int]:
    """passed, failed (failures and errors) and skipped of a pytest JUnit report."""
    suites = ElementTree.parse(report).getroot()  # noqa: S314 - our own pytest's report
    totals = {k: 0 for k in ("tests", "failures", "errors", "skipped")}
    for suite in suites.iter("testsuite"):
        for k in totals:
            totals[k] += int(suite.get(k, 0))
    failed = totals["failures"] + totals["errors"]
    return {"passed": totals["tests"] - failed - totals["skipped"], "failed": failed, "skipped": totals["skipped"]}


def _unit_env(work: Workspace, short_tmp: Path) -> dict[str, str]:
    """The clean environment, plus what the unit tests need from this machine to run as they
    do in `make unit`: wtx's wheel cache and pip's own settings (the release tests build
    releases, which collect wheels the way `wtx build` does, through this machine's package
    index configuration), and a short temporary directory (a unix socket path, HAProxy's admin socket in the front
    door tests, holds at most 97 characters: under var/gates/… it would not fit)."""
    from wtx.release import wheel_cache_dir

    values = {**_clean_env(work.dir), "TMPDIR": str(short_tmp),
              # the dependency wheelhouses wtx already resolved, keyed by lock (a release
              # still records every wheel's sha256): the release tests build from them as
              # `make unit` does, instead of resolving every dependency again
              "WTX_CACHE_DIR": str(wheel_cache_dir().parent)}
    values.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})
    user_config = Path.home() / ".config" / "pip" / "pip.conf"
    if "PIP_CONFIG_FILE" not in values and user_config.is_file():
        values["PIP_CONFIG_FILE"] = str(user_config)  # the scratch HOME hides the operator's
    return values


def check_unit(work: Workspace, gate: UnitGate, log: _Log) -> GateResult:
    report = work.dir / "unit.xml"
    short_tmp = Path(tempfile.mkdtemp(prefix="wtx-unit-"))
    args = [str(work.python()), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
            f"--basetemp={short_tmp / 't'}"]
    if gate.workers > 1:
        args += ["-n", str(gate.workers)]
    try:
        res = _run(work, gate, log, [*args, *gate.paths], env=_unit_env(work, short_tmp))
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)
    if not report.is_file():
        raise CheckError(f"pytest wrote no report: {_tail(res)}")
    figures = junit_totals(report)
    failed = figures["failed"]
    passed = failed <= gate.max_failures and figures["passed"] >= gate.min_passed
    summary = f"{figures['passed']} passed, {failed} failed, {figures['skipped']} skipped"
    if figures["passed"] < gate.min_passed:
        summary += f" (at least {gate.min_passed} must pass)"
    elif failed > gate.max_failures:
        first = re.search(r"^(?:FAILED|ERROR) (\S+)", res.stdout, re.M)
        summary += f" (at most {gate.max_failures})" + (f"; first: {first.group(1)}" if first else "")
    return GateResult(gate.check, passed, summary, figures)


def _is_html(reply: Reply) -> bool:
    return reply.header("content-type").startswith("text/html")


def check_integration_minimal(work: Workspace, gate: IntegrationMinimalGate, log: _Log) -> GateResult:
    env = work.env
    if gate.seed_demo:
        log(f"loading the demo data into {env.name} (seed_demo is idempotent)")
        work.backend.db_seed(env.name)
    door = work.backend.front_door(env.name)
    ready = fetch(door, work.spec.defaults.readiness_path, timeout=gate.timeout_s)
    log(f"GET {work.spec.defaults.readiness_path} -> {ready.status} {ready.body[:200]!r}")
    try:
        database = json.loads(ready.body).get("database")
    except ValueError:
        database = None
    if ready.status != 200 or database != "ok":
        raise CheckError(f"{work.spec.defaults.readiness_path} answered {ready.status} (database {database or 'unknown'})")
    titles: list[str] = []
    events = 0
    for path in gate.api:
        reply = fetch(door, path, timeout=gate.timeout_s)
        log(f"GET {path} -> {reply.status} ({reply.ms} ms)")
        if reply.status != 200:
            raise CheckError(f"API {path} answered {reply.status}")
        try:
            data = json.loads(reply.body)
        except ValueError:
            raise CheckError(f"API {path} did not answer JSON") from None
        if isinstance(data, list):
            events = max(events, len(data))
            titles += [str(item.get("title", "")) for item in data if isinstance(item, dict) and item.get("title")]
    if events < gate.min_events:
        raise CheckError(f"the API lists {events} event(s), at least {gate.min_events} expected (no demo data?)")
    shown = 0
    for path in gate.pages:
        reply = fetch(door, path, timeout=gate.timeout_s)
        log(f"GET {path} -> {reply.status} ({reply.ms} ms)")
        if reply.status != 200 or not _is_html(reply):
            raise CheckError(f"storefront {path} answered {reply.status} {reply.header('content-type')}")
        text = reply.body.decode("utf-8", "replace")
        shown = max(shown, sum(1 for t in titles if t and _html_has(text, t)))
    if shown < min(gate.min_events, len(titles) or 1):
        raise CheckError(f"the storefront shows {shown} of the API's {len(titles)} event titles")
    figures = {"readyz": ready.status, "events": events, "events_on_storefront": shown}
    return GateResult(gate.check, True, f"/readyz 200 with its database; {events} events in the API, "
                      f"{shown} on the storefront", figures)


def _html_has(text: str, title: str) -> bool:
    from html import escape

    return title in text or escape(title) in text


def check_security(work: Workspace, gate: SecurityGate, log: _Log) -> GateResult:
    env = work.env
    problems: list[str] = []
    figures: dict[str, Any] = {}

    # 1. Django's deployment checks, with this environment's settings, by the installed release.
    res = work.backend.manage(env, work.release, "check", "--deploy", timeout=gate.timeout_s)
    log(f"$ wondertix check --deploy  (exit {res.returncode})\n{res.stdout}\n{res.stderr}")
    text = res.stdout + res.stderr
    found = re.search(r"identified (\d+) issues?", text)
    ids = re.findall(r"^\S*: \((\w+\.[CEWI]\d{3})\) ", text, re.M)
    unexpected = [i for i in ids if i not in gate.allow]
    figures["deploy_check_issues"] = len(ids)
    figures["deploy_check_allowed"] = len(ids) - len(unexpected)
    if res.returncode != 0 and not ids:
        problems.append(f"check --deploy failed: {_tail(res)}")
    elif found and int(found.group(1)) != len(ids):
        problems.append(f"check --deploy reported {found.group(1)} issue(s) and {len(ids)} could be read (see the log)")
    elif res.returncode != 0 or len(unexpected) > gate.max_deploy_warnings:
        problems.append(f"check --deploy: {len(unexpected)} issue(s) not allowed by the spec "
                        f"(at most {gate.max_deploy_warnings}): {', '.join(unexpected[:4])}")
    issues = len(unexpected)

    # 2. Headers and cookies on the live environment.
    door = work.backend.front_door(env.name)
    cookies: list[str] = []
    for path in gate.pages:
        reply = fetch(door, path, timeout=gate.timeout_s)
        log(f"GET {path} -> {reply.status}; headers: {reply.headers}")
        if reply.status != 200:
            problems.append(f"GET {path} answered {reply.status}")
            continue
        if not reply.header("content-security-policy"):
            problems.append(f"{path}: no Content-Security-Policy")
        if reply.header("x-content-type-options").lower() != "nosniff":
            problems.append(f"{path}: no X-Content-Type-Options: nosniff")
        if env.access.tls and "max-age=" not in reply.header("strict-transport-security"):
            problems.append(f"{path}: no Strict-Transport-Security over TLS")
        cookies += reply.all("set-cookie")
    figures["csp"] = not any("Content-Security-Policy" in p for p in problems)
    figures["cookies_checked"] = len(cookies)
    if not cookies:
        problems.append(f"no page of {gate.pages} set a cookie: cookie flags not verified")
    for cookie in cookies:
        name = cookie.split("=", 1)[0].strip()
        attrs = {a.strip().split("=", 1)[0].lower(): (a.split("=", 1)[1].strip() if "=" in a else "")
                 for a in cookie.split(";")[1:]}
        if attrs.get("samesite", "").lower() not in ("lax", "strict"):
            problems.append(f"cookie {name}: SameSite is not Lax or Strict")
        if env.access.tls and "secure" not in attrs:
            problems.append(f"cookie {name}: not Secure over TLS")
        if "session" in name.lower() and "httponly" not in attrs:
            problems.append(f"cookie {name}: not HttpOnly")

    # 3. Access rules: a source outside allowed_networks is refused; no credentials, no entry.
    outsider = _outside_source(env.access.allowed_networks)
    if outsider is None:
        problems.append("firewall not verified: every loopback address is in allowed_networks")
    else:
        refused = fetch(door, "/healthz", source=outsider, timeout=gate.timeout_s)
        figures["firewall_status_from_outside"] = refused.status
        log(f"GET /healthz from {outsider} -> {refused.status}")
        if refused.status != 403:
            problems.append(f"firewall: a request from {outsider} (not allowed) answered {refused.status}, not 403")
    if env.access.basic_auth:
        anonymous = fetch(door, "/healthz", auth=False, timeout=gate.timeout_s)
        figures["status_without_credentials"] = anonymous.status
        if anonymous.status != 401:
            problems.append(f"basic auth: a request without credentials answered {anonymous.status}, not 401")

    # 4. who may open what, and schemathesis, on the live environment (wtx.gate_authz).
    if gate.authz:
        problems += gate_authz.matrix(work, gate, log, figures)
    if gate.schemathesis_max_examples:
        fuzz_problem = gate_authz.fuzz(work, gate, log, figures)
        if fuzz_problem:
            problems.append(fuzz_problem)

    # 5. bandit over the release's own code; 6. the audit of its locked dependencies.
    bandit_problem, counted = _bandit(work, gate, log, figures)
    if bandit_problem:
        problems.append(bandit_problem)
    audit_problem = _audit(work, gate, log, figures)
    if audit_problem:
        problems.append(audit_problem)

    if problems:
        for problem in problems:
            log(f"problem: {problem}")
        more = f" (and {len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
        return GateResult(gate.check, False, problems[0] + more, figures)
    audit = (f"{figures['vulnerabilities']} known vulnerabilities" if figures["audit"] == "audited"
             else "dependencies NOT AUDITED (allowed by allow_unaudited)")
    live = ""
    if gate.authz:
        live += (f"authz: {figures['authz_pages']} staff pages and {figures['authz_api_operations']} staff API "
                 f"operations refused to anonymous, {figures['authz_admin_only_pages']} admin-only pages to a clerk; ")
    if gate.schemathesis_max_examples:
        live += f"schemathesis: {figures['schemathesis_operations']} operations, {figures['schemathesis_server_error_operations']} with 5xx; "
    return GateResult(gate.check, True, f"check --deploy {issues} issues (+{len(ids) - issues} allowed); CSP, nosniff; {len(cookies)} cookie(s) "
                      f"SameSite{'/Secure' if env.access.tls else ''}; outsider {figures.get('firewall_status_from_outside')}; "
                      f"{live}bandit {counted} at {gate.bandit_severity}+; {audit}",
                      figures)


_LEVELS = {"low": 1, "medium": 2, "high": 3}


def bandit_count(report: dict[str, Any], severity: str, confidence: str) -> tuple[int, dict[str, int], list[str]]:
    """Findings of a bandit JSON report at or above both levels: their number, the number of
    every finding by severity, and the first counted ones ("path:line BXXX")."""
    by_severity = {level: 0 for level in _LEVELS}
    counted: list[str] = []
    for item in report.get("results", []):
        sev, conf = str(item.get("issue_severity", "")).lower(), str(item.get("issue_confidence", "")).lower()
        if sev in by_severity:
            by_severity[sev] += 1
        if _LEVELS.get(sev, 3) >= _LEVELS[severity] and _LEVELS.get(conf, 3) >= _LEVELS[confidence]:
            counted.append(f"{item.get('filename', '?')}:{item.get('line_number', '?')} {item.get('test_id', '?')}")
    return len(counted), by_severity, counted


def _bandit(work: Workspace, gate: SecurityGate, log: _Log, figures: dict[str, Any]) -> tuple[str | None, int]:
    """bandit over the Python files of the release's app wheel (the code it runs)."""
    code = work.dir / "scratch" / "bandit-code"
    shutil.rmtree(code, ignore_errors=True)
    code.mkdir(parents=True)
    with zipfile.ZipFile(work.release.app_wheel) as wheel:
        for name in wheel.namelist():
            if name.endswith(".py") and ".dist-info/" not in name:
                wheel.extract(name, code)
    report = work.dir / "bandit.json"
    args = [sys.executable, "-m", "bandit", "-r", str(code), "-f", "json", "-o", str(report), "-q"]
    log(f"$ {' '.join(args)}")
    res = subprocess.run(args, capture_output=True, text=True, timeout=gate.timeout_s, env=_clean_env(work.dir))
    log(res.stdout + res.stderr)
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        raise CheckError(f"bandit wrote no report (exit {res.returncode}): {_tail(res)}") from None
    if res.returncode not in (0, 1) or data.get("errors"):
        raise CheckError(f"bandit could not check every file (exit {res.returncode}): "
                         f"{(data.get('errors') or [{}])[0].get('reason', _tail(res))}")
    count, by_severity, counted = bandit_count(data, gate.bandit_severity, gate.bandit_confidence)
    figures["bandit_findings"] = count
    figures.update({f"bandit_{level}": n for level, n in by_severity.items()})
    figures["bandit_files"] = sum(1 for _ in code.rglob("*.py"))
    log(f"bandit: {count} finding(s) at severity >= {gate.bandit_severity} and confidence >= "
        f"{gate.bandit_confidence}: {counted}")
    if count > gate.bandit_max_findings:
        return (f"bandit: {count} finding(s) at {gate.bandit_severity}+ severity (at most "
                f"{gate.bandit_max_findings}): {', '.join(c.replace(str(code) + '/', '') for c in counted[:3])}"), count
    return None, count


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
_HOST_ARG = re.compile(r"\bhost=(['\"])[^'\"]*\1", re.I)
_DOTTED_HOST = re.compile(r"\b(?:[a-z0-9-]+\.)+(?:org|com|net|io|dev|info)\b(?::\d+)?", re.I)


def scrub_addresses(text: str) -> str:
    """`text` without the URLs and host names a tool's error quotes (pip-audit names the
    vulnerability service and package index it could not reach): what wtx keeps — the ledger,
    the gate's log — names no outside service."""
    text = _URL.sub("<url>", text)
    text = _HOST_ARG.sub("host=<host>", text)
    return _DOTTED_HOST.sub("<host>", text)


def audit_outcome(report_text: str | None) -> tuple[str, int, str]:
    """("audited" | "not audited", known vulnerabilities, why not audited) from pip-audit's
    JSON report. A dependency pip-audit skipped (its database did not know it, or did not
    answer) makes the whole audit "not audited": pip-audit itself then says "No known
    vulnerabilities found" and exits 0, which must never read as passed."""
    if not report_text:
        return "not audited", 0, "pip-audit wrote no report"
    try:
        deps = json.loads(report_text).get("dependencies", [])
    except (ValueError, AttributeError):
        return "not audited", 0, "pip-audit's report is not JSON"
    if not deps:
        return "not audited", 0, "pip-audit listed no dependency"
    skipped = [d for d in deps if d.get("skip_reason")]
    if skipped:
        return "not audited", 0, (f"{len(skipped)} of {len(deps)} dependencies could not be looked up "
                                  f"(first: {skipped[0]['skip_reason']})")
    return "audited", sum(len(d.get("vulns", [])) for d in deps), ""


def _audit(work: Workspace, gate: SecurityGate, log: _Log, figures: dict[str, Any]) -> str | None:
    """pip-audit of the release's requirements.lock (hashed: no resolution, no install)."""
    report = work.dir / "audit.json"
    report.unlink(missing_ok=True)
    args = [sys.executable, "-m", "pip_audit", "--requirement", str(work.release.requirements),
            "--require-hashes", "--disable-pip", "--format", "json", "--output", str(report),
            "--progress-spinner", "off", "--timeout", "15",
            "--cache-dir", str(work.dir / "scratch" / "pip-audit-cache")]
    log(f"$ {' '.join(args)}")
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=gate.audit_timeout_s,
                             env=_clean_env(work.dir))
        log(scrub_addresses(res.stdout + res.stderr))
        text = report.read_text() if report.is_file() else None
        status, vulns, why = audit_outcome(text)
        if status == "not audited" and text is None:
            why = f"{why}: {_tail(res)}"
        why = scrub_addresses(why)
    except subprocess.TimeoutExpired:
        status, vulns, why = "not audited", 0, f"pip-audit did not finish within {gate.audit_timeout_s} s"
    figures["audit"] = status
    log(f"audit: {status}" + (f" ({why})" if why else f", {vulns} known vulnerabilities"))
    if status == "audited":
        figures["vulnerabilities"] = vulns
        if vulns > gate.max_vulnerabilities:
            return f"audit: {vulns} known vulnerabilities in the locked dependencies (at most {gate.max_vulnerabilities})"
        return None
    figures["audit_not_audited_because"] = why
    if gate.allow_unaudited:
        return None
    return f"audit: not audited ({why}); the spec does not allow it (allow_unaudited)"


def _outside_source(allowed: list[str]) -> str | None:
    """A loopback address that no allowed network contains (None: all of 127.0.0.0/8 is allowed)."""
    nets = [ipaddress.ip_network(n) for n in allowed]
    for candidate in ("127.0.0.2", "127.0.0.9", "127.1.2.3", "127.255.255.254"):
        addr = ipaddress.ip_address(candidate)
        if not any(addr in net for net in nets):
            return candidate
    return None


def check_smoke(work: Workspace, gate: SmokeGate, log: _Log) -> GateResult:
    door = work.backend.front_door(work.env.name)
    timings: dict[str, float] = {}
    for path in gate.paths:
        reply = fetch(door, path, timeout=gate.timeout_s)
        log(f"GET {path} -> {reply.status} ({reply.ms} ms)")
        timings[path] = reply.ms
        if reply.status != 200:
            return GateResult(gate.check, False, f"GET {path} answered {reply.status}", {"ms": timings})
    slowest = max(timings, key=lambda p: timings[p])
    figures = {"ms": timings, "slowest_ms": timings[slowest]}
    if timings[slowest] > gate.max_ms:
        return GateResult(gate.check, False, f"GET {slowest} took {timings[slowest]:.0f} ms (at most {gate.max_ms})",
                          figures)
    return GateResult(gate.check, True, f"{len(timings)} paths 200, slowest {slowest} {timings[slowest]:.0f} ms "
                      f"(at most {gate.max_ms})", figures)


CHECKS: dict[type, Any] = {
    LintGate: check_lint,
    UnitGate: check_unit,
    IntegrationMinimalGate: check_integration_minimal,
    SecurityGate: check_security,
    SmokeGate: check_smoke,
}


def _register_later_checks() -> None:
    # Checks in modules of their own (they use this module's Workspace, CheckError and _Log).
    from wtx.gate_integration import check_integration
    from wtx.gate_migrations import check_migrations
    from wtx.gate_performance import check_performance
    from wtx.gate_verify import check_verify
    from wtx.spec import IntegrationGate, MigrationsGate, PerformanceGate, VerifyGate

    CHECKS[MigrationsGate] = check_migrations
    CHECKS[IntegrationGate] = check_integration
    CHECKS[PerformanceGate] = check_performance
    CHECKS[VerifyGate] = check_verify


_register_later_checks()
