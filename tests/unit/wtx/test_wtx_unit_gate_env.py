"""The unit gate's environment: clean, except what the release's unit tests need from this
machine to run as `make unit` runs them (found by timing the checked-in pipeline: without
these, 21 tests of a good release errored inside the gate)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from wtx import gates
from wtx import release as releases


def test_the_unit_gate_keeps_pips_settings_and_wtxs_wheel_cache_and_nothing_else_of_the_shell(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels")
    monkeypatch.setenv("DATABASE_URL", "postgres://operator@localhost/wondertix_prd")
    monkeypatch.setenv("WTX_VAR_DIR", "/srv/wtx")
    work = SimpleNamespace(dir=tmp_path / ("deep" * 20))
    env = gates._unit_env(work, Path("/tmp/wtx-unit-abc"))  # type: ignore[arg-type]
    assert env["PIP_FIND_LINKS"] == "/srv/wheels"
    assert env["WTX_CACHE_DIR"] == str(releases.wheel_cache_dir().parent)
    assert "DATABASE_URL" not in env and "WTX_VAR_DIR" not in env
    assert env["HOME"].startswith(str(work.dir))  # still a scratch HOME

