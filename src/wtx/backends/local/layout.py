"""Where the local backend keeps its runtime state under var/ (one place, so nothing guesses)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wtx.render import envfile

SLOTS = ("blue", "green")

# Everything under var/ is the operator's only (logs and mail hold order tokens and ticket
# codes): directories 0700, files 0600 (wtx and every process it starts run with umask 077).
# The exceptions are the directories the `postgres` user must pass through to reach its
# cluster: var/, var/envs/ and var/envs/<env>/ are 0711 (traversable, not listable).
UMASK = 0o077
PRIVATE_DIR_MODE = 0o700
TRAVERSABLE_DIR_MODE = 0o711


def private_dir(path: Path, *, base: Path) -> Path:
    """`path` created if missing, it and every directory between `base` and it 0700.

    `base` must be an ancestor (a directory wtx already made with its own mode); nothing at
    or above it is touched."""
    path = Path(path)
    chain = [path, *[p for p in path.parents if base in p.parents]]
    path.mkdir(parents=True, exist_ok=True)
    for directory in chain:
        if (directory.stat().st_mode & 0o7777) != PRIVATE_DIR_MODE:
            directory.chmod(PRIVATE_DIR_MODE)
    return path


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

    def host_dir(self, host: str) -> Path:
        """What lives on another host of the spec (locally a directory standing for it)."""
        return self.var_dir / "hosts" / host

    def backup_repo(self, host: str) -> Path:
        return self.host_dir(host) / "pgbackrest"

    def pgbackrest_dir(self, env: str) -> Path:
        return self.env_dir(env) / "pgbackrest"

    def dumps_dir(self, env: str) -> Path:
        return self.env_dir(env) / "dumps"

    def scratch_dir(self, env: str) -> Path:
        return self.env_dir(env) / "scratch"

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
