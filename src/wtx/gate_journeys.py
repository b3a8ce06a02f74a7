"""The browser journeys of the `integration` gate: what a patron and an usher do, in a real
browser (Playwright driving Debian's chromium, headless), against the release.

As the integration suites (wtx.gate_integration.run_suites): the checkout's journeys at the
release's commit (a release ships no tests; the checkout is proven byte-identical to the
release's wheel first), run by an interpreter whose path is the release as installed, against
an empty scratch database in the environment's own PostgreSQL cluster
(`WONDERTIX_TEST_DATABASE_URL`: the journeys' fixtures migrate it and use it instead of a test
database of their own; dropped afterwards, pass or fail). The app under the browser is
pytest-django's live server on a free loopback port.

One browser run at a time on a machine: the journeys take the lock every browser run takes
(BROWSER_LOCK), waiting at most the journeys' timeout for it. A run stops after
`journeys_max_failures` + 1 failures (a failing journey waits out the browser's timeouts:
the rest would only cost minutes). More failures than allowed, or none passing, fail the gate,
naming the first failing journey.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from wtx.backends import DeployError
from wtx.spec import IntegrationGate

BROWSER_LOCK = Path("/tmp/wtx-e2e.lock")  # noqa: S108 - the machine-wide lock every browser run takes


def run_browser_pytest(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """pytest in a session of its own, so a timeout stops the browser it started as well."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        raise subprocess.TimeoutExpired(args, timeout, out, err) from None
    return proc.returncode, out, err


@contextmanager
def browser_lock(timeout: float, log: Any) -> Iterator[float]:
    """Hold BROWSER_LOCK (waiting at most `timeout` seconds); yields the seconds waited."""
    from wtx.gates import CheckError

    started = time.monotonic()
    with open(BROWSER_LOCK, "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started > timeout:
                    raise CheckError(f"another browser run held {BROWSER_LOCK} for {timeout} s: the journeys did not "
                                     "run") from None
                time.sleep(1)
        waited = round(time.monotonic() - started, 1)
        if waited >= 1:
            log(f"waited {waited} s for {BROWSER_LOCK}")
        try:
            yield waited
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def first_failure(stdout: str, report: Path) -> str | None:
    """The first failing journey's pytest id: from pytest's summary, else from the report."""
    found = re.search(r"^(?:FAILED|ERROR) (\S+)", stdout, re.M)
    if found:
        return found.group(1)
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own pytest's report
        if case.find("failure") is not None or case.find("error") is not None:
            return f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name', '')}"
    return None


def run_journeys(work: Any, gate: IntegrationGate, log: Any) -> tuple[dict[str, Any], list[str]]:
    """The browser journeys on a scratch database of the environment's cluster. Returns
    (figures, problems)."""
    from wtx.gates import CheckError, _clean_env, junit_totals

    python, checkout = work.python(), work.checkout()
    report = work.dir / "journeys.xml"
    report.unlink(missing_ok=True)
    args = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
            f"--maxfail={gate.journeys_max_failures + 1}", *gate.journeys]
    started = time.monotonic()
    # Chromium's singleton socket lives in TMPDIR and a unix socket path holds at most 107
    # bytes: under var/gates/<env>/<release>/<run>/ it does not fit ("Socket path too long").
    short_tmp = Path(tempfile.mkdtemp(prefix="wtx-journeys-"))
    try:
        with browser_lock(gate.journeys_timeout_s, log) as waited, \
                work.backend.scratch_database(work.env.name, progress=log) as url:
            env = {**_clean_env(work.dir), "TMPDIR": str(short_tmp), "WONDERTIX_TEST_DATABASE_URL": url,
                   "WONDERTIX_E2E_ARTIFACTS": str(work.dir / "journeys")}
            log(f"$ {' '.join(args)}  (WONDERTIX_TEST_DATABASE_URL = a scratch database of {work.env.name}'s cluster)")
            try:
                code, out, err = run_browser_pytest(args, cwd=checkout, env=env, timeout=gate.journeys_timeout_s)
            except subprocess.TimeoutExpired as exc:
                log(str(exc.stdout or "")[-30000:])
                raise CheckError(f"browser journeys did not finish within {gate.journeys_timeout_s} s") from None
    except DeployError as exc:
        raise CheckError(str(exc)) from None
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)
    log(out[-30000:])
    log(err[-5000:])
    if not report.is_file():
        raise CheckError(f"the browser journeys wrote no report (exit {code})")
    totals = junit_totals(report)
    figures = {"journeys_passed": totals["passed"], "journeys_failed": totals["failed"],
               "journeys_skipped": totals["skipped"], "journeys_seconds": round(time.monotonic() - started, 1),
               "journeys_lock_wait_s": waited, "journeys": gate.journeys,
               "journeys_from": f"checkout at {work.release.commit[:12]}",
               "journeys_artifacts": work.relative(work.dir / "journeys")}
    problems = []
    if totals["failed"] > gate.journeys_max_failures:
        first = first_failure(out, report)
        problems.append(f"browser journeys: {totals['passed']} passed, {totals['failed']} failed (at most "
                        f"{gate.journeys_max_failures})" + (f"; first: {first}" if first else ""))
    elif totals["passed"] == 0:
        problems.append(f"browser journeys: none passed ({totals['skipped']} skipped): nothing was checked")
    return figures, problems
