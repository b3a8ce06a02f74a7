"""The browser journeys in stg's `integration` gate: after the race and the suites, on a
scratch database of their own, under the machine's browser lock; a failing journey stops the
release and is named. Here the journeys' pytest is faked (its JUnit report says what the test
wants); the real journeys in stg's gate are in tests/deploy/test_e_stg_journeys.py."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_wtx_integration_gate import R1, StgWithScratch, box  # noqa: F401 - box is a fixture
from test_wtx_pipeline import fake_release
from wtx_testing import ROOT

from wtx import gate_integration, gate_journeys, gates
from wtx import release as releases

JOURNEY = "tests/e2e/test_storefront_journey.py::test_patron_buys_two_tickets_then_a_declined_card_changes_nothing"


def test_stg_declares_the_browser_journeys_in_its_integration_gate_and_they_exist(spec):
    gate = spec.env("stg").gate("integration")
    assert gate.journeys, "stg's integration gate runs the browser journeys"
    for path in gate.journeys:
        assert (ROOT / path).exists() and path.startswith("tests/e2e"), path
    assert gate.journeys_max_failures == 0


@pytest.fixture
def journeys(monkeypatch, tmp_path):
    """Both pytest runs faked: the suites pass; the journeys' report says what `outcome` holds."""
    outcome: dict[str, Any] = {"cases": ["passed"] * 5, "stdout": "", "calls": []}

    def suites(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        report = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
        Path(report).write_text('<testsuites><testsuite tests="3" failures="0" errors="0" skipped="0"/></testsuites>')
        return subprocess.CompletedProcess(args, 0, "", "")

    def browser(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
        outcome["calls"].append((args, env, timeout))
        report = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
        cases = "".join(
            f'<testcase classname="tests.e2e.test_storefront_journey" name="test_{i}">'
            + ("<failure/>" if c == "failed" else "<skipped/>" if c == "skipped" else "") + "</testcase>"
            for i, c in enumerate(outcome["cases"]))
        n = outcome["cases"].count
        Path(report).write_text(f'<testsuites><testsuite tests="{len(outcome["cases"])}" failures="{n("failed")}" '
                                f'errors="0" skipped="{n("skipped")}">{cases}</testsuite></testsuites>')
        return (1 if n("failed") else 0), outcome["stdout"], ""

    monkeypatch.setattr(gate_integration, "run_pytest", suites)
    monkeypatch.setattr(gate_journeys, "run_browser_pytest", browser)
    monkeypatch.setattr(gate_journeys, "BROWSER_LOCK", tmp_path / "browser.lock")
    monkeypatch.setattr(gates.Workspace, "checkout", lambda self: ROOT)
    monkeypatch.setattr(gates.Workspace, "python", lambda self: Path("/usr/bin/python3"))
    return outcome


def _gate(spec, var_dir, books, **thresholds):
    fake_release(var_dir, R1)
    backend = StgWithScratch(spec, var_dir, books)
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("integration").model_copy(update=thresholds)
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        return gates.run_check(work, gate), backend, gate


def test_the_journeys_run_after_the_suites_on_a_scratch_database_of_their_own(spec, var_dir, box, journeys):  # noqa: F811
    result, backend, gate = _gate(spec, var_dir, box)
    print(f"\n{result.summary} {result.figures}")
    assert result.passed, result.summary
    assert backend.scratch == ["made", "dropped", "made", "dropped"]  # the suites', then the journeys'
    args, env, timeout = journeys["calls"][0]
    assert args[-len(gate.journeys):] == gate.journeys and timeout == gate.journeys_timeout_s
    assert f"--maxfail={gate.journeys_max_failures + 1}" in args
    assert env["WONDERTIX_TEST_DATABASE_URL"].endswith("/wondertix_stg_integration")
    assert "DATABASE_URL" not in env and "DISPLAY" not in env  # nothing of the operator's shell
    # Chromium's singleton socket goes in TMPDIR: a unix socket path holds at most 107 bytes
    assert len(env["TMPDIR"] + "/org.chromium.Chromium.XXXXXX/SingletonSocket") < 108
    assert not Path(env["TMPDIR"]).exists(), "the short temporary directory is removed afterwards"
    assert result.figures | {"journeys_passed": 5, "journeys_failed": 0, "journeys_skipped": 0} == result.figures
    assert result.figures["journeys_from"].startswith("checkout at ") and result.figures["journeys_seconds"] >= 0
    assert result.summary.endswith("; journeys 5 passed, 0 failed, 0 skipped in "
                                   f"{result.figures['journeys_seconds']} s")


def test_a_failing_journey_fails_the_gate_naming_it(spec, var_dir, box, journeys):  # noqa: F811
    journeys.update(cases=["passed", "failed"], stdout=f"FAILED {JOURNEY} - TimeoutError: locator.click\n")
    result, backend, _ = _gate(spec, var_dir, box)
    assert not result.passed and backend.scratch == ["made", "dropped", "made", "dropped"]
    assert result.summary == f"browser journeys: 1 passed, 1 failed (at most 0); first: {JOURNEY}"
    assert result.figures["journeys_failed"] == 1


def test_without_pytests_summary_the_failing_journey_is_named_from_the_report(spec, var_dir, box, journeys):  # noqa: F811
    journeys.update(cases=["passed", "passed", "failed"])
    result, _, _ = _gate(spec, var_dir, box)
    assert result.summary.endswith("first: tests/e2e/test_storefront_journey.py::test_2")


def test_journeys_allowed_to_fail_pass_within_their_threshold(spec, var_dir, box, journeys):  # noqa: F811
    journeys.update(cases=["passed", "failed"])
    result, _, _ = _gate(spec, var_dir, box, journeys_max_failures=1)
    assert result.passed, result.summary


def test_journeys_that_all_skip_checked_nothing_and_fail_the_gate(spec, var_dir, box, journeys):  # noqa: F811
    journeys.update(cases=["skipped", "skipped"])
    result, _, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.summary == "browser journeys: none passed (2 skipped): nothing was checked"


def test_journeys_do_not_run_when_the_race_already_failed(spec, var_dir, box, journeys):  # noqa: F811
    box.locked = False  # an oversell: the release is stopped already
    result, _, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.summary.startswith("oversold")
    assert journeys["calls"] == [] and "journeys_passed" not in result.figures


def test_the_browser_lock_is_waited_for_and_a_held_lock_fails_after_the_timeout(tmp_path, monkeypatch):
    lock = tmp_path / "browser.lock"
    monkeypatch.setattr(gate_journeys, "BROWSER_LOCK", lock)
    logged: list[str] = []
    with open(lock, "a") as other:  # another browser run holds it
        fcntl.flock(other, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(gates.CheckError, match=r"another browser run held .*browser.lock for 1.5 s"):
            with gate_journeys.browser_lock(1.5, logged.append):
                pass
        assert 1.5 <= time.monotonic() - started < 10
    with gate_journeys.browser_lock(1.5, logged.append) as waited:  # released: taken at once
        assert waited < 1.5


def test_a_journey_run_past_its_timeout_is_stopped_with_the_browser_it_started(tmp_path):
    pidfile = tmp_path / "browser.pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    with pytest.raises(subprocess.TimeoutExpired):
        gate_journeys.run_browser_pytest(["sh", "-c", script], cwd=tmp_path, env={"PATH": gates.SYSTEM_PATH},
                                         timeout=1)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "the process pytest started outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.is_file() and stat.read_text().split(")")[-1].split()[0] != "Z"
