"""Backups of prd's HA database follow its leader, and `wtx status` says when bak's copy is out
of sync (issue 8: backups on Patroni, status of an HA database).

The HA stack (etcd ×3, Patroni ×2, HAProxy's entry point) is started from the spec in a
throwaway var dir with its pgBackRest repository, as `wtx up` makes them. Orders are rows with
an idempotency key written through the entry point. Then: a full backup, orders, a planned
switchover, more orders, an incremental backup (from the new leader: its WAL is on the new
timeline), `pgbackrest check` on the new leader, orders, a noted second, orders, and a restore to
that second into scratch → exactly the orders before it.

It binds the spec's ports moved by tests/support/moved_spec.OFFSET: one HA stack at a time,
    flock /tmp/wtx-ha.lock .venv/bin/pytest -q -s tests/integration/test_ha_backups.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.hastack import ROOT, HAStack, Writer, ha_stack, keep_logs

from wtx.backends import DeployError
from wtx.backends.local import backups, dbha, hastatus
from wtx.backends.local import pgbackrest as pgbr
from wtx.backends.local.patroni import etcd_program_name, patroni_program_name
from wtx.backends.local.postgres import PG_BIN, as_postgres_cmd

FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[HAStack]:
    failed_before = request.session.testsfailed
    began = time.monotonic()
    with ha_stack("wtx-ha-backups-") as s:
        FIGURES["stack_up_s"] = time.monotonic() - began
        try:
            yield s
        finally:
            if request.session.testsfailed > failed_before:
                print(f"\nHA logs: {keep_logs(s)}")
    if FIGURES:
        print("\nHA backup figures:", ", ".join(f"{k} {v:.2f}" for k, v in FIGURES.items()))


def _scratch_orders(result: dict) -> set[str]:
    res = subprocess.run(as_postgres_cmd([str(PG_BIN / "psql"), "-X", "-A", "-t", "-h", result["socket"],
                                          "-p", str(result["port"]), "-d", result["database"],
                                          "-c", "SELECT idempotency_key FROM ha_probe_orders"]),
                         capture_output=True, text=True, timeout=30, check=True)
    return {line for line in res.stdout.split() if line}


def _timeline(segment: str) -> int:
    return int(segment[:8], 16)


def test_backups_and_wal_archiving_follow_the_leader_across_a_switchover(stack: HAStack) -> None:
    backend, ha = stack.backend, stack.ha
    first_leader = dbha.leader(ha)
    t = time.monotonic()
    full = backend.db_backup("prd", "full")
    FIGURES["full_backup_s"] = time.monotonic() - t
    assert full["type"] == "full"

    placed = stack.place_orders(5)
    moved = backend.db_switchover("prd")
    new_leader = moved["to"]
    assert moved["from"] == first_leader and new_leader != first_leader and dbha.leader(ha) == new_leader
    placed += stack.place_orders(5)

    t = time.monotonic()
    incr = backend.db_backup("prd", "incr")
    FIGURES["incr_backup_after_switchover_s"] = time.monotonic() - t
    assert incr["type"] == "incr"
    # Taken from the new leader: its WAL starts on the timeline the switchover began.
    assert _timeline(incr["wal_start"]) > _timeline(full["wal_start"]), (full["wal_start"], incr["wal_start"])

    # Archiving goes on from the new leader: check closes a segment and waits for it in the repository.
    repo = backups.repository(backend, backend.env("prd"))
    assert repo is not None
    pgbr.check(repo)
    archiver = backend.cluster(backend.env("prd")).psql(
        "SELECT archived_count, failed_count FROM pg_stat_archiver;").strip().split("|")
    assert int(archiver[0]) > 0 and int(archiver[1]) == 0, archiver
    listed = backend.db_backups("prd")
    assert [b["type"] for b in listed["backups"]] == ["full", "incr"]
    assert _timeline(listed["archive_max"]) == _timeline(incr["wal_start"])

    placed += stack.place_orders(5)
    time.sleep(1.2)
    noted = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.2)
    later = stack.place_orders(5)
    assert stack.orders() == set(placed) | set(later)

    t = time.monotonic()
    result = backend.db_restore("prd", noted.isoformat(), "scratch")
    FIGURES["restore_to_noted_second_s"] = time.monotonic() - t
    try:
        restored = _scratch_orders(result)
        assert restored == set(placed), (f"restored to {noted}: extra {len(restored - set(placed))}, "
                                         f"missing {len(set(placed) - restored)}")
        # The restore started from the incremental backup, the newest set before the noted second.
        label = Path(result["data"]) / "backup_label.old"
        assert incr["wal_start"] in label.read_text(), label.read_text()
    finally:
        backend.db_drop_scratch("prd", result["scratch"])
    print(f"\nbackups across a switchover {first_leader} → {new_leader}: full {full['wal_start']}, "
          f"incr {incr['wal_start']}; {len(placed)} orders before {noted} restored, {len(later)} after it absent")


def _status(stack: HAStack) -> tuple[int, dict, str]:
    """`wtx status --json` as an operator runs it, against the stack's var dir."""
    # The root holding the stack's spec (its ports moved: tests/support/moved_spec.py).
    env = {**os.environ, "WTX_VAR_DIR": str(stack.var), "WTX_ROOT": str(stack.backend.spec.path.parents[1])}
    res = subprocess.run([sys.executable, "-m", "wtx", "status", "--json"], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    rows = {r["env"]: r for r in json.loads(res.stdout or "[]")}
    return res.returncode, rows.get("prd", {}), res.stderr


def _wait_status(stack: HAStack, code: int, timeout: float) -> tuple[dict, str, float]:
    began = time.monotonic()
    deadline = began + timeout
    while True:  # bounded by the deadline
        rc, prd, err = _status(stack)
        if rc == code or time.monotonic() > deadline:
            assert rc == code, f"wtx status exited {rc}, not {code}, after {timeout:.0f}s: {err.strip()} {prd.get('database_ha')}"
            return prd, err, time.monotonic() - began
        time.sleep(1)


def test_status_fails_while_the_synchronous_standby_is_stopped_and_recovers_when_it_returns(stack: HAStack) -> None:
    backend, ha = stack.backend, stack.ha
    backend.db_backup("prd", "incr")  # the backup is young: only the database can turn status red
    prd, _, _ = _wait_status(stack, 0, 60)
    state = prd["database_ha"]
    assert state["in_sync"] is True and state["leader"] == dbha.leader(ha)
    standby = next(m for m in state["members"] if m["role"] == "sync_standby")
    assert standby["state"] == "streaming" and standby["lag_bytes"] is not None

    with Writer(stack.dsn) as writer:
        writer.wait_writes(time.monotonic())
        began = time.monotonic()
        backend.supervisor.stop_program(patroni_program_name("prd", standby["name"]))
        FIGURES["standby_stop_s"] = time.monotonic() - began
        try:
            prd, err, took = _wait_status(stack, 1, 60)
            FIGURES["status_red_after_standby_stopped_s"] = took
            assert "no synchronous standby" in err and standby["name"] in err, err
            assert prd["database_ha"]["in_sync"] is False
            writer.wait_writes(time.monotonic())
            FIGURES["standby_down_longest_write_gap_s"] = writer.longest_gap(began)
        finally:
            backend.supervisor.start_program(patroni_program_name("prd", standby["name"]))
        back = time.monotonic()
        prd, _, took = _wait_status(stack, 0, 90)
        FIGURES["status_green_after_standby_started_s"] = took
        assert prd["database_ha"]["in_sync"] is True
        writer.wait_writes(time.monotonic())
        FIGURES["standby_return_longest_write_gap_s"] = writer.longest_gap(back)
    assert set(writer.acknowledged) <= stack.orders()


def test_the_apps_role_reads_the_standbys_sync_state_and_lag_without_being_superuser(stack: HAStack) -> None:
    import psycopg

    from wondertix.ops import replication

    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert superuser == (False,)
        stack.place_orders(3)
        found = replication.read(conn.cursor())
    assert found.sync_standbys == 1 and found.streaming_replicas == len(stack.ha.ha.members) - 1
    assert 0 <= found.lag_bytes < stack.ha.ha.max_lag_mb * 1_048_576
    assert found.wal_archive_age_s >= 0


@pytest.mark.parametrize("whose", ["witness", "leader's host"])
def test_losing_one_etcd_member_keeps_the_leader_and_write_service(stack: HAStack, whose: str) -> None:
    backend, ha = stack.backend, stack.ha
    lead = dbha.leader(ha)
    host = lead if whose == "leader's host" else next(e.host for e in ha.ha.etcd if e.host not in
                                                       {m.host for m in ha.ha.members})
    program = etcd_program_name("prd", host)
    with Writer(stack.dsn) as writer:
        writer.wait_writes(time.monotonic())
        began = time.monotonic()
        backend.supervisor.stop_program(program)
        try:
            time.sleep(ha.ha.ttl + 2)  # a lease that could not be renewed would have expired by now
            writer.wait_writes(time.monotonic())
            assert dbha.leader(ha) == lead, f"the leader changed after etcd on {host} stopped ({dbha.describe(ha)})"
            etcd = hastatus.status(ha)["etcd"]
            assert etcd["members"][host] is False and etcd["quorum"] is True and host in etcd["warning"]
            FIGURES[f"etcd_{host}_down_longest_write_gap_s"] = writer.longest_gap(began)
        finally:
            backend.supervisor.start_program(program)
    assert set(writer.acknowledged) <= stack.orders()
    dbha.wait_all_running(ha, 60)


def test_an_unreachable_backup_repository_fails_backups_not_orders_and_archiving_catches_up(stack: HAStack) -> None:
    backend = stack.backend
    repo = backups.repository(backend, backend.env("prd"))
    assert repo is not None
    mode = repo.repo_path.stat().st_mode & 0o7777
    with Writer(stack.dsn) as writer:
        writer.wait_writes(time.monotonic())
        began = time.monotonic()
        repo.repo_path.chmod(0)  # the postgres user (pgBackRest) can no longer reach it
        try:
            with pytest.raises(pgbr.BackupError):
                pgbr.run(repo, "--archive-timeout=5", "check", timeout=60)
            with pytest.raises(DeployError, match="pgbackrest"):
                backend.db_backup("prd", "incr")
            writer.wait_writes(time.monotonic())
            FIGURES["repo_unreachable_longest_write_gap_s"] = writer.longest_gap(began)
            # The operator's view: status is red at once (the repository cannot be read) and,
            # once PostgreSQL has tried to archive a segment, says archiving is failing.
            prd, err, _ = _wait_status(stack, 1, 60)
            deadline = time.monotonic() + 60
            while "WAL archiving failing" not in prd["backups"]["problem"] and time.monotonic() < deadline:
                time.sleep(1)
                _, prd, err = _status(stack)
            assert "WAL archiving failing" in prd["backups"]["problem"] and "WAL archiving failing" in err, err
            assert "no backup yet" not in prd["backups"]["problem"], prd["backups"]
        finally:
            repo.repo_path.chmod(mode)
        back = time.monotonic()
        pgbr.check(repo)  # the WAL held back meanwhile is archived, the current segment with it
        FIGURES["repo_back_archive_caught_up_s"] = time.monotonic() - back
        prd, _, _ = _wait_status(stack, 0, 60)
        assert prd["backups"]["problem"] == "" and prd["backups"]["wal_archive_age_s"] < 60
    assert backend.db_backup("prd", "incr")["type"] == "incr"
    assert set(writer.acknowledged) <= stack.orders()
