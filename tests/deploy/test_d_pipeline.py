"""`wtx pipeline run` for real: one release through dev → stg → prd with real gates on the
live stack, stopped for the approval; and a release with a regression stopped in dev.

The spec is the checked-in one with smaller thresholds where the real ones take minutes (the
whole unit suite, mypy) and without stg's declared-but-unbuilt checks (they fail "not
implemented", so with them nothing would reach prd): the gates themselves run unchanged.
"""

from __future__ import annotations

import json
import time
import tomllib
from typing import Any

import pytest
from pipeline_runs import last_gates, run_logged

from wtx import ledger, pipeline
from wtx.spec import Spec, parse_spec

pytestmark = pytest.mark.slow
VERIFY_WINDOW_S = 3


def _quick_spec(stack) -> Spec:
    raw = tomllib.loads(stack.spec.path.read_text())
    envs = raw["environments"]
    for gate in envs["dev"]["gates"]:
        if gate["check"] == "lint":
            gate["tools"] = ["ruff"]  # mypy takes a minute on two cores; ruff looks at every file
        if gate["check"] == "unit":
            gate.update(paths=["tests/unit/wtx/test_wtx_spec.py"], workers=1)
    envs["stg"]["gates"] = [g for g in envs["stg"]["gates"] if g["check"] in ("security", "smoke")]
    for gate in envs["prd"]["gates"]:
        if gate["check"] == "verify":
            gate["window_s"] = VERIFY_WINDOW_S  # the checked-in window, shortened
    return parse_spec(raw, stack.spec.path)


def _run(stack, spec: Spec, release: str) -> tuple[pipeline.Outcome, list[str]]:
    outcome, lines = run_logged(spec, stack.backend.root, stack.var_dir, stack.builds.clone, release)
    print("\n" + "\n".join(lines))
    return outcome, lines


def _gates(stack, env: str, release: str) -> dict[str, dict[str, Any]]:
    return last_gates(stack.var_dir, env, release)


def test_pipeline_carries_one_release_through_dev_and_stg_waits_for_approval_then_reaches_prd(stack):
    rid = stack.builds.wait("candidate")
    spec = _quick_spec(stack)
    started = time.monotonic()
    first, _ = _run(stack, spec, rid)
    to_approval = round(time.monotonic() - started, 1)

    assert first.code == pipeline.WAITING, first
    assert first.stopped_at == "prd" and f"wtx approve prd {rid} --by NAME" in first.reason
    running = {s.env: s.release for s in stack.backend.status()}
    assert running["dev"] == running["stg"] == rid and running["prd"] != rid
    dev, stg = _gates(stack, "dev", rid), _gates(stack, "stg", rid)
    assert set(dev) == {"lint", "unit", "integration-minimal"} and all(r["passed"] for r in dev.values()), dev
    assert dev["unit"]["figures"]["passed"] > 10 and dev["unit"]["figures"]["failed"] == 0
    assert dev["integration-minimal"]["figures"]["events"] >= 1
    assert set(stg) == {"security", "smoke"} and all(r["passed"] for r in stg.values()), stg
    # stg's firewall refused a source outside its allowed networks; no credentials, no entry.
    assert stg["security"]["figures"]["firewall_status_from_outside"] == 403
    assert stg["security"]["figures"]["status_without_credentials"] == 401
    for rec in (*dev.values(), *stg.values()):
        assert (stack.var_dir / rec["log"]).is_file() and rec["actor"] and rec["seconds"] >= 0

    pipeline.approve(spec, stack.var_dir, "prd", rid, "the deploy tests")
    started = time.monotonic()
    second, lines = _run(stack, spec, rid)
    to_prd = round(time.monotonic() - started, 1)
    stack.figures.update({"pipeline_seconds_to_approval": to_approval, "pipeline_seconds_after_approval": to_prd})

    assert second.code == pipeline.DONE, second
    running = {s.env: s.release for s in stack.backend.status()}
    assert running["prd"] == running["bak"] == rid
    prd = _gates(stack, "prd", rid)
    assert prd["smoke"]["passed"] is True and prd["verify"]["passed"] is True, prd
    # prd's own /metrics counted the window's requests (the smoke traffic at least), no 5xx.
    verify = prd["verify"]["figures"]
    assert verify["requests"] >= sum(verify["smoke_requests"].values()) > 0 and verify["server_errors"] == 0
    assert verify["window_s"] >= VERIFY_WINDOW_S and verify["p95_ms"] is not None
    stack.figures["prd_verify_seconds"] = prd["verify"]["seconds"]
    promoted = [r for r in ledger.read(stack.var_dir, "prd") if r["event"] == pipeline.PROMOTE][-1]
    assert promoted["release"] == rid and promoted["approved_by"] == "the deploy tests"
    assert ledger.verify(stack.var_dir).ok
    history = stack.wtx("history", "prd", "--json")
    assert history.returncode == 0, history.stderr
    events = [(r["event"], r.get("release")) for r in json.loads(history.stdout)]
    assert events.index(("approve", rid)) < events.index(("promote", rid)) < events.index(("deploy", rid))


def test_a_release_with_a_regression_is_stopped_by_the_unit_gate_in_dev_and_never_reaches_stg(stack):
    rid = stack.builds.wait("failing_unit")
    spec = _quick_spec(stack)
    stg_before = {s.env: s.release for s in stack.backend.status()}["stg"]

    outcome, _ = _run(stack, spec, rid)

    assert outcome.code == pipeline.GATE_FAILED and outcome.stopped_at == "dev", outcome
    assert outcome.reason.startswith("gate unit failed in dev: ")
    assert "first: tests/unit/wtx/test_wtx_spec.py::test_" in outcome.reason
    unit = _gates(stack, "dev", rid)["unit"]
    assert unit["passed"] is False and unit["figures"]["failed"] >= 1
    assert "integration-minimal" not in _gates(stack, "dev", rid)  # stopped at the first failure
    assert {s.env: s.release for s in stack.backend.status()}["stg"] == stg_before
    refused = stack.wtx("promote", "dev", "stg", rid)
    assert refused.returncode == 1 and f"gate unit of dev failed for release {rid}" in refused.stderr
    assert stack.wtx("deploy", "stg", rid).returncode == 1
