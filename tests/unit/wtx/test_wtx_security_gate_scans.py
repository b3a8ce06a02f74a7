"""stg's security gate, its two scans: bandit over the release's code and the audit of its
locked dependencies. "not audited" is never "passed": it fails the gate unless the spec's
allow_unaudited says otherwise, and the record says `audit: not audited` either way."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wtx import gates
from wtx.spec import SecurityGate, SpecError, load_spec


def _gate(**fields: Any) -> SecurityGate:
    return SecurityGate.model_validate({"check": "security", **fields})


def _log(lines: list[str]) -> Any:
    return lines.append


def _work(tmp_path: Path, files: dict[str, str] | None = None) -> Any:
    """A gate run's workspace as the scans use it: its directory and the release's app wheel
    and requirements.lock."""
    wheel = tmp_path / "release" / "wondertix-0-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in (files or {"shop/__init__.py": "VALUE = 1\n"}).items():
            zf.writestr(name, text)
        zf.writestr("wondertix-0.dist-info/METADATA", "Name: wondertix\n")
    lock = tmp_path / "release" / "requirements.lock"
    lock.write_text("django==5.2 --hash=sha256:" + "0" * 64 + "\n")
    (tmp_path / "run").mkdir()
    return SimpleNamespace(dir=tmp_path / "run", release=SimpleNamespace(app_wheel=wheel, requirements=lock))


# --------------------------------------------------------------------------------------------
# The audit


UNREACHABLE = {"dependencies": [{"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited: django (5.2)"}], "fixes": []}
CLEAN = {"dependencies": [{"name": "django", "version": "5.2", "vulns": []}], "fixes": []}
VULNERABLE = {"dependencies": [{"name": "django", "version": "5.2", "vulns": [{"id": "PYSEC-0000-1", "fix_versions": ["5.2.1"]}]}], "fixes": []}


def test_a_dependency_the_database_could_not_look_up_means_not_audited_never_clean():
    # pip-audit prints "No known vulnerabilities found" and exits 0 in this case.
    assert gates.audit_outcome(json.dumps(UNREACHABLE))[:2] == ("not audited", 0)
    assert "could not be looked up" in gates.audit_outcome(json.dumps(UNREACHABLE))[2]
    assert gates.audit_outcome(None)[0] == "not audited"          # no report at all (no network)
    assert gates.audit_outcome("Traceback ...")[0] == "not audited"
    assert gates.audit_outcome(json.dumps({"dependencies": []}))[0] == "not audited"
    assert gates.audit_outcome(json.dumps(CLEAN)) == ("audited", 0, "")
    assert gates.audit_outcome(json.dumps(VULNERABLE)) == ("audited", 1, "")


def _fake_pip_audit(monkeypatch, report: dict[str, Any] | None, stderr: str = "") -> None:
    def run(args, **kwargs):  # noqa: ANN001, ANN003, ANN202 - subprocess.run's
        if report is not None:
            Path(args[args.index("--output") + 1]).write_text(json.dumps(report))
        return subprocess.CompletedProcess(args, 0 if report else 1, "", stderr)

    monkeypatch.setattr(gates.subprocess, "run", run)


@pytest.mark.parametrize("report", [UNREACHABLE, None])
def test_not_audited_fails_the_gate_unless_the_spec_allows_it_and_is_recorded_as_not_audited(
        tmp_path, monkeypatch, report):
    work = _work(tmp_path)
    _fake_pip_audit(monkeypatch, report, stderr="requests.exceptions.ConnectionError: Name or service not known")
    figures: dict[str, Any] = {}
    problem = gates._audit(work, _gate(), _log([]), figures)
    assert problem is not None and problem.startswith("audit: not audited") and "allow_unaudited" in problem
    assert figures["audit"] == "not audited" and "vulnerabilities" not in figures

    figures = {}
    assert gates._audit(work, _gate(allow_unaudited=True), _log([]), figures) is None
    assert figures["audit"] == "not audited", "allowed, and still recorded as not audited"


def test_a_known_vulnerability_fails_the_gate_and_a_clean_audit_passes_it(tmp_path, monkeypatch):
    work = _work(tmp_path)
    _fake_pip_audit(monkeypatch, VULNERABLE)
    figures: dict[str, Any] = {}
    problem = gates._audit(work, _gate(allow_unaudited=True), _log([]), figures)
    assert problem == "audit: 1 known vulnerabilities in the locked dependencies (at most 0)"
    assert figures == {"audit": "audited", "vulnerabilities": 1}
    _fake_pip_audit(monkeypatch, CLEAN)
    figures = {}
    assert gates._audit(work, _gate(), _log([]), figures) is None
    assert figures == {"audit": "audited", "vulnerabilities": 0}


# --------------------------------------------------------------------------------------------
# bandit


INSECURE = """import subprocess


