"""An environment's highly available database: etcd and Patroni members, rendered from the spec.

`database.ha` (wtx.spec_ha) names a PostgreSQL member per host and an etcd member per host.
Each becomes a supervisord program: `<env>-etcd-<host>` and `<env>-patroni-<host>` (Patroni
runs as the `postgres` user and starts PostgreSQL itself). Every address comes from the
spec's [hosts]; nothing here assumes the loopback address.

Files, under var/envs/<env>/ha/:
  cluster.env          the cluster's own passwords (replication, pg_rewind, superuser, REST
                       API), generated once, 0600; never in the spec, a log or a release
  <host>/patroni.yml   one member's Patroni config (JSON, which YAML reads), 0600, postgres's
  <host>/pgdata        its PostgreSQL data directory (Patroni runs initdb or pg_basebackup)
  <host>/sock          its unix socket directory (wtx administers the leader through it)
  etcd-<host>/         one etcd member's data directory
Patroni itself lives in var/tools/patroni-<hash of deploy/patroni.lock>/, a virtualenv built
from /usr/bin/python3 with the lock's hashes (the postgres user must be able to execute it).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets as _random
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wtx.backends.local.layout import TRAVERSABLE_DIR_MODE, Layout
from wtx.backends.local.postgres import (
    PG_BIN,
    PG_USER,
    Cluster,
    _chown_to_postgres,
    ensure_reachable,
)
from wtx.backends.local.supervisor import Program
from wtx.spec import Environment, Spec
from wtx.spec_ha import DatabaseHA, EtcdMember, HAMember

PATRONI_LOCK = Path("deploy") / "patroni.lock"
SYSTEM_PYTHON = "/usr/bin/python3"
ETCD = os.environ.get("WTX_ETCD", "/usr/bin/etcd")
CLUSTER_SECRETS = ("REPLICATION_PASSWORD", "REWIND_PASSWORD", "SUPERUSER_PASSWORD", "REST_PASSWORD")
REPLICATION_USER = "replicator"
REWIND_USER = "rewinder"
REST_USER = "wtx"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class PatroniError(RuntimeError):
    pass


def postgresql_parameters(env: Environment, member: HAMember, sockdir: Path) -> dict[str, Any]:
    """The PostgreSQL settings of one member (Patroni's local `postgresql.parameters`).

    THE place for per-member settings, e.g. WAL archiving (archive_mode, archive_command):
    Patroni applies them on every member, reloads on change and marks a restart pending when
    one needs it. Settings every member must share (wal_level, max_connections, …) are
    Patroni's own and live in cluster_parameters()."""
    return {
        "unix_socket_directories": str(sockdir),
        "password_encryption": "scram-sha-256",
        "shared_buffers": "64MB",
        "logging_collector": "off",
        "log_min_messages": "warning",
        "log_connections": "off",
        "log_timezone": "UTC",  # `wtx logs` shows every file's times in UTC
        "log_line_prefix": "%m [%p] ",
    }


def cluster_parameters() -> dict[str, Any]:
    """Settings Patroni keeps identical on every member (its dynamic configuration)."""
    return {
        "max_connections": 100,
        "wal_level": "replica",
        "wal_log_hints": "on",  # pg_rewind: the old leader rejoins without a fresh copy
        "hot_standby": "on",
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "256MB",
        # A standby whose leader restarted (or changed) reconnects within half a second, not
        # PostgreSQL's 5 s: synchronous commits wait for it, so this is write downtime.
        "wal_retrieve_retry_interval": "500ms",
    }


@dataclass(frozen=True)
class HAPaths:
    layout: Layout
    env: str

    @property
    def root(self) -> Path:
        return self.layout.env_dir(self.env) / "ha"

    @property
    def secrets_file(self) -> Path:
        return self.root / "cluster.env"

    def member_dir(self, host: str) -> Path:
        return self.root / host

    def pgdata(self, host: str) -> Path:
        return self.member_dir(host) / "pgdata"

    def sockdir(self, host: str) -> Path:
        return self.member_dir(host) / "sock"

    def config(self, host: str) -> Path:
        return self.member_dir(host) / "patroni.yml"

    def etcd_dir(self, host: str) -> Path:
        return self.root / f"etcd-{host}"

    def host_down_marker(self, host: str) -> Path:
        """Present while a test or drill holds `host` dead (its programs refuse to start)."""
        return self.layout.var_dir / "hosts-down" / host


def etcd_program_name(env: str, host: str) -> str:
    return f"{env}-etcd-{host}"


def patroni_program_name(env: str, host: str) -> str:
    return f"{env}-patroni-{host}"


def venv_dir(layout: Layout, root: Path) -> Path:
    lock = root / PATRONI_LOCK
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12] if lock.is_file() else "unlocked"
    # WTX_TOOLS_DIR: one installation shared by several var dirs (tests, drills).
    tools = Path(os.environ["WTX_TOOLS_DIR"]) if os.environ.get("WTX_TOOLS_DIR") else layout.var_dir / "tools"
    return tools / f"patroni-{digest}"


