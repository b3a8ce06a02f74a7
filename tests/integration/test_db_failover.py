"""prd's HA database (Patroni + etcd + HAProxy, started from the spec in a throwaway var dir)
loses its leader three ways while orders are being written, and nothing acknowledged is lost.

Orders are rows written through prd's database entry point (HAProxy's `listen` on the front
door's host, the port apps use) by writers that retry an order with its idempotency key until
it is acknowledged, as the app does across a failover. After each event: every acknowledged
order is there, exactly one member leads, and the old leader is back as a synchronous standby.

The stack binds the spec's front door and database ports moved by tests/support/moved_spec.OFFSET
(so it runs beside the deploy tests' stack); one HA stack at a time on the machine, e.g.
    flock /tmp/wtx-ha.lock .venv/bin/pytest -q -s tests/integration/test_db_failover.py
Figures (seconds without write service) are printed; docs/operations.md records them.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from tests.support.hastack import Writer
from tests.support.moved_spec import moved_spec
from tests.support.processes import kill_processes_naming

from wtx.backends.local import LocalBackend, dbha
from wtx.backends.local.patroni import HACluster

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, float] = {}
# Patroni's floors measured on this kind of machine (../shared/notes/postgres-ha-facts.md):
# ~3.5 s when only PostgreSQL dies or on a switchover, ~21 s when the leader's host dies
# (ttl 20). The bounds leave room for a busy 2-core machine; the figures are printed.
PG_KILL_BOUND_S = 8.0
HOST_KILL_BOUND_S = 35.0


@dataclass
class Stack:
    backend: LocalBackend
    ha: HACluster
    dsn: str


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    failed_before = request.session.testsfailed
    if not shutil.which("etcd") or not Path("/usr/sbin/haproxy").exists():
        pytest.fail("etcd-server and haproxy are required (.ci/install-deps installs them)")
    # Patroni's virtualenv, installed once per lock and shared by every run (WTX_TOOLS_DIR).
    os.environ.setdefault("WTX_TOOLS_DIR", str(Path(tempfile.gettempdir()) / "wtx-tools"))
    var = Path(tempfile.mkdtemp(prefix="wtx-ha-test-"))
    var.chmod(0o711)
    spec = moved_spec(var / "spec")  # beside the deploy tests' stack: tests/support/moved_spec.py
    backend = LocalBackend(spec, ROOT, var)
    prd = spec.env("prd")
    try:
        with backend.locked():
            backend.supervisor.start()
            backend.ha_up(prd, progress=print)
        ha = backend.ha_cluster(prd)
        assert ha is not None
        db = prd.database
        password = backend.secrets(prd)["DB_PASSWORD"]
        dsn = (f"host={backend.database_host(prd)} port={db.port} dbname={db.name} user={db.role} "
               f"password={password} connect_timeout=2 options='-c statement_timeout=10000'")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS ha_probe_orders (idempotency_key uuid PRIMARY KEY, "
                         "placed_at timestamptz NOT NULL DEFAULT now())")
        yield Stack(backend=backend, ha=ha, dsn=dsn)
    finally:
        backend.supervisor.shutdown(timeout=90)
        kill_processes_naming(var)
        if request.session.testsfailed > failed_before:
            # Patroni's, PostgreSQL's and etcd's logs outlive the var dir, for the reader of the failure.
            kept = Path(tempfile.mkdtemp(prefix="wtx-ha-test-logs-"))
            shutil.copytree(backend.layout.logs_dir("prd"), kept / "logs", dirs_exist_ok=True)
            print(f"\nHA logs: {kept / 'logs'}")
        shutil.rmtree(var, ignore_errors=True)
        if FIGURES:
            print("\nHA figures:", ", ".join(f"{k} {v:.2f}" for k, v in FIGURES.items()))


def _wait_writes_back(writers: Writer, since: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if writers.acknowledged_since(since) >= 50:
            return
        time.sleep(0.1)
    pytest.fail(f"no write service within {timeout:.0f}s of the event")


def _assert_nothing_lost(stack: Stack, writers: Writer) -> None:
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        stored = {str(r[0]) for r in conn.execute("SELECT idempotency_key FROM ha_probe_orders")}
    missing = set(writers.acknowledged) - stored
    assert not missing, f"{len(missing)} of {len(writers.acknowledged)} acknowledged orders are gone"


def _assert_healthy(stack: Stack, old_leader: str) -> str:
    """One leader behind HAProxy; every other member streaming, the old leader included,
    and (synchronous mode) one of them the synchronous standby."""
    ha = stack.ha
    dbha.wait_all_running(ha, 60)
    lead = dbha.wait_one_primary(ha, stack.backend.runtime, 30)
    roles = {m["name"]: m["role"] for m in dbha.members(ha)}
    assert roles[lead] == "leader"
    if old_leader != lead:
        assert roles[old_leader] in ("sync_standby", "replica")
    assert list(roles.values()).count("sync_standby") == 1, roles
    return lead


def _event(stack: Stack, name: str, action: object, bound: float) -> str:
    old = dbha.leader(stack.ha)
    assert old is not None
    with Writer(stack.dsn, threads=2) as writers:
        _wait_writes_back(writers, time.monotonic(), 30)
        began = time.monotonic()
        action(old)  # type: ignore[operator]
        _wait_writes_back(writers, began, bound + 30)
        time.sleep(1)
    outage = writers.longest_gap(began)
    FIGURES[f"{name}_outage_s"] = outage
    FIGURES[f"{name}_orders_acknowledged"] = len(writers.acknowledged)
    print(f"\n{name}: leader {old}; {outage:.2f}s without write service; {len(writers.acknowledged)} "
          f"orders acknowledged, {writers.errors} failed attempts retried")
    _assert_nothing_lost(stack, writers)
    assert outage <= bound, f"{name}: {outage:.1f}s without write service (bound {bound}s)"
    return old


def test_postgres_killed_on_the_leader_comes_back_through_haproxy_and_loses_nothing(stack: Stack) -> None:
    def kill_postgres(leader: str) -> None:
        # The whole server at once (postmaster and backends), as a crash takes it. A SIGKILL of
        # the postmaster alone leaves its backends alive, holding the shared memory, and no
        # PostgreSQL starts on that data directory until they are gone (docs/operations.md).
        pids = dbha.postgres_pids(stack.ha, leader)
        assert pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    old = _event(stack, "postgres_killed", kill_postgres, PG_KILL_BOUND_S)
    _assert_healthy(stack, old)


def test_planned_switchover_moves_the_leader_and_loses_nothing(stack: Stack) -> None:
    results: list[dict[str, object]] = []
    old = _event(stack, "switchover", lambda _leader: results.append(stack.backend.db_switchover("prd")),
                 PG_KILL_BOUND_S)
    assert results[0]["from"] == old and results[0]["to"] != old
    lead = _assert_healthy(stack, old)
    assert lead == results[0]["to"]


def test_the_leaders_host_dies_bak_takes_over_and_the_host_rejoins_as_sync_standby(stack: Stack) -> None:
    ha = stack.ha
    killed: list[str] = []

    def kill_host(leader: str) -> None:
        # What `wtx host kill` does: on this spec's this-machine database hosts, a simulated
        # death (every process of the host SIGKILLed at once, none restarted until power-on).
        stack.backend.kill_host(leader)
        killed.append(leader)

    try:
        old = _event(stack, "host_killed", kill_host, HOST_KILL_BOUND_S)
        lead = dbha.leader(ha)
        assert lead is not None and lead != old
        began = time.monotonic()
        stack.backend.power_on_host(old)
        _assert_healthy(stack, old)
        FIGURES["host_rejoined_s"] = time.monotonic() - began
        assert old in dbha.sync_standbys(ha)
    finally:
        for host in killed:
            ha.paths.host_down_marker(host).unlink(missing_ok=True)
