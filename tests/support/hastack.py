"""prd's HA database (etcd ×3, Patroni ×2, HAProxy's entry point) started from the checked-in
spec in a throwaway var dir, with its pgBackRest repository set up the way `wtx up` does it.

Its ports are the spec's moved by tests/support/moved_spec.OFFSET, so it runs beside the deploy
tests' stack (which holds the spec's own); two HA stacks at once would still meet: callers run
under `flock /tmp/wtx-ha.lock` (`make test` runs them one after another).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from tests.support.moved_spec import moved_spec
from tests.support.processes import kill_processes_naming

from wtx.backends.local import LocalBackend, backups
from wtx.backends.local.patroni import HACluster

ROOT = Path(__file__).resolve().parents[2]
ORDERS_TABLE = ("CREATE TABLE IF NOT EXISTS ha_probe_orders (idempotency_key uuid PRIMARY KEY, "
                "placed_at timestamptz NOT NULL DEFAULT clock_timestamp())")


@dataclass
class HAStack:
    backend: LocalBackend
    ha: HACluster
    dsn: str  # the app's role through the entry point (HAProxy → the leader)
    var: Path

    def place_orders(self, n: int) -> list[str]:
        """`n` orders (rows with an idempotency key) committed through the entry point."""
        keys = [str(uuid.uuid4()) for _ in range(n)]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for key in keys:
                conn.execute("INSERT INTO ha_probe_orders (idempotency_key) VALUES (%s)", (key,))
        return keys

    def orders(self) -> set[str]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return {str(r[0]) for r in conn.execute("SELECT idempotency_key FROM ha_probe_orders")}


@contextmanager
def ha_stack(prefix: str = "wtx-ha-", *, with_backups: bool = True) -> Iterator[HAStack]:
    """The stack up (about 15 s), then its data marker, pgBackRest config and stanza; on leaving
    scratch copies dropped, every program stopped and the var dir removed (`keep_logs` first
    to keep the logs of a failed run)."""
    if not shutil.which("etcd") or not Path("/usr/sbin/haproxy").exists():
        raise RuntimeError("etcd-server and haproxy are required (.ci/install-deps installs them)")
    # Patroni's virtualenv, installed once per lock and shared by every run (WTX_TOOLS_DIR).
    os.environ.setdefault("WTX_TOOLS_DIR", str(Path(tempfile.gettempdir()) / "wtx-tools"))
    var = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    var.chmod(0o711)
    spec = moved_spec(var / "spec")
    backend = LocalBackend(spec, ROOT, var)
    prd = spec.env("prd")
    try:
        with backend.locked():
            backend.supervisor.start()
            backend.ha_up(prd, progress=print)
            if with_backups:
                backups.prepare_cluster(backend, prd, progress=print)
        ha = backend.ha_cluster(prd)
        assert ha is not None
        db = prd.database
        password = backend.secrets(prd)["DB_PASSWORD"]
        dsn = (f"host={backend.database_host(prd)} port={db.port} dbname={db.name} user={db.role} "
               f"password={password} connect_timeout=5 options='-c statement_timeout=10000'")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(ORDERS_TABLE)
        yield HAStack(backend=backend, ha=ha, dsn=dsn, var=var)
    finally:
        try:
            backups.drop_scratch(backend, "prd", None)
        finally:
            backend.supervisor.shutdown(timeout=90)
            kill_processes_naming(var)
            shutil.rmtree(var, ignore_errors=True)


def keep_logs(stack: HAStack) -> Path:
    """A copy of prd's logs (Patroni, PostgreSQL, etcd, pgBackRest) that outlives the var dir."""
    kept = Path(tempfile.mkdtemp(prefix="wtx-ha-logs-"))
    shutil.copytree(stack.backend.layout.logs_dir("prd"), kept / "logs", dirs_exist_ok=True)
    pgbr_log = stack.backend.layout.pgbackrest_dir("prd") / "log"
    if pgbr_log.is_dir():
        shutil.copytree(pgbr_log, kept / "pgbackrest", dirs_exist_ok=True)
    return kept


class Writer:
    """`threads` threads placing orders through the entry point, each order retried with its
    idempotency key until acknowledged (as the app does across a failover); the times of the
    acknowledgements give the longest stretch without write service. Bounded: every thread
    stops by itself after 300 s."""

    def __init__(self, dsn: str, threads: int = 1) -> None:
        self.dsn = dsn
        self.acknowledged: list[str] = []
        self.commits: list[float] = []  # monotonic time of each acknowledgement
        self.errors = 0  # failed attempts (each retried)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Writer:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        key: str | None = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (self._stop.is_set() and key is None):
            key = key or str(uuid.uuid4())
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True)
                conn.execute("INSERT INTO ha_probe_orders (idempotency_key) VALUES (%s) "
                             "ON CONFLICT (idempotency_key) DO NOTHING", (key,))
            except psycopg.Error:
                with self._lock:
                    self.errors += 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
                continue
            with self._lock:
                self.acknowledged.append(key)
                self.commits.append(time.monotonic())
            key = None
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def acknowledged_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for c in self.commits if c > since)

    def longest_gap(self, since: float) -> float:
        """The longest stretch without an acknowledged commit, from `since` on."""
        with self._lock:
            times = [since] + sorted(c for c in self.commits if c > since)
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("inf"))

    def wait_writes(self, since: float, count: int = 20, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged_since(since) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no write service within {timeout:.0f}s")
            time.sleep(0.1)
