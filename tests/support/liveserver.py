"""WonderTix served by gunicorn with several worker processes, for tests and benchmarks.

The server runs exactly as a deployment would (DEBUG off, JSON logs, random secrets,
Prometheus multiprocess metrics), on 127.0.0.1 at a free port, in its own process group so
`stop()` ends gunicorn and every worker even when a test fails half way.

    with LiveServer(database_url) as srv:
        httpx.get(srv.url + "/readyz")
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx
from tests.support.pgcluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def app_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment a WonderTix process is started with (12-factor: all config here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WONDERTIX_", "PROMETHEUS_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "wondertix.settings",
            "PYTHONPATH": str(ROOT / "src"),
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "WONDERTIX_ENV": "test",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "STAFF_API_TOKEN_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PAYMENT_PROVIDER": "test",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            # Every test client is 127.0.0.1: one "client" firing the races. The per-client
            # hold caps are proven by their own tests (a server started with them on).
            "HOLD_SEATS_PER_CLIENT": "0",
            "HOLDS_PER_CLIENT_PER_MINUTE": "0",
        }
    )
    env.update(overrides)
    return env


def manage(database_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run a management command against that database (e.g. `migrate`)."""
    proc = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env or app_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage {' '.join(args)} failed: {proc.stderr[-3000:]}")
    return proc.stdout


class LiveServer:
    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 4,
        worker_class: str = "sync",
        threads: int = 1,
        migrate: bool = True,
        collectstatic: bool = False,
        wait_for: str = "/readyz",
        env: dict[str, str] | None = None,
        gunicorn_args: list[str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.migrate = migrate
        self.collectstatic = collectstatic
        self.wait_for = wait_for
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="wtx-live-"))
        (self.tmp / "metrics").mkdir()
        self.env = app_env(
            database_url,
            PROMETHEUS_MULTIPROC_DIR=str(self.tmp / "metrics"),
            WONDERTIX_VAR_DIR=str(self.tmp / "var"),
            STATIC_ROOT=str(self.tmp / "static"),
            **(env or {}),
        )
        self.gunicorn_args = gunicorn_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = self.tmp / "gunicorn.log"

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        try:
            if self.migrate:
                manage(self.database_url, "migrate", "--noinput", env=self.env)
            if self.collectstatic:
                # With DEBUG off, pages refer to hashed static files through the manifest
                # collectstatic writes (as a release build does); without it they answer 500.
                manage(self.database_url, "collectstatic", "--noinput", "-v", "0", env=self.env)
            cmd = [
                sys.executable, "-m", "gunicorn", "wondertix.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}",
                "--workers", str(self.workers),
                "--worker-class", self.worker_class,
                "--threads", str(self.threads),
                "--timeout", "60",
                "--graceful-timeout", "5",
                "--backlog", "2048",
                *self.gunicorn_args,
            ]
            with open(self.logfile, "ab") as log:
                self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(self.url + self.wait_for, timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s ({last}):\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The gunicorn master and its workers (for CPU accounting)."""
        if self.proc is None:
            return []
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True, check=False).stdout
        return [self.proc.pid, *(int(p) for p in out.split())]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
