"""A throwaway PostgreSQL 15 cluster for integration tests and benchmarks.

The cluster lives in a temporary directory owned by the `postgres` user (initdb refuses to
run as root, and CI runs as root), listens on 127.0.0.1 at a free port plus a unix socket in
that directory, and keeps full durability (fsync and synchronous_commit on): the figures we
measure against it are the figures a real deployment would see. `stop()` removes everything,
also after a failed start.

    with PgCluster() as pg:
        url = pg.create_database("wondertix")   # a role + database of its own
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

PG_BIN = Path(os.environ.get("WONDERTIX_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUN_AS = "postgres"


def free_port() -> int:
    """A TCP port nobody listens on right now (bind port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    """Run as the postgres user when we are root; as ourselves otherwise."""
    if os.geteuid() == 0:
        return ["runuser", "-u", RUN_AS, "--", *cmd]
    return cmd


class PgError(RuntimeError):
    pass


class PgCluster:
    """initdb + pg_ctl around a temporary data directory. Use as a context manager."""

    def __init__(self, *, port: int | None = None, settings: dict[str, str] | None = None, prefix: str = "wtx-pg-") -> None:
        self.port = port or free_port()
        self.extra_settings = settings or {}
        self.prefix = prefix
        self.root: Path | None = None
        self.superuser_password = secrets.token_urlsafe(18)
        self._started = False

    # ------------------------------------------------------------------ paths

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self, cmd: list[str], *, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(_as_postgres(cmd), capture_output=True, text=True, timeout=timeout, cwd="/")
        if check and proc.returncode != 0:
            raise PgError(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def start(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise PgError(f"PostgreSQL binaries not found in {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix))
        try:
            if os.geteuid() == 0:
                pw = pwd.getpwnam(RUN_AS)
                os.chown(self.root, pw.pw_uid, pw.pw_gid)
            os.chmod(self.root, 0o700)
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.superuser_password + "\n")
            if os.geteuid() == 0:
                os.chown(pwfile, pw.pw_uid, pw.pw_gid)
            os.chmod(pwfile, 0o600)
            # --no-sync only skips flushing initdb's own template files (a throwaway cluster
            # that dies with the test); the running server below keeps fsync on.
            self._run(
                [
                    str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                    f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
                ],
                timeout=120,
            )
            pwfile.unlink()
            conf = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.socket_dir}'",
                "fsync": "on",
                "synchronous_commit": "on",
                "full_page_writes": "on",
                "max_connections": "200",
                "shared_buffers": "128MB",
                "log_min_messages": "warning",
                "log_line_prefix": "'%m [%p] %u@%d '",
                "deadlock_timeout": "1s",
            }
            conf.update(self.extra_settings)
            with open(self.datadir / "postgresql.conf", "a") as fh:
                fh.write("\n# throwaway test cluster\n")
                for key, value in conf.items():
                    fh.write(f"{key} = {value}\n")
            self._run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60", "start"],
                timeout=90,
            )
            self._started = True
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast, then immediate, then SIGKILL) and delete the directory."""
        if self.root is None:
            return
        if self._started and (self.datadir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                try:
                    proc = self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "20", "stop"], timeout=30, check=False)
                    if proc.returncode == 0:
                        break
                except subprocess.TimeoutExpired:
                    continue
            else:
                self._kill_postmaster()
        self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _kill_postmaster(self) -> None:
        pidfile = self.datadir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)

    def pause(self) -> None:
        """Stop the server but keep its data (to test what the app does without a database)."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "-t", "20", "stop"], timeout=30)
        self._started = False

    def crash(self) -> None:
        """Stop the server the hard way (`-m immediate`: every backend killed, no checkpoint,
        crash recovery at the next start), as when PostgreSQL dies during a failover."""
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "-t", "20", "stop"], timeout=30)
        self._started = False

    def resume(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60", "start"], timeout=90)
        self._started = True

    # ------------------------------------------------------------------ databases

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns psql's unaligned output."""
        proc = self._run(
            [str(PG_BIN / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
             "-d", database, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql],
            timeout=60,
        )
        return proc.stdout.strip()

    def create_database(self, name: str, *, owner: str | None = None) -> str:
        """A role (with a random password) owning a new database; returns its DATABASE_URL."""
        owner = owner or name
        password = secrets.token_urlsafe(18)
        self.psql(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{password}'")
        self.psql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.url(name, owner, password)

    def url(self, database: str, user: str, password: str) -> str:
        return f"postgres://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(database)}"

    def superuser_url(self, database: str = "postgres") -> str:
        return self.url(database, "postgres", self.superuser_password)

    def backend_pids(self) -> list[int]:
        """Every process of this cluster (postmaster and its children), for CPU accounting."""
        pidfile = self.datadir / "postmaster.pid"
        postmaster = int(pidfile.read_text().splitlines()[0])
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(postmaster)], capture_output=True, text=True, check=False).stdout
        return [postmaster, *(int(p) for p in out.split())]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
