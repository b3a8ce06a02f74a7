"""`wtx db refresh ENV --from SRC` and `wtx run ENV -- COMMAND`: what the CLI asks of the backend.

The refresh itself (two real PostgreSQL clusters, every column scanned) is proven in
tests/integration/test_db_refresh.py; `wtx run` against a real release in tests/deploy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli, ledger
from wtx.backends.local import LocalBackend


class FakeBackend:
    calls: list[tuple] = []
    exit_code = 0

    def __init__(self, spec, root, var_dir):
        self.spec = spec

    def db_refresh(self, env, source, progress=None):
        FakeBackend.calls.append(("db_refresh", env, source))
        return {"env": env, "source": source, "rows": 1234, "tables": 31, "seconds": 4.2,
                "dump": "/var/envs/stg/dumps/wondertix_stg-before-refresh.dump"}

    def run(self, env, args):
        FakeBackend.calls.append(("run", env, args))
        return FakeBackend.exit_code


@pytest.fixture
def backend(monkeypatch):
    FakeBackend.calls = []
    FakeBackend.exit_code = 0
    monkeypatch.setattr(cli, "_backend", lambda ctx: FakeBackend(ctx.spec, ctx.root, ctx.var_dir))
    return FakeBackend


@pytest.fixture
def run(var_dir):
    runner = CliRunner()

    def invoke(*args: str, root: Path = ROOT):
        return runner.invoke(cli.app, ["--root", str(root), "--var-dir", str(var_dir), *args])

    return invoke


def test_refreshing_an_environment_with_real_data_is_refused_before_anything_runs(run, backend):
    for target in ("prd", "bak"):
        result = run("db", "refresh", target, "--from", "stg", "--yes")
        assert result.exit_code == 1
        assert f"refusing to refresh {target}: its data_policy is \"real\"" in result.stderr
    assert backend.calls == []


def test_refresh_needs_confirmation_then_reports_rows_and_the_dump(run, backend):
    result = run("db", "refresh", "stg", "--from", "prd")
    assert result.exit_code == 1 and "pass --yes to confirm" in result.stderr
    assert backend.calls == []
    result = run("db", "refresh", "stg", "--from", "prd", "--yes")
    assert result.exit_code == 0, result.output
    assert backend.calls == [("db_refresh", "stg", "prd")]
    assert "stg now holds a scrubbed copy of prd: 1234 rows in 31 tables in 4.2 s" in result.stdout
    assert "wondertix_stg-before-refresh.dump" in result.stdout


def test_refresh_from_an_unknown_environment_is_one_line(run, backend):
    result = run("db", "refresh", "stg", "--from", "prod", "--yes")
    assert result.exit_code == 1 and "no environment 'prod' (did you mean 'prd'?)" in result.stderr
    assert backend.calls == []


def test_the_backend_refuses_real_data_too_and_records_it(spec, var_dir):
    # Whatever calls the backend (a pipeline, a script), prd is never overwritten.
    from wtx.backends import DeployError

    with pytest.raises(DeployError, match="refusing to overwrite a database with real data"):
        LocalBackend(spec, ROOT, var_dir).db_refresh("prd", "stg")
    assert [r["event"] for r in ledger.read(var_dir, "prd")] == ["db-refresh-refused"]


def test_run_passes_the_command_and_its_options_and_the_exit_code_through(run, backend):
    result = run("run", "stg", "--", "create_staff", "alice", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert backend.calls == [("run", "stg", ["create_staff", "alice", "--role", "admin"])]
    FakeBackend.exit_code = 3
    assert run("run", "dev", "--", "check", "--deploy").exit_code == 3
    assert backend.calls[-1] == ("run", "dev", ["check", "--deploy"])


def test_run_in_an_unknown_environment_or_without_a_command_fails(run, backend):
    result = run("run", "stag", "--", "shell")
    assert result.exit_code == 1 and "did you mean 'stg'?" in result.stderr
    assert run("run", "stg").exit_code == 2
    assert backend.calls == []


class _Ran:
    returncode = 0
    stdout = stderr = ""


def test_up_seeds_a_demo_environment_on_its_first_start_and_after_a_reset_only(spec, var_dir, monkeypatch):
    backend = LocalBackend(spec, ROOT, var_dir)
    ran: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(backend, "manage", lambda env, rel, *args, **kw: ran.append((env.name, args)) or _Ran())

    class Rel:
        id = "abc123"

    assert backend.seed_demo_once(spec.env("dev"), Rel()) is True
    assert backend.seed_demo_once(spec.env("dev"), Rel()) is False, "a second start keeps the data as it is"
    ledger.append(var_dir, "db-reset", env="dev", release="abc123")
    assert backend.seed_demo_once(spec.env("dev"), Rel()) is True, "a reset database is a first start again"
    for name in ("stg", "prd", "bak"):
        assert backend.seed_demo_once(spec.env(name), Rel()) is False
    assert ran == [("dev", ("seed_demo",)), ("dev", ("seed_demo",))]
    assert [r.get("via") for r in ledger.read(var_dir, "dev") if r["event"] == "db-seed"] == ["up", "up"]
