"""Backups and data guards without services: the spec's [backups] rules, the pgBackRest
config and parameters wtx renders, the data marker of a SQLite database, dump pruning, and
what the CLI refuses or reports. The restore drill on real clusters is
tests/integration/test_backup_restore_drill.py."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.support.specs import refused
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli, ledger
from wtx.backends import DeployError
from wtx.backends.local import LocalBackend, backups, guards
from wtx.backends.local import pgbackrest as pgbr
from wtx.spec import load_spec


# ------------------------------------------------------------------------------ spec
def test_prd_is_backed_up_to_another_host_and_no_other_environment_is(spec):
    prd = spec.env("prd")
    assert prd.backups is not None and prd.backups.host in spec.hosts
    assert prd.backups.host != spec.host_name(prd)
    assert [n for n in spec.names() if spec.env(n).backups is not None] == ["prd"]


@pytest.mark.parametrize(("env", "change", "words"), [
    ("prd", {"host": "nowhere"}, "unknown host 'nowhere'"),
    ("prd", {"host": "local"}, "must live on another"),
    ("prd", {"max_age_h": 0}, "max_age_h"),
    ("prd", {"retention_full": 0}, "retention_full"),
    ("prd", {"every_day": 1}, "every_day"),
    ("dev", {}, "needs database.engine = \"postgresql\""),
    ("bak", {}, "declare backups there"),
])
def test_backups_are_refused_where_they_cannot_work(raw_spec, write_spec, env, change, words):
    raw_spec["environments"][env]["backups"] = {"host": "vault", **change}
    message = refused(write_spec, raw_spec)
    assert f"environment {env!r}" in message and words in message


# ------------------------------------------------------------------------------ pgBackRest
def _repo(tmp_path: Path) -> pgbr.Repository:
    return pgbr.Repository(stanza="prd", config_dir=tmp_path / "envs" / "prd" / "pgbackrest",
                           repo_path=tmp_path / "hosts" / "vault" / "pgbackrest", retention_full=2)


def test_archiving_pushes_every_wal_segment_to_this_stanza_with_wtx_s_config_only(tmp_path):
    repo = _repo(tmp_path)
    settings = pgbr.archive_settings(repo)
    assert settings["archive_mode"] == "on" and settings["wal_level"] == "replica"
    assert settings["archive_command"].split() == [
        "pgbackrest", f"--config-path={repo.config_dir}", "--stanza=prd", "archive-push", "%p"]
    conf = pgbr.render_config(repo, pgdata=Path("/d"), sockdir=Path("/s"), port=5999)
    assert f"repo1-path={repo.repo_path}" in conf and "repo1-retention-full=2" in conf
    # Locks and logs under var/: two var dirs on one machine never share pgBackRest's lock.
    assert f"lock-path={repo.config_dir / 'lock'}" in conf and "[prd]" in conf and "pg1-port=5999" in conf


INFO = [{
    "name": "prd", "status": {"code": 0, "message": "ok"},
    "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "00000001000000000000000A"}],
    "backup": [
        {"label": "20261120-100000F", "type": "full", "timestamp": {"start": 1795168800, "stop": 1795168808},
         "info": {"size": 33785923, "repository": {"size": 6281365, "delta": 6281365}},
         "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000003"}},
        {"label": "20261120-100000F_20261121-100000I", "type": "incr", "timestamp": {"start": 1795255200, "stop": 1795255203},
         "info": {"size": 33800000, "repository": {"size": 6290000, "delta": 120000}},
         "archive": {"start": "000000010000000000000007", "stop": "000000010000000000000007"}},
    ],
}]


def test_backup_sets_are_read_oldest_first_with_what_each_added_to_the_repository():
    info = pgbr.parse_info(json.dumps(INFO), "prd")
    assert [s.kind for s in info.sets] == ["full", "incr"]
    assert info.last is not None and info.last.repo_bytes == 120000 and info.status == "ok"
    assert info.archive_max == "00000001000000000000000A"
    assert pgbr.parse_info(json.dumps(INFO), "stg").sets == []


def test_a_full_backup_is_taken_when_the_last_full_is_older_than_full_every_days():
    info = pgbr.parse_info(json.dumps(INFO), "prd")
    full_at = info.sets[0].stopped
    assert pgbr.choose_kind(info, 7, now=full_at + timedelta(days=6)) == "incr"
    assert pgbr.choose_kind(info, 7, now=full_at + timedelta(days=7, seconds=1)) == "full"
    assert pgbr.choose_kind(pgbr.parse_info("[]", "prd"), 7) == "full"


def test_a_recovery_target_is_given_to_postgresql_in_utc():
    when = datetime(2026, 11, 27, 10, 30, 5, tzinfo=UTC).astimezone()
    assert pgbr.target_text(when) == "2026-11-27 10:30:05.000000+00"
    assert backups.parse_time("2026-11-27T10:30:05").tzinfo is UTC
    with pytest.raises(DeployError, match="not a time"):
        backups.parse_time("yesterday-ish")


# ------------------------------------------------------------------------------ guards
def test_a_marker_only_ever_tightens(tmp_path):
    db = tmp_path / "db.sqlite3"
    sqlite3.connect(db).close()
    assert guards.read_sqlite_marker(db) is None
    assert guards.write_sqlite_marker(db, "demo") == "demo"
    assert guards.write_sqlite_marker(db, "real") == "real"
    assert guards.write_sqlite_marker(db, "demo") == "real"
    assert guards.read_sqlite_marker(db) == "real"


def test_only_the_newest_dumps_are_kept(tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    made = []
    for i in range(7):
        path = guards.dump_path(dumps, "wondertix_stg", "refresh" if i % 2 else "reset")
        path.write_text(str(i))
        made.append(path)
        time.sleep(0.002)
    (dumps / "notes.txt").write_text("an operator's file is never removed")
    removed = guards.prune_dumps(dumps, 3)
    assert sorted(removed) == sorted(made[:4])
    assert sorted(p.name for p in dumps.iterdir()) == sorted([*(p.name for p in made[4:]), "notes.txt"])


@pytest.fixture
def dev_marked_real(var_dir):
    """dev's SQLite database (the spec says demo) holding a marker that says real, and data."""
    backend = LocalBackend(load_spec(ROOT / "deploy" / "environments.toml"), ROOT, var_dir)
    dev = backend.env("dev")
    path = Path(backend.database_url(dev, backend.secrets(dev)).removeprefix("sqlite:///"))
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE takings (cents INTEGER)")
    con.execute("INSERT INTO takings VALUES (125000)")
    con.commit()
    con.close()
    guards.write_sqlite_marker(path, "real")
    return backend, dev, path


