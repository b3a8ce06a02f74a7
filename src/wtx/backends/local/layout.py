"""Where the local backend keeps its runtime state under var/ (one place, so nothing guesses)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wtx.render import envfile

SLOTS = ("blue", "green")


@dataclass(frozen=True)
class Layout:
    var_dir: Path

    # supervisord: one per var dir.
    @property
    def supervisor_dir(self) -> Path:
        return self.var_dir / "supervisor"

    @property
    def supervisor_conf(self) -> Path:
        return self.supervisor_dir / "supervisord.conf"

    @property
    def supervisor_sock(self) -> Path:
        return self.supervisor_dir / "supervisor.sock"

    @property
    def supervisor_pid(self) -> Path:
        return self.supervisor_dir / "supervisord.pid"

    @property
    def supervisor_include_dir(self) -> Path:
        return self.supervisor_dir / "conf.d"

    def program_file(self, env: str) -> Path:
        return self.supervisor_include_dir / f"{env}.conf"

    # HAProxy: the front door for every environment.
    @property
    def haproxy_dir(self) -> Path:
        return self.var_dir / "haproxy"

    @property
    def haproxy_cfg(self) -> Path:
        return self.haproxy_dir / "haproxy.cfg"

    @property
    def haproxy_sock(self) -> Path:
        return self.haproxy_dir / "admin.sock"

    @property
    def haproxy_log(self) -> Path:
        return self.haproxy_dir / "haproxy.log"

    # Per environment.
    def env_dir(self, env: str) -> Path:
        return self.var_dir / "envs" / env

    def logs_dir(self, env: str) -> Path:
        return self.env_dir(env) / "logs"

    def slots_file(self, env: str) -> Path:
        return self.env_dir(env) / "slots.json"

    def slot_env_file(self, env: str, slot: str) -> Path:
        return self.env_dir(env) / "run" / f"{slot}.env"

    def gunicorn_conf(self, env: str, slot: str) -> Path:
        """The slot's gunicorn config (rendered by the backend; release-independent)."""
        return self.env_dir(env) / "run" / f"gunicorn-{slot}.conf.py"

    def metrics_dir(self, env: str, slot: str) -> Path:
        """PROMETHEUS_MULTIPROC_DIR of one slot: emptied every time the slot starts."""
        return envfile.metrics_dir(env, slot, self.var_dir)

    def pgdata(self, env: str) -> Path:
        return self.env_dir(env) / "pgdata"

    def pgsock(self, env: str) -> Path:
        return self.env_dir(env) / "pgsock"

    def tls_dir(self, env: str) -> Path:
        return self.env_dir(env) / "tls"

    def sqlite_db(self, env: str) -> Path:
        return self.env_dir(env) / "db.sqlite3"

    # Releases (built by wtx.release, read-only forever) and their installs: one virtualenv
    # per release, outside the release directory.
    @property
    def releases_dir(self) -> Path:
        return self.var_dir / "releases"

    @property
    def venvs_dir(self) -> Path:
        return self.var_dir / "venvs"

    def release_venv(self, release_id: str) -> Path:
        return self.venvs_dir / release_id

    @property
    def deps_dir(self) -> Path:
        return self.var_dir / "deps"
