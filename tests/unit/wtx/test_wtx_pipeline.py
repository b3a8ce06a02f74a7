"""The promotion rules: stg and prd take a release only through promotion, promotion only with
the source's passing gates (and prd's approval), and every gate result is in the ledger.

The backend is a fake that keeps the same rule the real deploy keeps (it asks
`pipeline.deploy_refusal`); the checks are replaced by a table of results, so these tests
prove the rules, not the checks (tests/deploy runs real ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.loopback_http import serving
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli, gates, ledger, pipeline
from wtx.backends import DeployError, DeployResult
from wtx.pipeline import GateResult, PipelineError
from wtx.spec import Spec, load_spec

R1 = "aaaa11112222"
R2 = "bbbb33334444"


def fake_release(var_dir: Path, rid: str, commit: str = "c" * 40) -> None:
    """A release as `wtx releases` sees it (a manifest); nothing here installs it."""
    path = var_dir / "releases" / rid
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({
        "id": rid, "commit": commit, "dirty": False, "built_at": f"2026-01-01T00:00:0{len(list(path.parent.iterdir()))}Z",
        "files": {}, "size_bytes": 0, "app": {"wheel": "wheelhouse/x.whl"},
    }))
    ledger.append(var_dir, ledger.BUILD, release=rid, commit=commit)


class FakeBackend:
    """Environments that run what they were last given; deploy keeps the promotion rule."""

    def __init__(self, spec: Spec, var_dir: Path) -> None:
        self.spec, self.var_dir = spec, var_dir
        self.running: dict[str, str] = {}
        self.previous: dict[str, str] = {}
        self.calls: list[tuple[str, ...]] = []

    def active_release(self, env: str) -> str | None:
        return self.running.get(env)

    def up(self, envs: list[str] | None = None, progress: Any = None) -> list[str]:
        for name in envs or self.spec.names():
            env = self.spec.env(name)
            gated = self.spec.primary_for(env)
            if gated.promoted_only:
                rid = pipeline.promoted_release(self.var_dir, gated.name)
                if rid is None or pipeline.deploy_refusal(self.spec, self.var_dir, gated.name, rid):
                    continue
            else:
                rid = sorted((self.var_dir / "releases").iterdir())[-1].name
            self.running[name] = rid
            self.calls.append(("up", name, rid))
        return []

    def deploy(self, env: str, release_id: str | None = None, progress: Any = None, **options: Any) -> DeployResult:
        assert release_id is not None
        refusal = pipeline.deploy_refusal(self.spec, self.var_dir, env, release_id)
        if refusal:
            raise DeployError(refusal)
        self.calls.append(("deploy", env, release_id))
        if self.running.get(env) == release_id:
            return DeployResult(env, release_id, release_id, "blue", 0.0, action="unchanged")
        if env in self.running:
            self.previous[env] = self.running[env]
        self.running[env] = release_id
        return DeployResult(env, release_id, self.previous.get(env), "blue", 0.1)

    def rollback(self, env: str, progress: Any = None) -> DeployResult:
        self.calls.append(("rollback", env))
        back, self.running[env] = self.running[env], self.previous[env]
        return DeployResult(env, self.running[env], back, "green", 0.1, action="rollback")

    def db_seed(self, env: str, progress: Any = None) -> None:
        self.calls.append(("db_seed", env))

    def deployed(self, env: str) -> list[str]:
        return [c[2] for c in self.calls if c[0] in ("deploy", "up") and c[1] == env]


@pytest.fixture
def short_spec(raw_spec, write_spec) -> Spec:
    """The real spec with stg's not-yet-built checks left out, so a release can reach prd."""
    stg = raw_spec["environments"]["stg"]
    stg["gates"] = [g for g in stg["gates"] if g["check"] in ("security", "smoke")]
    return load_spec(write_spec(raw_spec))


@pytest.fixture
def fake(short_spec, var_dir) -> FakeBackend:
    for rid in (R1, R2):
        fake_release(var_dir, rid)
    return FakeBackend(short_spec, var_dir)


