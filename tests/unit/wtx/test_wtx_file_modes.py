"""var/ is the operator's only: logs and mail (order tokens, ticket codes) are never readable
by other users, and wtx never changes the mode of anything outside var/."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wtx import cli
from wtx.backends.local import LocalBackend
from wtx.backends.local.postgres import Cluster, PostgresError, ensure_reachable
from wtx.release import Release


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_above(path: Path) -> dict[Path, int]:
    return {p: mode(p) for p in path.parents}


@pytest.fixture
def traversable_tmp() -> Iterator[Path]:
    """A directory every user may pass through (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="wtx-modes-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fake_release(var_dir: Path) -> Release:
    path = var_dir / "releases" / "0123456789ab"
    path.mkdir(parents=True)
    return Release(id="0123456789ab", path=path, manifest={})


def test_after_setup_logs_mail_metrics_and_run_dirs_are_0700_and_files_0600(spec, tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    before = modes_above(home / "var") | {home: mode(home)}
    old = os.umask(0o022)  # an operator's usual umask: wtx must not depend on it
    try:
        backend = LocalBackend(spec, home, home / "var")
        rel = _fake_release(backend.var_dir)
        for name in ("dev", "stg", "prd", "bak"):
            backend.slot_command(spec.env(name), "blue", rel)
        backend.supervisor.write_main_conf()
        backend.supervisor.write_programs("prd", backend.env_programs(spec.env("prd")))
    finally:
        os.umask(old)
    lay = backend.layout
    for name in ("dev", "stg", "prd", "bak"):
        assert mode(lay.logs_dir(name)) == 0o700, name
        assert mode(lay.metrics_dir(name, "blue")) == 0o700, name
        assert mode(lay.metrics_dir(name, "blue").parent) == 0o700, name
        assert mode(lay.slot_env_file(name, "blue").parent) == 0o700, name
        assert mode(lay.slot_env_file(name, "blue")) == 0o600, name
        assert mode(lay.gunicorn_conf(name, "blue")) == 0o600, name
        assert mode(lay.env_dir(name) / "mail") == 0o700, name
        assert mode(lay.env_dir(name)) == 0o711, "postgres passes through, nobody lists it"
    assert mode(lay.env_dir("dev") / "db") == 0o700
    for d in (lay.supervisor_dir, lay.supervisor_include_dir, lay.supervisor_dir / "child"):
        assert mode(d) == 0o700, d
    # supervisord and every program it starts (gunicorn, HAProxy, PostgreSQL) create their
    # log files, mail and metrics under umask 077: 0600 files, 0700 directories.
    main_conf = lay.supervisor_conf.read_text()
    assert "\numask=077\n" in main_conf
    programs = lay.program_file("prd").read_text()
    assert programs.count("[program:") == programs.count("\numask=077\n") >= 1
    assert {p: mode(p) for p in before} == before, "nothing outside var/ changed mode"


def test_the_wtx_command_runs_with_umask_077(monkeypatch):
    seen: list[int] = []

    def fake_app() -> None:
        current = os.umask(0)
        os.umask(current)
        seen.append(current)

    monkeypatch.setattr(cli, "app", fake_app)
    old = os.umask(0o022)
    try:
        cli.main()
    finally:
        os.umask(old)
    assert seen == [0o077]


def test_postgres_setup_never_opens_the_operators_home(tmp_path):
    home = tmp_path / "home" / "operator"
    home.mkdir(parents=True)
    home.chmod(0o700)
    var = home / "wondertix" / "var"
    var.parent.mkdir()
    before = modes_above(var)
    cluster = Cluster(pgdata=var / "envs" / "prd" / "pgdata", sockdir=var / "envs" / "prd" / "pgsock",
                      port=5999, log_dir=var / "envs" / "prd" / "logs", var_dir=var)
    with pytest.raises(PostgresError, match=r"cannot reach .*pgdata: .* is not traversable") as info:
        cluster.init("wondertix_prd", "wondertix_prd")
    assert "chmod o+x" in str(info.value)
    after = {p: m for p, m in modes_above(var).items() if p in before}
    assert after == before, "nothing outside var/ changed mode"
    assert mode(home) == 0o700


def test_inside_var_the_path_to_pgdata_is_traversable_and_nothing_above_changes(traversable_tmp):
    var = traversable_tmp / "var"
    pgdata = var / "envs" / "stg" / "pgdata"
    before = modes_above(traversable_tmp)
    ensure_reachable(pgdata, var)
    for d in (var, var / "envs", var / "envs" / "stg"):
        assert mode(d) == 0o711, d
    assert modes_above(traversable_tmp) == before
    assert mode(traversable_tmp) == 0o711


def test_one_off_commands_write_their_mail_and_files_0600(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    rel = _fake_release(backend.var_dir)
    script = backend.layout.release_venv(rel.id) / "bin" / "wondertix"
    script.parent.mkdir(parents=True)
    script.write_text('#!/bin/sh\nprintf "ticket code" > "$EMAIL_FILE_PATH/confirmation.eml"\n')
    script.chmod(0o755)
    old = os.umask(0o022)
    try:
        res = backend.manage(spec.env("dev"), rel, "send_queued_mail")
    finally:
        os.umask(old)
    assert res.returncode == 0, res.stderr
    sent = backend.layout.env_dir("dev") / "mail" / "confirmation.eml"
    assert sent.read_text() == "ticket code"
    assert mode(sent) == 0o600