def test_a_dev_database_marked_real_is_neither_reset_nor_seeded_and_stays_as_it_was(dev_marked_real):
    backend, dev, path = dev_marked_real
    assert dev.database.data_policy == "demo"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DeployError, match="marked as holding real data"):
        backend.db_reset("dev")
    with pytest.raises(DeployError, match="marked as holding real data"):
        backend.db_seed("dev")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert [r["event"] for r in ledger.read(backend.var_dir, "dev")] == ["db-reset-refused", "db-seed-refused"]
    assert not backend.layout.dumps_dir("dev").exists()  # refused before anything, even a dump


def test_a_dump_is_taken_before_a_destructive_step_private_and_pruned(var_dir):
    backend = LocalBackend(load_spec(ROOT / "deploy" / "environments.toml"), ROOT, var_dir)
    dev = backend.env("dev")
    path = Path(backend.database_url(dev, backend.secrets(dev)).removeprefix("sqlite:///"))
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (v TEXT)")
    con.execute("INSERT INTO t VALUES ('kept in the dump')")
    con.commit()
    con.close()
    dumps = [backups.dump_before(backend, dev, "reset") for _ in range(backend.spec.defaults.dumps_keep + 2)]
    assert all(dumps)
    left = sorted(backend.layout.dumps_dir("dev").iterdir())
    assert [str(p) for p in left] == sorted(dumps)[-backend.spec.defaults.dumps_keep:]
    newest = Path(dumps[-1] or "")
    assert "-before-reset." in newest.name and os.stat(newest).st_mode & 0o077 == 0
    assert sqlite3.connect(newest).execute("SELECT v FROM t").fetchone() == ("kept in the dump",)


# ------------------------------------------------------------------------------ CLI
class FakeBackend:
    calls: list[tuple] = []
    stale = False

    def __init__(self, spec, root, var_dir):
        self.spec = spec

    def db_restore(self, env, to, into, *, replace_live=False, progress=None):
        FakeBackend.calls.append(("db_restore", env, to, into, replace_live))
        return {"env": env, "into": into, "to": to, "seconds": 3.2, "scratch": "x", "port": 40001,
                "database": "wondertix_prd", "psql": "psql …", "drop": "wtx db drop-scratch prd x"}

    def db_backup(self, env, kind, progress=None):
        FakeBackend.calls.append(("db_backup", env, kind))
        return {}

    def status(self):
        from wtx.backends import EnvStatus

        b = {"max_age_h": 26, "last_backup": "F (full)", "last_backup_age_h": 30.0 if FakeBackend.stale else 2.0,
             "wal_archive_age_s": 12.0, "stale": FakeBackend.stale,
             "problem": "last backup older than 26 h" if FakeBackend.stale else ""}
        return [EnvStatus(env="prd", url="u", release="r", health="healthy", database="d", last_deploy="-", backups=b),
                EnvStatus(env="dev", url="u", release="r", health="healthy", database="d", last_deploy="-")]