@pytest.fixture
def outcomes(monkeypatch) -> dict[tuple[str, str], bool]:
    """(env, check) -> passed. Every check not listed passes."""
    table: dict[tuple[str, str], bool] = {}

    def run_check(work: gates.Workspace, gate: Any) -> GateResult:
        ok = table.get((work.env.name, gate.check), True)
        return GateResult(gate.check, ok, f"{gate.check} {'ok' if ok else 'found 2 problems'}",
                          {"problems": 0 if ok else 2}, 0.01, f"gates/{work.env.name}/{gate.check}.log")

    monkeypatch.setattr(gates, "run_check", run_check)
    return table


def record_all(var_dir: Path, spec: Spec, env: str, rid: str, failing: str = "") -> None:
    run = pipeline.new_run_id()
    for gate in spec.env(env).gates:
        ok = gate.check != failing
        pipeline.record_gate(var_dir, env, rid, GateResult(gate.check, ok, "ok" if ok else "2 failed"), run=run)


@pytest.fixture
def cli_run(var_dir, monkeypatch, fake, short_spec):
    monkeypatch.setattr(cli, "_backend", lambda ctx: fake)
    runner = CliRunner()
    root = short_spec.path.parent.parent

    def invoke(*args: str):
        return runner.invoke(cli.app, ["--root", str(root), "--var-dir", str(var_dir), *args])

    return invoke


# --------------------------------------------------------------------------------------------


def test_deploy_of_a_release_never_promoted_to_stg_or_prd_is_refused_and_dev_takes_any_build(cli_run, fake):
    for env in ("stg", "prd"):
        result = cli_run("deploy", env, R1)
        assert result.exit_code == 1
        assert f"{env} accepts releases only through promotion: release {R1} was never promoted to {env}" in result.stderr
    assert fake.calls == []
    assert cli_run("deploy", "dev", R1).exit_code == 0
    assert fake.calls == [("deploy", "dev", R1)]
    # The same rule holds for the backend's deploy, whoever calls it.
    with pytest.raises(DeployError, match="only through promotion"):
        fake.deploy("prd", R1)


def test_promote_without_the_sources_passing_gates_is_refused_naming_the_failed_gate(fake, short_spec, var_dir, cli_run):
    fake.running["dev"] = R1
    with pytest.raises(PipelineError, match=f"release {R1} has no gate results in dev"):
        pipeline.promote(short_spec, fake, "dev", "stg", R1)
    record_all(var_dir, short_spec, "dev", R1, failing="unit")
    result = cli_run("promote", "dev", "stg", R1)
    assert result.exit_code == 1
    assert f"refusing to promote {R1} from dev to stg: gate unit of dev failed for release {R1}: 2 failed" in result.stderr
    assert fake.deployed("stg") == []
    refused = ledger.read(var_dir, "stg")[-1]
    assert refused["event"] == pipeline.PROMOTE_REFUSED and "gate unit" in refused["reason"]
    # A later run in which every gate passed lets it through; it is the newest run that counts.
    record_all(var_dir, short_spec, "dev", R1)
    fake.running["stg"] = R2  # stg is up (on an older release)
    assert cli_run("promote", "dev", "stg").exit_code == 0  # default: the release dev runs
    assert fake.deployed("stg") == [R1]
    record_all(var_dir, short_spec, "dev", R1, failing="lint")
    with pytest.raises(DeployError, match="gate lint of dev failed"):
        fake.deploy("stg", R1)  # the promotion no longer holds


def test_promotion_follows_promote_from(fake, short_spec, var_dir):
    record_all(var_dir, short_spec, "dev", R1)
    with pytest.raises(PipelineError, match="prd is promoted from stg, not from dev"):
        pipeline.promote(short_spec, fake, "dev", "prd", R1)
    with pytest.raises(PipelineError, match="bak is prd's backup"):
        pipeline.promote(short_spec, fake, "prd", "bak", R1)