def ensure_venv(layout: Layout, root: Path) -> Path:
    """Patroni's virtualenv (built once per lock), readable and executable by postgres."""
    if not (root / PATRONI_LOCK).is_file():
        raise PatroniError(f"{root / PATRONI_LOCK} is missing: Patroni is installed only from its lock")
    venv = venv_dir(layout, root)
    done = venv / ".installed"
    if done.exists():
        return venv
    tools = venv.parent
    tools.mkdir(parents=True, exist_ok=True)
    if (tools.stat().st_mode & 0o7777) != TRAVERSABLE_DIR_MODE:
        tools.chmod(TRAVERSABLE_DIR_MODE)
    shutil.rmtree(venv, ignore_errors=True)
    run = dict(capture_output=True, text=True, umask=0o022, timeout=600)
    res = subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], **run)  # type: ignore[call-overload]
    if res.returncode == 0:
        res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                              "--require-hashes", "-r", str(root / PATRONI_LOCK)], **run)  # type: ignore[call-overload]
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines()
        raise PatroniError(f"installing Patroni ({PATRONI_LOCK}) failed: {lines[-1] if lines else res.returncode}")
    venv.chmod(0o755)
    done.write_text("ok\n")
    return venv


def cluster_secrets(paths: HAPaths) -> dict[str, str]:
    """The cluster's own passwords: generated once into cluster.env (0600), then read."""
    path = paths.secrets_file
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep:
                values[name.strip()] = value.strip()
    missing = [n for n in CLUSTER_SECRETS if not values.get(n)]
    if missing:
        for name in missing:
            values[name] = _random.token_hex(24)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{n}={values[n]}\n" for n in CLUSTER_SECRETS))
        tmp.replace(path)
    return values