@pytest.fixture
def run(var_dir, monkeypatch):
    FakeBackend.calls = []
    FakeBackend.stale = False
    monkeypatch.setattr(cli, "_backend", lambda ctx: FakeBackend(ctx.spec, ctx.root, ctx.var_dir))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(var_dir), *args])


def test_restoring_over_the_live_database_needs_the_second_confirmation(run):
    result = run("db", "restore", "prd", "--to", "2026-11-27T10:00:00Z", "--into", "live")
    assert result.exit_code == 1 and "--replace-live-database" in result.stderr
    assert FakeBackend.calls == []
    result = run("db", "restore", "prd", "--to", "2026-11-27T10:00:00Z", "--into", "live", "--replace-live-database")
    assert result.exit_code == 0 and FakeBackend.calls == [("db_restore", "prd", "2026-11-27T10:00:00Z", "live", True)]


def test_a_scratch_restore_says_how_to_reach_it_and_how_to_drop_it(run):
    result = run("db", "restore", "prd", "--to", "2026-11-27T10:00:00Z")
    assert result.exit_code == 0, result.stderr
    assert "127.0.0.1:40001" in result.stdout and "wtx db drop-scratch prd x" in result.stdout


def test_full_and_incr_together_are_refused(run):
    result = run("db", "backup", "prd", "--full", "--incr")
    assert result.exit_code == 1 and FakeBackend.calls == []


def test_status_fails_when_the_last_backup_is_older_than_the_spec_allows(run):
    fresh = run("status")
    assert fresh.exit_code == 0, fresh.stderr
    assert "2.0 h ago" in fresh.stdout and "WAL archived 12 s ago" in fresh.stdout
    FakeBackend.stale = True
    stale = run("status", "--json")
    assert stale.exit_code == 1 and "prd: last backup older than 26 h" in stale.stderr
    assert json.loads(stale.stdout)[0]["backups"]["stale"] is True


def test_the_backup_timer_backs_up_only_when_one_is_due_and_survives_a_failure(var_dir, monkeypatch):
    backend = LocalBackend(load_spec(ROOT / "deploy" / "environments.toml"), ROOT, var_dir)
    infos = iter([pgbr.Info(sets=[], archive_min=None, archive_max=None, status="ok"),       # none yet: due
                  pgbr.parse_info(json.dumps(INFO), "prd"),                                  # old: due, fails
                  pgbr.Info(sets=[pgbr.BackupSet("L", "incr", datetime.now(UTC), datetime.now(UTC), 1, 1, "", "")],
                            archive_min=None, archive_max=None, status="ok")])              # fresh: not due
    monkeypatch.setattr(pgbr, "info", lambda repo: next(infos))
    made: list[str | None] = []

    def fake_backup(b, name, kind, progress=None):
        made.append(kind)
        if len(made) == 2:
            raise pgbr.BackupError("repository unreachable")
        return {"type": "full", "label": "L", "wall_seconds": 1.0}

    monkeypatch.setattr(backups, "backup", fake_backup)
    said: list[str] = []
    backups.run_timer(backend, "prd", said.append, poll_s=0, rounds=3)
    assert made == [None, None]
    assert "backup failed: repository unreachable" in said[1] and len(said) == 2


def test_archiving_is_failing_only_while_the_last_attempt_failed_after_the_last_success():
    now = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    t = now.timestamp()
    ok = pgbr.archiver_state(f"{t - 30}|{t - 600}|2|000000010000000000000003\n", now=now)
    assert ok.archived_age_s == 30 and ok.failing_for_s is None and ok.problem == ""
    failing = pgbr.archiver_state(f"{t - 300}|{t - 5}|7|000000010000000000000009\n", now=now)
    assert failing.failing_for_s == 5 and failing.failed_count == 7
    assert "WAL archiving failing" in failing.problem and "000000010000000000000009" in failing.problem
    never = pgbr.archiver_state("||0|\n", now=now)
    assert never.archived_age_s is None and never.problem == ""
    never_ok = pgbr.archiver_state(f"|{t - 2}|1|000000010000000000000001", now=now)
    assert never_ok.failing_for_s == 2
    with pytest.raises(Exception, match="unexpected pg_stat_archiver answer"):
        pgbr.archiver_state("garbage", now=now)