def test_promote_into_prd_without_an_approval_is_refused_then_the_approval_lets_it_in(fake, short_spec, var_dir, cli_run):
    record_all(var_dir, short_spec, "stg", R1)
    result = cli_run("promote", "stg", "prd", R1)
    assert result.exit_code == 1
    assert f"prd needs an approval for release {R1}: `wtx approve prd {R1} --by NAME`" in result.stderr
    assert cli_run("approve", "stg", R1, "--by", "Ada").exit_code == 1  # stg needs none
    assert cli_run("approve", "prd", R1, "--by", "  ").exit_code == 1
    approved = cli_run("approve", "prd", R1[:6], "--by", "Ada Lovelace")
    assert approved.exit_code == 0, approved.output
    approval = ledger.read(var_dir, "prd")[-1]
    assert (approval["event"], approval["release"], approval["by"]) == ("approve", R1, "Ada Lovelace")
    assert cli_run("promote", "stg", "prd", R1).exit_code == 0
    assert fake.deployed("prd") == [R1]  # never up before: promote brought it up (with bak)
    assert fake.running.get("bak") == R1
    promoted = [r for r in ledger.read(var_dir, "prd") if r["event"] == pipeline.PROMOTE]
    assert promoted[-1]["approved_by"] == "Ada Lovelace" and promoted[-1]["source"] == "stg"


def test_an_edited_ledger_stops_every_promotion(fake, short_spec, var_dir):
    record_all(var_dir, short_spec, "dev", R1)
    path = ledger.ledger_path(var_dir)
    path.write_text(path.read_text().replace('"passed": true', '"passed": false', 1))
    with pytest.raises(PipelineError, match="the ledger was changed"):
        pipeline.promote(short_spec, fake, "dev", "stg", R1)


def test_gate_results_are_recorded_in_the_ledger_with_figures_duration_log_who_and_when(fake, short_spec, var_dir, outcomes):
    fake.running["dev"] = R1
    outcomes[("dev", "unit")] = False
    run = pipeline.run_gates(short_spec, fake, ROOT, "dev", R1)
    assert [r.check for r in run.results] == ["lint", "unit"] and run.not_run == ["integration-minimal"]
    records = [r for r in ledger.read(var_dir, "dev") if r["event"] == pipeline.GATE]
    assert [(r["check"], r["passed"]) for r in records] == [("lint", True), ("unit", False)]
    for rec in records:
        assert rec["release"] == R1 and rec["run"] == run.run
        assert {"figures", "seconds", "log", "actor", "ts", "detail"} <= set(rec)
    assert records[1]["figures"] == {"problems": 2} and records[1]["detail"] == "unit found 2 problems"
    # Gates check the release as installed: not one the environment does not run.
    with pytest.raises(PipelineError, match=f"dev does not run release {R2}"):
        pipeline.run_gates(short_spec, fake, ROOT, "dev", R2)


def test_a_release_that_fails_a_stg_gate_never_reaches_prd(fake, short_spec, var_dir, outcomes):
    outcomes[("stg", "security")] = False
    outcome = pipeline.run_pipeline(short_spec, fake, ROOT, release_id=R1)
    assert outcome.code == pipeline.GATE_FAILED and outcome.stopped_at == "stg"
    assert outcome.reason == "gate security failed in stg: security found 2 problems"
    assert fake.deployed("stg") == [R1] and fake.deployed("prd") == []
    # An approval does not open the way: stg's record is what counts.
    pipeline.approve(short_spec, var_dir, "prd", R1, "Ada")
    with pytest.raises(PipelineError, match="gate security of stg failed"):
        pipeline.promote(short_spec, fake, "stg", "prd", R1)
    with pytest.raises(DeployError, match="never promoted to prd"):
        fake.deploy("prd", R1)
    assert fake.deployed("prd") == []


