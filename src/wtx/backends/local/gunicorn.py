"""gunicorn's config for one app slot, rendered by the backend (never shipped in a release).

The config is release-independent: whichever release a slot holds, it runs with the same
settings and hooks. Its `child_exit` hook tells prometheus_client that a worker died, so the
live gauges of dead workers drop out of /metrics (multiprocess mode,
PROMETHEUS_MULTIPROC_DIR). The directory itself is one per environment and slot and is
emptied by the slot's start command before gunicorn runs, so /metrics never mixes the
counters of two releases, or of a previous run of the slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

APP = "wondertix.wsgi:application"

TEMPLATE = '''\
# Rendered by wtx for {env}'s {slot} slot; edits are overwritten (see docs/operations.md).
# Release-independent: the same file serves whichever release the slot holds.
wsgi_app = {app!r}
bind = [{bind!r}]
workers = {workers}
# Threads: a health check is answered even while every worker is busy with a request
# (a sync worker would make it queue behind them and time out).
worker_class = "gthread"
threads = {threads}
preload_app = True
graceful_timeout = {graceful_timeout}
timeout = {timeout}
proc_name = {proc_name!r}
# Access lines to stdout, gunicorn's and the app's own log lines to stderr: supervisord
# writes each to its file under logs/ and rotates it (sizes from the spec's logging).
accesslog = "-"
access_log_format = {access_log_format!r}
errorlog = "-"
control_socket_disable = True

# HAProxy's health and readiness checks reach the app server directly, without the
# X-Request-Id the front door gives every client request: two lines a second per server that
# would bury the requests. A client's request to the same path (it has an id) is logged.
QUIET_PATHS = frozenset({quiet_paths!r})


from gunicorn.glogging import Logger as _Logger  # noqa: E402


class QuietProbesLogger(_Logger):
    def now(self):
        """The access line's time: UTC, to the millisecond (`wtx logs` merges by it)."""
        import datetime

        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        return stamp.replace("+00:00", "Z")

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO") in QUIET_PATHS and not environ.get("HTTP_X_REQUEST_ID"):
            return
        super().access(resp, req, environ, request_time)


logger_class = QuietProbesLogger


# An answer leaves in one write, head and body together. gunicorn writes them apart; an app
# server killed between the two (its host lost mid-request) handed the proxy a head without
# its body: an answer cut short, which the proxy can neither pass on whole nor send to another
# server. In one write it is either all in the kernel, and delivered, or not begun, and the
# proxy's retry on an empty answer sends it elsewhere (docs/operations.md).
from gunicorn import util as _util  # noqa: E402
from gunicorn.http import wsgi as _wsgi  # noqa: E402


class OneWriteResponse(_wsgi.Response):
    _head = b""

    def send_headers(self):
        """Keep the head for the first write of the body (or for close)."""
        if self.headers_sent:
            return
        tosend = self.default_headers()
        tosend.extend(["%s: %s\\r\\n" % (k, v) for k, v in self.headers])
        self._head = ("%s\\r\\n" % "".join(tosend)).encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data):
        if self.chunked:
            data = b"%X\\r\\n%s\\r\\n" % (len(data), data)
        head, self._head = self._head, b""
        _util.write(self.sock, head + data)

    def can_sendfile(self):
        return False  # a file is written as the body is: after the head, in the same write

    def close(self):
        if not self.headers_sent:
            self.send_headers()
        head, self._head = self._head, b""
        tail = b"0\\r\\n\\r\\n" if self.chunked else b""
        if head or tail:
            _util.write(self.sock, head + tail)


if hasattr(_wsgi.Response, "_emit_body"):  # the gunicorn whose writes this knows
    _wsgi.Response = OneWriteResponse


def child_exit(server, worker):
    """A worker is gone (exited, crashed or killed): drop its live gauges from /metrics."""
    import os

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:  # a release without prometheus_client has nothing to clean
        return
    multiprocess.mark_process_dead(worker.pid)
'''


@dataclass(frozen=True)
class GunicornConfig:
    env: str
    slot: str
    port: int
    workers: int
    quiet_paths: tuple[str, ...] = ("/healthz", "/readyz")
    threads: int = 4
    graceful_timeout: int = 20
    timeout: int = 30
    address: str = "127.0.0.1"  # the address of the host the slot runs on (spec [hosts])

    def access_log_format(self) -> str:
        return (
            f'env={self.env} slot={self.slot} ts=%(t)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms '
            'rid=%({x-request-id}i)s client=%({x-forwarded-for}i)s'
        )

    def render(self) -> str:
        return TEMPLATE.format(
            env=self.env, slot=self.slot, app=APP, bind=f"{self.address}:{self.port}",
            workers=self.workers, threads=self.threads, graceful_timeout=self.graceful_timeout,
            timeout=self.timeout, proc_name=f"wondertix-{self.env}-{self.slot}",
            quiet_paths=tuple(sorted({p.split("?", 1)[0] for p in self.quiet_paths})),
            access_log_format=self.access_log_format(),
        )


def write_config(path: Path, config: GunicornConfig) -> Path:
    """Write the config (atomically, only when it changed: supervisord compares commands, not
    files, but an unchanged file keeps its mtime for whoever looks)."""
    text = config.render()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return path
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