def run(command):
    return subprocess.call(command, shell=True)
"""


def test_bandit_fails_the_gate_on_a_high_severity_finding_in_the_releases_code(tmp_path):
    work = _work(tmp_path, {"shop/__init__.py": "", "shop/jobs.py": INSECURE})
    lines: list[str] = []
    figures: dict[str, Any] = {}
    problem, count = gates._bandit(work, _gate(), _log(lines), figures)
    assert count == 1 and figures["bandit_high"] == 1 and figures["bandit_files"] == 2
    assert problem is not None and problem.startswith("bandit: 1 finding(s) at high+ severity (at most 0)")
    assert "shop/jobs.py:5 B602" in problem


def test_bandit_passes_clean_code_and_a_reviewed_nosec(tmp_path):
    reviewed = INSECURE.replace("shell=True)", "shell=True)  # nosec B602 # the command is ours")
    work = _work(tmp_path, {"shop/__init__.py": "", "shop/jobs.py": reviewed})
    figures: dict[str, Any] = {}
    assert gates._bandit(work, _gate(), _log([]), figures) == (None, 0)
    assert figures["bandit_high"] == 0


def test_bandit_levels_count_findings_at_or_above_both():
    report = {"results": [
        {"issue_severity": "HIGH", "issue_confidence": "LOW", "filename": "a.py", "line_number": 1, "test_id": "B1"},
        {"issue_severity": "HIGH", "issue_confidence": "HIGH", "filename": "b.py", "line_number": 2, "test_id": "B2"},
        {"issue_severity": "MEDIUM", "issue_confidence": "HIGH", "filename": "c.py", "line_number": 3, "test_id": "B3"},
        {"issue_severity": "LOW", "issue_confidence": "HIGH", "filename": "d.py", "line_number": 4, "test_id": "B4"},
    ]}
    assert gates.bandit_count(report, "high", "medium") == (1, {"low": 1, "medium": 1, "high": 2}, ["b.py:2 B2"])
    assert gates.bandit_count(report, "medium", "low")[0] == 3
    assert gates.bandit_count(report, "low", "high")[0] == 3


def test_bandit_that_cannot_run_fails_the_gate(tmp_path, monkeypatch):
    work = _work(tmp_path)
    monkeypatch.setattr(gates.subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(
        args, 1, "", "No module named bandit"))
    with pytest.raises(gates.CheckError, match="bandit wrote no report"):
        gates._bandit(work, _gate(), _log([]), {})


# --------------------------------------------------------------------------------------------
# The spec


def test_not_audited_fails_by_default_and_the_checked_in_stg_allows_it_in_writing(spec):
    assert _gate().allow_unaudited is False
    stg = spec.env("stg").gate("security")
    assert stg.allow_unaudited is True and stg.max_vulnerabilities == 0
    assert stg.bandit_severity == "high" and stg.bandit_max_findings == 0
    text = Path(spec.path).read_text()
    assert "not audited" in text[:text.index("allow_unaudited = true")], "the allowance carries its reason"


def test_bandit_levels_are_named_levels(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["gates"][0]["bandit_severity"] = "severe"
    with pytest.raises(SpecError, match="bandit_severity"):
        load_spec(write_spec(raw_spec))


def test_an_unreachable_audit_service_is_not_named_in_what_wtx_keeps():
    # What urllib3 and pip-audit say when the service cannot be reached (names made up here).
    said = ("ConnectionError: HTTPSConnectionPool(host='vulns.example.dev', port=443): Max retries exceeded "
            "with url: /v1/query (Caused by NameResolutionError: Failed to resolve 'index.example.org:443'); "
            "see https://index.example.org/simple/django/ for requirements.lock")
    scrubbed = gates.scrub_addresses(said)
    assert "example" not in scrubbed and "https://" not in scrubbed
    assert "requirements.lock" in scrubbed and "Max retries exceeded" in scrubbed  # the cause stays readable