def test_the_pipeline_waits_for_an_approval_then_carries_the_same_release_to_prd(fake, short_spec, var_dir, outcomes, cli_run):
    result = cli_run("pipeline", "run", "--release", R1)
    assert result.exit_code == pipeline.WAITING
    assert f"pipeline stopped at prd: waiting for approval: `wtx approve prd {R1} --by NAME`" in result.stderr
    assert "✓ passed dev lint" in result.stderr and "✓ passed stg smoke" in result.stderr
    assert fake.deployed("prd") == []
    assert cli_run("approve", "prd", R1, "--by", "Ada").exit_code == 0
    done = cli_run("pipeline", "run", "--release", R1, "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["release"] == R1 and summary["code"] == 0
    assert [s["gates"] for s in summary["stages"]] == ["passed earlier", "passed earlier", "passed"]
    assert fake.deployed("dev")[-1] == fake.deployed("stg")[-1] == fake.deployed("prd")[-1] == R1
    checks = [(r["env"], r["check"], r["passed"]) for r in ledger.read(var_dir) if r["event"] == "gate"]
    assert ("prd", "smoke", True) in checks


def test_a_failed_verification_in_prd_rolls_prd_back(fake, short_spec, var_dir, outcomes):
    for rid in (R1, R2):
        pipeline.approve(short_spec, var_dir, "prd", rid, "Ada")
    assert pipeline.run_pipeline(short_spec, fake, ROOT, release_id=R1).code == pipeline.DONE
    outcomes[("prd", "smoke")] = False
    outcome = pipeline.run_pipeline(short_spec, fake, ROOT, release_id=R2)
    assert outcome.code == pipeline.ROLLED_BACK and outcome.stopped_at == "prd"
    assert f"prd was rolled back to {R1}" in outcome.reason
    assert fake.running["prd"] == R1 and ("rollback", "prd") in fake.calls
    assert ledger.read(var_dir, "prd")[-1]["event"] == pipeline.VERIFICATION_ROLLBACK


def test_every_check_the_spec_accepts_is_built():
    from wtx.spec import GATE_MODELS

    assert set(GATE_MODELS.values()) <= set(gates.CHECKS), "a check the spec accepts has no implementation"


def test_the_firewall_check_comes_from_a_loopback_address_the_environment_does_not_allow():
    assert gates._outside_source(["127.0.0.1/32"]) == "127.0.0.2"
    assert gates._outside_source(["127.0.0.0/8"]) is None  # cannot be verified here: the gate fails
    with pytest.raises(gates.CheckError, match="not a loopback address"):
        gates.fetch(gates.FrontDoor(host="stg.example", port=80, address="192.0.2.1"), "/healthz")


def test_lint_and_unit_refuse_a_release_whose_wheel_is_not_its_commit(tmp_path):
    import zipfile

    from wtx.release import Release

    src = tmp_path / "src" / "wondertix"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("VERSION = 1\n")
    wheel = tmp_path / "wondertix-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("wondertix/__init__.py", "VERSION = 2\n")
        zf.writestr("wondertix-0.1.0.dist-info/METADATA", "Name: wondertix\n")
    rel = Release(id=R1, path=tmp_path, manifest={"app": {"wheel": wheel.name}, "commit": "c" * 40})
    assert gates._wheel_matches_source(rel, tmp_path / "src") == ("wondertix/__init__.py differs", 0)
    (src / "__init__.py").write_text("VERSION = 2\n")
    assert gates._wheel_matches_source(rel, tmp_path / "src") == ("", 1)
    dirty = Release(id=R1, path=tmp_path, manifest={**rel.manifest, "dirty": True})
    with pytest.raises(gates.CheckError, match="built from uncommitted changes"):
        gates._checkout_at_commit(ROOT, dirty, tmp_path / "checkout")


def test_wtx_gate_prints_one_line_per_gate_and_exits_1_naming_the_failed_gate(cli_run, fake, outcomes, var_dir):
    fake.running["dev"] = R1
    outcomes[("dev", "unit")] = False
    result = cli_run("gate", "dev", R1)
    assert result.exit_code == 1
    assert "✓ passed dev lint" in result.stderr and "✗ FAILED dev unit" in result.stderr
    assert "not run (after the first failure): integration-minimal" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == f"wtx: error: gate unit failed in dev for {R1}: unit found 2 problems"
    history = cli_run("history", "dev")
    assert "lint passed" in history.stdout and "unit FAILED" in history.stdout
    outcomes[("dev", "unit")] = True
    passed = cli_run("gate", "dev", R1, "--json")
    assert passed.exit_code == 0 and json.loads(passed.stdout)["passed"] is True


def test_wtx_up_says_which_environments_it_left_stopped(cli_run, monkeypatch, fake):
    monkeypatch.setattr(fake, "up", lambda envs, progress=None: ["stg: no release was promoted to stg yet (`wtx pipeline run`)"])
    result = cli_run("up")
    assert result.exit_code == 0
    assert "not started: stg: no release was promoted to stg yet" in result.stdout


TLS_WARNINGS = "".join(f"?: (security.{w}) a TLS setting.\n" for w in ("W004", "W008", "W012", "W016"))


@pytest.fixture
def stg_site():
    """A stand-in for stg behind its front door: 403 to any source but 127.0.0.1, 401 without
    credentials, else a page with the headers and cookie the app sends."""
    import http.server

    behaviour = {"firewall": True}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            if behaviour["firewall"] and self.client_address[0] != "127.0.0.1":
                self.send_response(403)
            elif "Authorization" not in self.headers:
                self.send_response(401)
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Security-Policy", "default-src 'self'")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Set-Cookie", "csrftoken=abc; Path=/; SameSite=Lax")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    with serving(Handler) as port:
        yield port, behaviour


