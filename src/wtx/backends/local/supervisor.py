"""supervisord: one per host; it runs and restarts every process placed on that host.

Every this-machine host shares one supervisord (var/supervisor/); a netns host has its own
(var/supervisor/hosts/<host>/), started inside the namespace, so killing the host kills it
and everything it runs, and nothing restarts them until the host is powered on again. A
Program declares its host; supervisors.py sends it to that host's supervisord.

The main config is rendered once; each environment's programs live in their own file under
conf.d/ (an `[include]`), so a deploy can add or change one slot's program and apply it with
the XML-RPC API (reloadConfig + add/removeProcessGroup, what `supervisorctl update` does)
without touching any other process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client  # nosec B411 # only supervisord's own socket (0700, this user's) answers it
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from wtx.backends.local.layout import UMASK, Layout, private_dir

MAIN_CONF = """\
; Rendered by wtx from deploy/environments.toml; edits are overwritten.
[supervisord]
logfile={log}
logfile_maxbytes=10MB
logfile_backups=3
umask=077
pidfile={pid}
childlogdir={childlogdir}
directory={var_dir}
nodaemon=false
silent=true

[unix_http_server]
file={sock}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sock}

[include]
files = {include}/*.conf
"""


@dataclass
class Program:
    """One supervised process (rendered as a `[program:NAME]` section)."""

    name: str
    command: str
    directory: Path
    stdout_log: Path
    user: str | None = None
    autostart: bool = True
    startsecs: int = 1
    startretries: int = 3
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    stopasgroup: bool = True
    environment: dict[str, str] = field(default_factory=dict)
    # stderr to its own file (else into stdout's); both rotated at max_mb, keep old files.
    stderr_log: Path | None = None
    log_max_mb: int = 20
    log_keep: int = 5
    # "true" (a server: always restarted) or "false" (a one-shot that ends on its own).
    autorestart: str = "true"
    # The spec host ([hosts]) it runs on: its supervisord is that host's (None: this machine's
    # shared supervisord).
    host: str | None = None

    def render(self) -> str:
        # Supervisor expands %(...)s in values, so a literal % is doubled.
        def esc(value: str) -> str:
            return value.replace("%", "%%")

        lines = [
            f"[program:{self.name}]",
            f"command={esc(self.command)}",
            f"directory={self.directory}",
            f"autostart={'true' if self.autostart else 'false'}",
            f"autorestart={self.autorestart}",
            "umask=077",
            f"startsecs={self.startsecs}",
            f"startretries={self.startretries}",
            f"stopsignal={self.stopsignal}",
            f"stopwaitsecs={self.stopwaitsecs}",
            f"stopasgroup={'true' if self.stopasgroup else 'false'}",
            f"killasgroup={'true' if self.stopasgroup else 'false'}",
            f"redirect_stderr={'false' if self.stderr_log else 'true'}",
            f"stdout_logfile={self.stdout_log}",
            f"stdout_logfile_maxbytes={self.log_max_mb}MB",
            f"stdout_logfile_backups={self.log_keep}",
        ]
        if self.stderr_log:
            lines += [
                f"stderr_logfile={self.stderr_log}",
                f"stderr_logfile_maxbytes={self.log_max_mb}MB",
                f"stderr_logfile_backups={self.log_keep}",
            ]
        if self.user:
            lines.append(f"user={self.user}")
        if self.environment:
            pairs = ",".join(f'{k}="{esc(v)}"' for k, v in sorted(self.environment.items()))
            lines.append(f"environment={pairs}")
        return "\n".join(lines) + "\n"


def render_programs(programs: list[Program]) -> str:
    header = "; Rendered by wtx; one environment's programs. Edits are overwritten.\n\n"
    return header + "\n".join(p.render() for p in programs)


class SupervisorError(RuntimeError):
    pass


class Supervisor:
    """One supervisord: the shared one (`host` None) or a separate host's, whose command is
    wrapped by `argv` to start it on that host."""

    def __init__(self, layout: Layout, host: str | None = None,
                 argv: Callable[[list[str]], list[str]] | None = None) -> None:
        self.layout = layout
        self.host = host
        self.argv = argv or list
        self.home = layout.supervisor_dir if host is None else layout.supervisor_dir / "hosts" / host
        self.conf = self.home / "supervisord.conf"
        self.sock = self.home / "supervisor.sock"
        self.pid_file = self.home / "supervisord.pid"
        self.include_dir = self.home / "conf.d"

    def program_file(self, key: str) -> Path:
        return self.include_dir / f"{key}.conf"

    # -- lifecycle ---------------------------------------------------------------------------
    def write_main_conf(self) -> None:
        lay = self.layout
        private_dir(self.include_dir, base=lay.var_dir)
        private_dir(self.home / "child", base=lay.var_dir)
        text = MAIN_CONF.format(
            log=self.home / "supervisord.log",
            pid=self.pid_file,
            childlogdir=self.home / "child",
            var_dir=lay.var_dir,
            sock=self.sock,
            include=self.include_dir,
        )
        _write_if_changed(self.conf, text, mode=0o600)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def running(self) -> bool:
        if self.pid() is None:
            return False
        try:
            self.rpc().getState()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False
        return True

    def start(self, timeout: float = 15.0) -> None:
        """Start supervisord (it daemonizes) unless it already runs for this var dir."""
        self.write_main_conf()
        if self.running():
            return
        self.sock.unlink(missing_ok=True)
        # A clean environment: nothing of the caller's (PYTHONPATH, a virtualenv, DJANGO_*)
        # may leak into the programs; each gets exactly what its own config gives it.
        clean = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.layout.var_dir),
        }
        subprocess.run(
            self.argv([sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)]),
            check=True,
            cwd=self.layout.var_dir,
            stdin=subprocess.DEVNULL,
            env=clean,
            umask=UMASK,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running():
                return
            time.sleep(0.1)
        where = f" on host {self.host}" if self.host else ""
        raise SupervisorError(f"supervisord{where} did not start within {timeout:.0f}s")

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop every program, then supervisord itself; waits until its process is gone."""
        pid = self.pid()
        if pid is None:
            return
        try:
            self.rpc().shutdown()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    # -- XML-RPC -----------------------------------------------------------------------------
    def rpc(self) -> Any:
        url = f"unix://{self.sock}"
        proxy = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, url)
        )
        return proxy.supervisor

    def write_programs(self, env: str, programs: list[Program]) -> None:
        path = self.program_file(env)
        if programs:
            _write_if_changed(path, render_programs(programs), mode=0o600)
        else:
            path.unlink(missing_ok=True)

    def update(self, only: set[str] | None = None) -> None:
        """Apply config changes like `supervisorctl update`, limited to `only` when given.

        A changed group is stopped, removed and added again (and so started if autostart);
        callers change a running program's definition only when they mean to restart it.
        """
        sup = self.rpc()
        added, changed, removed = sup.reloadConfig()[0]
        for name in removed:
            if only is not None and name not in only:
                continue
            try:
                sup.stopProcessGroup(name)
            except xmlrpc.client.Fault:
                pass
            sup.removeProcessGroup(name)
        for name in changed:
            if only is not None and name not in only:
                continue
            try:
                sup.stopProcessGroup(name)
            except xmlrpc.client.Fault:
                pass
            sup.removeProcessGroup(name)
            sup.addProcessGroup(name)
        for name in added:
            if only is not None and name not in only:
                continue
            sup.addProcessGroup(name)

    def info(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.rpc().getProcessInfo(name))
        except xmlrpc.client.Fault:
            return None

    def all_info(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: dict(p) for p in self.rpc().getAllProcessInfo()}

    def start_program(self, name: str, wait: bool = False) -> None:
        try:
            self.rpc().startProcess(name, wait)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in str(exc):
                raise SupervisorError(f"cannot start {name}: {exc.faultString}") from exc

    def stop_program(self, name: str) -> None:
        try:
            self.rpc().stopProcess(name, True)
        except xmlrpc.client.Fault as exc:
            if "NOT_RUNNING" not in str(exc) and "BAD_NAME" not in str(exc):
                raise SupervisorError(f"cannot stop {name}: {exc.faultString}") from exc

    def signal_program(self, name: str, sig: str) -> None:
        self.rpc().signalProcess(name, sig)

    def state(self, name: str) -> str:
        info = self.info(name)
        return "ABSENT" if info is None else str(info["statename"])

    def wait_running(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(name)
            if state == "RUNNING":
                return
            if state in ("FATAL", "ABSENT"):
                break
            time.sleep(0.1)
        raise SupervisorError(f"{name} is {self.state(name)}, not RUNNING")


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
    return True
