"""The `wtx` command: --json parses, failures are one line with a non-zero exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli, ledger
from wtx.backends import DeployError
from wtx.secrets import ensure_secrets, read_secrets_file, secrets_path


@pytest.fixture
def run(var_dir):
    runner = CliRunner()

    def invoke(*args: str, root: Path = ROOT, var: Path = var_dir):
        return runner.invoke(cli.app, ["--root", str(root), "--var-dir", str(var), *args])

    return invoke


@dataclass
class FakeStatus:
    env: str
    url: str
    release: str | None
    health: str
    database: str
    last_deploy: str | None


class FakeBackend:
    """Records what the CLI asked for; the real one is tested in tests/deploy."""

    calls: list[tuple] = []

    def __init__(self, spec, root, var_dir):
        self.spec = spec

    def status(self):
        return [FakeStatus(n, self.spec.env(n).url, "abc123abc123", "healthy", f"{n} db", None) for n in self.spec.names()]

    def __getattr__(self, name):
        def record(*args, **kwargs):
            FakeBackend.calls.append((name, args))
            return None

        return record


@pytest.fixture
def backend(monkeypatch):
    FakeBackend.calls = []
    monkeypatch.setattr(cli, "_backend", lambda ctx: FakeBackend(ctx.spec, ctx.root, ctx.var_dir))
    return FakeBackend


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wtx: error: ")
    return lines[0]


def test_spec_check_passes_on_the_real_spec(run):
    result = run("spec", "check")
    assert result.exit_code == 0, result.output
    assert "valid — 4 environments (dev, stg, prd, bak)" in result.stdout


def test_spec_check_fails_with_one_line_naming_file_env_field(run, raw_spec, write_spec, tmp_path):
    raw_spec["environments"]["stg"]["access"]["basic_auht"] = True
    write_spec(raw_spec)
    result = run("spec", "check", root=tmp_path)
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "environments.toml: environment 'stg': field 'access.basic_auht': unknown field" in line


def test_spec_show_masks_every_secret(run, spec, var_dir):
    for name in ("stg", "prd"):
        ensure_secrets(spec.env(name), spec, var_dir)
    values = [v for n in ("stg", "prd") for v in read_secrets_file(secrets_path(n, var_dir)).values()]
    for args in (("spec", "show", "stg"), ("spec", "show", "prd", "--json"), ("spec", "show", "bak", "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert not [v for v in values if v in result.output], f"{args} printed a secret"
    shown = json.loads(run("spec", "show", "prd", "--json").stdout)
    assert shown["secrets"]["values"] == {"SECRET_KEY": "set", "STAFF_API_TOKEN_KEY": "set", "DB_PASSWORD": "set"}
    assert shown["release_environment"]["SECRET_KEY"] == "********"
    assert shown["release_environment"]["DATABASE_URL"] == "postgres://wondertix_prd:********@127.0.0.1:5534/wondertix_prd"
    assert json.loads(run("spec", "show", "bak", "--json").stdout)["secrets"]["owner"] == "prd"


def test_spec_show_generates_nothing(run, var_dir):
    assert run("spec", "show", "dev").exit_code == 0
    assert not (var_dir / "envs").exists()


def test_an_unknown_environment_is_one_line_and_exit_1(run, backend):
    result = run("history", "prod")
    assert result.exit_code == 1
    assert "no environment 'prod' (did you mean 'prd'?)" in one_line_error(result)


def test_a_usage_error_exits_2(run):
    assert run("deploy").exit_code == 2


def test_status_json_parses_and_the_table_names_every_env(run, backend):
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["env"] for r in rows] == ["dev", "stg", "prd", "bak"]
    assert rows[2]["url"] == "https://wondertix.localhost:8443" and rows[2]["health"] == "healthy"
    table = run("status")
    assert table.exit_code == 0 and all(n in table.stdout for n in ("dev", "stg", "prd", "bak", "healthy"))


def test_history_json_is_the_ledger_for_that_environment(run, var_dir):
    ledger.append(var_dir, "deploy", env="prd", release="aaaaaaaaaaaa")
    ledger.append(var_dir, "deploy", env="stg", release="aaaaaaaaaaaa")
    ledger.append(var_dir, "abort", env="prd", release="bbbbbbbbbbbb", reason="never became ready")
    result = run("history", "prd", "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [(r["event"], r["release"]) for r in records] == [("deploy", "aaaaaaaaaaaa"), ("abort", "bbbbbbbbbbbb")]
    table = run("history", "prd")
    assert "never became ready" in table.stdout


def test_releases_json_lists_builds_and_where_they_run(run, built):
    var, release = built["var"], built["release"]
    result = run("releases", "--json", var=var)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert release.id in [r["id"] for r in rows]
    row = next(r for r in rows if r["id"] == release.id)
    assert row["commit"] == release.commit and row["dirty"] is False and row["size_bytes"] > 1_000_000


def test_releases_on_an_empty_var_dir(run):
    assert json.loads(run("releases", "--json").stdout) == []


def test_deploy_of_an_unknown_release_is_refused_before_the_backend_is_called(run, backend):
    result = run("deploy", "stg", "deadbeef")
    assert result.exit_code == 1
    assert "no release 'deadbeef'" in one_line_error(result)
    assert backend.calls == []


def test_deploy_without_a_build_says_to_build(run, backend):
    result = run("deploy", "stg")
    assert result.exit_code == 1 and "run `wtx build`" in one_line_error(result)


def test_deploy_passes_the_newest_build_to_the_backend(run, backend, built):
    # dev takes any build; stg and prd only promoted ones (tests/unit/wtx/test_wtx_pipeline.py).
    result = run("deploy", "dev", "--json", var=built["var"])
    assert result.exit_code == 0, result.output
    assert backend.calls[0][0] == "deploy" and backend.calls[0][1] == ("dev", built["release"].id)
    assert json.loads(result.stdout) == {"env": "dev", "release": built["release"].id}


def test_bak_is_never_deployed_on_its_own(run, backend):
    result = run("deploy", "bak", "abcd")
    assert result.exit_code == 1 and "prd's backup" in one_line_error(result)


def test_resetting_or_seeding_real_data_is_refused(run, backend):
    for args in (("db", "reset", "prd", "--yes"), ("db", "reset", "bak", "--yes"), ("db", "seed", "prd")):
        result = run(*args)
        assert result.exit_code == 1
        assert "data_policy is \"real\"" in one_line_error(result)
    assert backend.calls == []


def test_reset_needs_confirmation_then_calls_the_backend(run, backend):
    result = run("db", "reset", "dev")
    assert result.exit_code == 1 and "--yes" in one_line_error(result)
    assert run("db", "reset", "dev", "--yes").exit_code == 0
    assert backend.calls == [("db_reset", ("dev",))]


def test_up_defaults_to_every_environment(run, backend):
    assert run("up").exit_code == 0
    assert run("down", "stg").exit_code == 0
    assert backend.calls == [("up", (["dev", "stg", "prd", "bak"],)), ("down", (["stg"],))]


def test_a_backend_failure_is_one_line_and_exit_1(run, monkeypatch):
    class Broken(FakeBackend):
        def up(self, envs, progress=None):
            raise RuntimeError("haproxy refused to start\nsecond line of detail")

    monkeypatch.setattr(cli, "_backend", lambda ctx: Broken(ctx.spec, ctx.root, ctx.var_dir))
    result = run("up", "dev")
    assert result.exit_code == 1
    assert "RuntimeError: haproxy refused to start" in one_line_error(result)


def test_an_aborted_deploy_is_its_reason_and_exit_1(run, monkeypatch, built):
    class Aborting(FakeBackend):
        def deploy(self, env, release_id, progress=None):
            raise DeployError("dev: release never became ready (/readyz 503 for 60 s); old release keeps serving")

    monkeypatch.setattr(cli, "_backend", lambda ctx: Aborting(ctx.spec, ctx.root, ctx.var_dir))
    result = run("deploy", "dev", var=built["var"])
    assert result.exit_code == 1
    assert one_line_error(result) == (
        "wtx: error: dev: release never became ready (/readyz 503 for 60 s); old release keeps serving")


def test_the_console_entry_point_runs(var_dir):
    env = {**os.environ, "WTX_ROOT": str(ROOT), "WTX_VAR_DIR": str(var_dir),
           "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "wtx", "spec", "check"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    bad = subprocess.run([sys.executable, "-m", "wtx", "spec", "show", "nope"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("wtx: error:")


def test_long_steps_show_progress_lines_with_elapsed_seconds_without_a_terminal(run, monkeypatch):
    class Stepping(FakeBackend):
        def db_seed(self, env, progress=None):
            progress(f"{env}: migrations of release abc123abc123")
            progress(f"{env}: loading the demo data")

        def down(self, envs, progress=None):
            progress("stopping every program, then supervisord")

    monkeypatch.setattr(cli, "_backend", lambda ctx: Stepping(ctx.spec, ctx.root, ctx.var_dir))
    seeded = run("db", "seed", "dev")
    assert seeded.exit_code == 0, seeded.output
    steps = [line for line in seeded.stderr.splitlines() if line.startswith("· ")]
    assert len(steps) == 2
    assert re.fullmatch(r"· +\d+\.\ds dev: migrations of release abc123abc123", steps[0]), steps[0]
    assert steps[1].endswith("dev: loading the demo data")
    assert "dev: demo data loaded" in seeded.stdout
    stopped = run("down")
    assert "stopping every program, then supervisord" in stopped.stderr


def test_history_verify_says_whole_or_names_the_changed_line(run, var_dir):
    for i in range(3):
        ledger.append(var_dir, ledger.DEPLOY, env="prd", release=f"{i:012x}")
    ok = run("history", "--verify")
    assert ok.exit_code == 0 and "3 record(s), the chain is whole" in ok.output
    path = ledger.ledger_path(var_dir)
    path.write_text(path.read_text().replace("000000000001", "ffffffffffff"))
    bad = run("history", "--verify")
    assert bad.exit_code == 1
    assert "the ledger was changed: line 3 (seq 3): does not follow the record before it" in bad.output
    as_json = run("history", "--verify", "--json")
    assert as_json.exit_code == 1 and '"ok": false' in as_json.output


def test_db_switchover_names_the_new_leader_and_json_carries_the_timings(run, monkeypatch):
    class Switching(FakeBackend):
        def db_switchover(self, env, candidate=None, progress=None):
            FakeBackend.calls.append(("db_switchover", (env, candidate)))
            return {"env": env, "from": "prd-db", "to": candidate or "bak-db", "routed_s": 3.1, "rejoined_s": 9.4}

    FakeBackend.calls = []
    monkeypatch.setattr(cli, "_backend", lambda ctx: Switching(ctx.spec, ctx.root, ctx.var_dir))
    result = run("db", "switchover", "prd")
    assert result.exit_code == 0, result.output
    assert "the database leader is now bak-db (was prd-db)" in result.stdout
    result = run("db", "switchover", "prd", "--to", "bak-db", "--json")
    assert json.loads(result.stdout)["routed_s"] == 3.1
    assert FakeBackend.calls == [("db_switchover", ("prd", None)), ("db_switchover", ("prd", "bak-db"))]


def test_db_switchover_of_a_database_without_ha_is_one_line_and_exit_1(run, monkeypatch):
    class Plain(FakeBackend):
        def db_switchover(self, env, candidate=None, progress=None):
            raise DeployError(f"{env}: its database has no HA members (database.ha) to switch over between")

    monkeypatch.setattr(cli, "_backend", lambda ctx: Plain(ctx.spec, ctx.root, ctx.var_dir))
    result = run("db", "switchover", "stg")
    assert result.exit_code == 1
    assert "stg: its database has no HA members" in one_line_error(result)