class HACluster:
    """The Patroni cluster of one environment, as the spec and the local layout place it."""

    def __init__(self, spec: Spec, env: Environment, layout: Layout, root: Path,
                 archive: Callable[[Path], dict[str, str]] | None = None) -> None:
        assert env.database.ha is not None
        self.spec, self.env, self.layout, self.root = spec, env, layout, root
        # WAL archiving (pgbackrest.archive_settings, given a member's data directory) on every
        # member: whichever leads archives.
        self._archive = archive
        self.ha: DatabaseHA = env.database.ha
        self.paths = HAPaths(layout, env.name)
        self.scope = f"wtx-{env.name}"

    def archive(self, host: str) -> dict[str, str]:
        """`host`'s archive settings; wal_level is Patroni's cluster-wide setting
        (cluster_parameters), never a member's."""
        found = self._archive(self.paths.pgdata(host)) if self._archive else {}
        return {k: v for k, v in found.items() if k != "wal_level"}

    # -- where things are ---------------------------------------------------------------------
    def address(self, host: str) -> str:
        return self.spec.hosts[host].address

    def member(self, host: str) -> HAMember:
        return next(m for m in self.ha.members if m.host == host)

    @property
    def entry_address(self) -> str:
        """Where apps connect: HAProxy's listener on the front door's host."""
        return self.spec.front_door_host.address

    def member_cluster(self, host: str) -> Cluster:
        """The member's PostgreSQL as a Cluster (administered through its unix socket)."""
        m = self.member(host)
        return Cluster(pgdata=self.paths.pgdata(host), sockdir=self.paths.sockdir(host), port=m.port,
                       log_dir=self.layout.logs_dir(self.env.name), var_dir=self.layout.var_dir)

    def hosts(self) -> list[str]:
        """Every host with a member of either kind, database members first."""
        names = [m.host for m in self.ha.members]
        return names + [e.host for e in self.ha.etcd if e.host not in names]

    # -- rendering -----------------------------------------------------------------------------
    def etcd_urls(self, kind: str) -> list[str]:
        return [f"http://{self.address(e.host)}:{e.client_port if kind == 'client' else e.peer_port}"
                for e in self.ha.etcd]

    def etcd_command(self, e: EtcdMember) -> list[str]:
        addr = self.address(e.host)
        cluster = ",".join(f"{x.host}=http://{self.address(x.host)}:{x.peer_port}" for x in self.ha.etcd)
        return [
            ETCD, "--name", e.host, "--data-dir", str(self.paths.etcd_dir(e.host)),
            "--listen-client-urls", f"http://{addr}:{e.client_port}",
            "--advertise-client-urls", f"http://{addr}:{e.client_port}",
            "--listen-peer-urls", f"http://{addr}:{e.peer_port}",
            "--initial-advertise-peer-urls", f"http://{addr}:{e.peer_port}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", self.scope,
            "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap",
        ]

    def pg_hba(self) -> list[str]:
        """As tight as a plain cluster's: the superuser only over the socket, replication and
        pg_rewind only between members, the app's role only to its database and only from the
        front door (HAProxy forwards the app's connections)."""
        db = self.env.database
        members = sorted({self.address(m.host) for m in self.ha.members})
        lines = ["local all postgres peer"]
        lines += [f"host replication {REPLICATION_USER} {a}/32 scram-sha-256" for a in members]
        lines += [f"host postgres {REWIND_USER} {a}/32 scram-sha-256" for a in members]
        lines.append(f"host {db.name} {db.role} {self.entry_address}/32 scram-sha-256")
        return lines

    def patroni_config(self, host: str, pw: dict[str, str]) -> dict[str, Any]:
        m, addr = self.member(host), self.address(host)
        ha = self.ha
        return {
            "scope": self.scope,
            "namespace": "/wtx/",
            "name": host,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {
                "listen": f"{addr}:{m.rest_port}",
                "connect_address": f"{addr}:{m.rest_port}",
                "authentication": {"username": REST_USER, "password": pw["REST_PASSWORD"]},
            },
            "etcd3": {"hosts": [f"{self.address(e.host)}:{e.client_port}" for e in ha.etcd]},
            "bootstrap": {
                "dcs": {
                    "ttl": ha.ttl, "loop_wait": ha.loop_wait, "retry_timeout": ha.retry_timeout,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": ha.synchronous,
                    # Strict mode would refuse every write while the only standby is away.
                    "synchronous_mode_strict": False,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                   "parameters": cluster_parameters()},
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{addr}:{m.port}",
                "connect_address": f"{addr}:{m.port}",
                "data_dir": str(self.paths.pgdata(host)),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.paths.member_dir(host) / "pgpass"),
                "use_unix_socket": True,
                "authentication": {
                    "superuser": {"username": PG_USER, "password": pw["SUPERUSER_PASSWORD"]},
                    "replication": {"username": REPLICATION_USER, "password": pw["REPLICATION_PASSWORD"]},
                    "rewind": {"username": REWIND_USER, "password": pw["REWIND_PASSWORD"]},
                },
                "parameters": {**postgresql_parameters(self.env, m, self.paths.sockdir(host)), **self.archive(host)},
                "pg_hba": self.pg_hba(),
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def write_configs(self) -> None:
        """Every member's directories and Patroni config (0600, postgres's)."""
        ensure_reachable(self.paths.member_dir(self.ha.members[0].host) / "x", self.layout.var_dir)
        pw = cluster_secrets(self.paths)
        for m in self.ha.members:
            member_dir = self.paths.member_dir(m.host)
            member_dir.mkdir(mode=0o700, exist_ok=True)
            _chown_to_postgres(member_dir)
            member_dir.chmod(0o700)
            sock = self.paths.sockdir(m.host)
            sock.mkdir(mode=0o700, exist_ok=True)
            _chown_to_postgres(sock)
            text = json.dumps(self.patroni_config(m.host, pw), indent=2) + "\n"
            path = self.paths.config(m.host)
            if not path.exists() or path.read_text() != text:
                tmp = path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)
                _chown_to_postgres(tmp)
                tmp.replace(path)
        for e in self.ha.etcd:
            d = self.paths.etcd_dir(e.host)
            d.mkdir(mode=0o700, exist_ok=True)

    # -- programs ------------------------------------------------------------------------------
    def _guarded(self, host: str, argv: list[str]) -> str:
        """`argv`, unless the host is held dead (then it exits at once and supervisord gives up)."""
        marker = shlex.quote(str(self.paths.host_down_marker(host)))
        return shlex.join(["/bin/sh", "-c", f"if [ -e {marker} ]; then echo host {host} is down; exit 1; fi; "
                                            f"exec {shlex.join(argv)}"])

    def programs(self, venv: Path) -> list[Program]:
        logs = self.layout.logs_dir(self.env.name)
        lg = self.env.logging
        out = []
        for e in self.ha.etcd:
            out.append(Program(
                name=etcd_program_name(self.env.name, e.host), command=self._guarded(e.host, self.etcd_command(e)),
                directory=self.paths.etcd_dir(e.host), stdout_log=logs / f"etcd-{e.host}.log", host=e.host,
                startsecs=1, startretries=3, stopwaitsecs=10, stopasgroup=True,
                environment={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                log_max_mb=lg.max_file_mb, log_keep=lg.keep_files,
            ))
        for m in self.ha.members:
            argv = [str(venv / "bin" / "patroni"), str(self.paths.config(m.host))]
            out.append(Program(
                # Patroni stops PostgreSQL itself on TERM (fast shutdown): never kill its group.
                name=patroni_program_name(self.env.name, m.host), command=self._guarded(m.host, argv),
                directory=self.paths.member_dir(m.host), stdout_log=logs / f"patroni-{m.host}.log", host=m.host,
                # Started by wtx, the first member first (it bootstraps a new cluster).
                autostart=False, user=PG_USER, startsecs=2, startretries=3, stopwaitsecs=60, stopasgroup=False,
                # TZ: Patroni writes its log's times in the process's zone; `wtx logs` reads UTC.
                environment={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "TZ": "UTC",
                             "HOME": str(self.paths.member_dir(m.host))},
                log_max_mb=lg.max_file_mb, log_keep=lg.keep_files,
            ))
        return out