def _security(spec, var_dir, port, deploy_output):
    import subprocess
    import zipfile

    from wtx import release as releases
    from wtx.backends import FrontDoor

    fake_release(var_dir, R1)
    # What bandit and the audit read: the app wheel's code, the locked dependencies (none:
    # the audit says "not audited", which the checked-in stg allows in writing).
    wheel = var_dir / "releases" / R1 / "wheelhouse" / "x.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("shop/__init__.py", "VALUE = 1\n")
    (var_dir / "releases" / R1 / "requirements.lock").write_text("")
    backend = FakeBackend(spec, var_dir)
    backend.running["stg"] = R1
    backend.manage = lambda env, rel, *args, timeout=600: subprocess.CompletedProcess(
        args, 0, f"System check identified some issues:\n\nWARNINGS:\n{deploy_output}\n", "")
    backend.front_door = lambda env: FrontDoor(host="stg.wondertix.localhost", port=port,
                                               basic_auth=("rehearsal", "not-a-real-password"))
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        # The live authorization matrix and schemathesis have a stand-in of their own
        # (test_wtx_authz_gate.py); this one serves the headers and the firewall.
        gate = spec.env("stg").gate("security").model_copy(update={"authz": False, "schemathesis_max_examples": 0})
        return gates.run_check(work, gate)


def test_the_security_gate_passes_stg_as_declared_and_names_debug_left_on(spec, var_dir, stg_site):
    port, behaviour = stg_site
    ok = _security(spec, var_dir, port, TLS_WARNINGS)
    assert ok.passed, ok.summary
    assert ok.figures | {"deploy_check_allowed": 4} == ok.figures
    assert (ok.figures["firewall_status_from_outside"], ok.figures["status_without_credentials"]) == (403, 401)
    assert ok.figures["bandit_findings"] == 0 and ok.figures["audit"] == "not audited"
    assert ok.summary.endswith("bandit 0 at high+; dependencies NOT AUDITED (allowed by allow_unaudited)")
    debug = _security(spec, var_dir / "d", port, TLS_WARNINGS + "?: (security.W018) You should not have DEBUG set to True in deployment.\n")
    assert not debug.passed
    assert debug.summary.startswith("check --deploy: 1 issue(s) not allowed by the spec (at most 0): security.W018")


def test_the_security_gate_fails_when_a_source_outside_the_allowed_networks_gets_in(spec, var_dir, stg_site):
    port, behaviour = stg_site
    behaviour["firewall"] = False
    result = _security(spec, var_dir, port, TLS_WARNINGS)
    assert not result.passed
    assert result.summary.startswith("firewall: a request from 127.0.0.2 (not allowed) answered 200, not 403")


def test_a_restart_needs_only_the_promotion_and_a_new_deploy_needs_it_to_still_hold(fake, short_spec, var_dir):
    record_all(var_dir, short_spec, "dev", R1)
    pipeline.promote(short_spec, fake, "dev", "stg", R1)
    record_all(var_dir, short_spec, "dev", R1, failing="unit")  # a later, flaky run in dev
    assert pipeline.deploy_refusal(short_spec, var_dir, "stg", R1, recheck=False) is None  # `wtx up` after a reboot
    assert "gate unit of dev failed" in pipeline.deploy_refusal(short_spec, var_dir, "stg", R1)
    assert "never promoted to stg" in pipeline.deploy_refusal(short_spec, var_dir, "stg", R2, recheck=False)
