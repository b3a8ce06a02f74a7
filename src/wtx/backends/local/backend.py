"""The local backend: every environment of the spec, side by side on this machine.

    HAProxy (front door, :8080 / :8443)
      ├─ be_dev  ── dev-blue | dev-green   (gunicorn) ── SQLite
      ├─ be_stg  ── stg-blue | stg-green   (gunicorn) ── PostgreSQL cluster :5533
      ├─ be_prd  ── prd-blue | prd-green   (gunicorn) ──┐
      │             bak-blue | bak-green   (backup)   ──┤
      └─ db_prd :5534 (TCP, to the leader) <───────────────┘
            ├─ Patroni + PostgreSQL on prd-db (leader)   ┐ etcd on prd-db, bak-db, witness
            └─ Patroni + PostgreSQL on bak-db (sync standby) ┘

supervisord runs every box above. Each environment has two color slots; one is active (on
traffic), the other idle (stopped, or holding the previous release for rollback).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import http.client
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from wtx import ledger, logview
from wtx import release as releases
from wtx.backends import DeployError, DeployResult, EnvStatus, FrontDoor, Progress
from wtx.backends.local import backups, dbha, guards, hastatus
from wtx.backends.local import haproxy as hap
from wtx.backends.local.gunicorn import GunicornConfig
from wtx.backends.local.gunicorn import write_config as write_gunicorn_config
from wtx.backends.local.hosts import LocalHosts
from wtx.backends.local.install import InstallError, install
from wtx.backends.local.layout import SLOTS, UMASK, Layout, private_dir
from wtx.backends.local.machines import HostFailures
from wtx.backends.local.patroni import HACluster, PatroniError, ensure_venv, venv_dir
from wtx.backends.local.postgres import Cluster, PostgresError
from wtx.backends.local.supervisor import Program, SupervisorError
from wtx.backends.local.supervisors import Supervisors
from wtx.hosts import HostError
from wtx.render.envfile import app_environment, default_database_url, write_envfile
from wtx.secrets import ensure_env_dir, ensure_secrets, read_secrets_file, secrets_path
from wtx.spec import Environment, Spec

T = TypeVar("T")
HAPROXY_PROGRAM = "haproxy"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Slots:
    """Which release each color slot holds, which one is on traffic, which ones run, and
    until when (epoch seconds) an idle slot is kept warm for an instant rollback."""

    active: str | None = None
    releases: dict[str, str] = field(default_factory=dict)
    running: dict[str, bool] = field(default_factory=dict)
    warm_until: dict[str, float] = field(default_factory=dict)

    def idle(self) -> str:
        return SLOTS[1] if self.active == SLOTS[0] else SLOTS[0]

    def active_release(self) -> str | None:
        return self.releases.get(self.active) if self.active else None

    def keep_warm(self, slot: str, now: float, window_s: int) -> bool:
        """`slot` just left traffic: keep it running for `window_s` seconds from `now`.
        False when the window is 0 (the caller stops it at once)."""
        if window_s <= 0 or slot == self.active or not self.running.get(slot):
            self.warm_until.pop(slot, None)
            return False
        self.warm_until[slot] = now + window_s
        return True

    def forget_warm(self, slot: str) -> None:
        """`slot` went on traffic, was stopped or got another release: no longer warm."""
        self.warm_until.pop(slot, None)

    def warm(self, now: float) -> tuple[str, str, float] | None:
        """(slot, release, until) of the idle slot kept warm at `now`, if any."""
        slot = self.idle()
        until = self.warm_until.get(slot)
        if until is None or until <= now or not self.running.get(slot) or not self.releases.get(slot):
            return None
        return slot, self.releases[slot], until

    def expired(self, now: float) -> list[str]:
        """Idle slots whose warm window has passed and that still run (to be stopped)."""
        return [slot for slot, until in sorted(self.warm_until.items())
                if slot != self.active and until <= now and self.running.get(slot)]

    def next_expiry(self) -> float | None:
        """When the next warm window of an idle, running slot ends (None: nothing is warm)."""
        pending = [until for slot, until in self.warm_until.items()
                   if slot != self.active and self.running.get(slot)]
        return min(pending) if pending else None


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


class LocalBackend:
    def __init__(self, spec: Spec, root: Path, var_dir: Path) -> None:
        self.spec = spec
        self.root = Path(root)
        self.var_dir = Path(var_dir).resolve()
        # Its path is written into supervisord.conf, haproxy.cfg and every program's command
        # line unquoted: a space, quote, '%', ';' or '#' there would cut a directive in two.
        if not re.fullmatch(r"[A-Za-z0-9._/+-]+", str(self.var_dir)):
            raise DeployError(
                f"the var dir {str(self.var_dir)!r} may hold only letters, digits and '._/+-' "
                "(it is written into supervisord.conf and haproxy.cfg); set WTX_VAR_DIR to such a path")
        self.layout = Layout(self.var_dir)
        try:
            self.hosts = LocalHosts(spec, self.var_dir)
        except HostError as exc:
            raise DeployError(str(exc)) from None
        self.supervisor = Supervisors(self.layout, self.hosts)
        self.runtime = hap.RuntimeApi(self.layout.haproxy_sock)

    # ========================================================================================
    # Small helpers
    # ========================================================================================
    @contextmanager
    def locked(self) -> Iterator[None]:
        """One operation at a time per var dir (two deploys must never interleave)."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with open(self.var_dir / ".wtx-backend.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def env(self, name: str) -> Environment:
        return self.spec.env(name)

    def primary(self, env: Environment) -> Environment:
        return self.spec.primary_for(env)

    def backup(self, env: Environment) -> Environment | None:
        return self.spec.backup_for(env)

    def ordered(self, names: list[str] | None) -> list[Environment]:
        """Environments in bring-up order: primaries before their backups."""
        wanted = list(self.spec.environments) if not names else names
        envs = [self.env(n) for n in wanted]
        return sorted(envs, key=lambda e: (e.is_backup, list(self.spec.environments).index(e.name)))

    def secrets(self, env: Environment) -> dict[str, str]:
        # The environment directory's mode (0711) is wtx.secrets' one rule, kept there.
        return ensure_secrets(env, self.spec, self.var_dir)

    def owns_cluster(self, env: Environment) -> bool:
        db = env.database
        if db.engine != "postgresql":
            return False
        if env.is_backup:
            primary = self.primary(env).database
            return not (primary.engine == "postgresql" and primary.port == db.port)
        return True

    def cluster_env(self, env: Environment) -> Environment | None:
        """The environment whose cluster serves `env`'s database (None for SQLite)."""
        if env.database.engine != "postgresql":
            return None
        return env if self.owns_cluster(env) else self.primary(env)

    def ha_cluster(self, env: Environment) -> HACluster | None:
        """The Patroni cluster serving `env`'s database (its own or its primary's), if any."""
        owner = self.primary(env)
        if not owner.database.ha:
            return None
        return HACluster(self.spec, owner, self.layout, self.root,
                         archive=partial(backups.cluster_settings, self, owner))

    def cluster(self, env: Environment) -> Cluster:
        """The PostgreSQL wtx administers for `env`: its plain cluster, or its HA cluster's
        current leader (through the leader's unix socket)."""
        ha = self.ha_cluster(env)
        if ha is not None:
            lead = dbha.leader(ha)
            if lead is None:
                raise PostgresError(f"{env.name}: no leader in its HA database ({dbha.describe(ha)}); "
                                    f"run `wtx up {self.primary(env).name}`")
            return ha.member_cluster(lead)
        assert env.database.port is not None
        return Cluster(
            pgdata=self.layout.pgdata(env.name),
            sockdir=self.layout.pgsock(env.name),
            port=env.database.port,
            log_dir=self.layout.logs_dir(env.name),
            var_dir=self.var_dir,
            address=self.address(env),
            clients=self.client_addresses(),
        )

    def address(self, env: Environment) -> str:
        """The address `env`'s app servers (and its own database) listen on: its host's."""
        return self.spec.host_of(env).address

    def client_addresses(self) -> tuple[str, ...]:
        """Where connections to a database come from: every host, and wtx itself (on this
        machine, or on the netns hosts' bridge)."""
        addrs = [h.address for h in self.spec.hosts.values()]
        if self.hosts.bridge is not None:
            addrs.append(self.hosts.bridge.address)
        return tuple(dict.fromkeys(addrs))

    def database_host(self, env: Environment) -> str:
        """The address apps reach `env`'s database at: an HA database's entry point is HAProxy
        on the front door's host; a plain cluster listens on its environment's host."""
        if self.spec.database_ha(env):
            return self.spec.front_door_host.address
        owner = self.cluster_env(env)
        return self.address(owner) if owner is not None else ""

    def database_url(self, env: Environment, secrets: dict[str, str]) -> str:
        url = default_database_url(env, self.spec, secrets, self.var_dir, host=self.database_host(env))
        if url.startswith("sqlite:///"):
            private_dir(Path(url.removeprefix("sqlite:///")).parent,
                        base=self.layout.env_dir(env.secrets_owner))
        return url

    def database_label(self, env: Environment) -> str:
        db = env.database
        if db.engine == "sqlite":
            url = default_database_url(env, self.spec, {}, self.var_dir)
            return f"sqlite {url.removeprefix('sqlite:///')}"
        owner = self.cluster_env(env)
        assert owner is not None
        shared = "" if owner.name == env.name else f" ({owner.name}'s cluster)"
        ha = self.ha_cluster(env)
        if ha is not None:
            shared = f" (HA: {dbha.summary(ha)})" + shared
        return f"postgresql {db.role}@{self.database_host(env)}:{db.port}/{db.name}{shared}"

    def slots(self, env: str) -> Slots:
        path = self.layout.slots_file(env)
        if not path.exists():
            return Slots()
        data = json.loads(path.read_text())
        return Slots(active=data.get("active"), releases=data.get("releases", {}),
                     running=data.get("running", {}), warm_until=data.get("warm_until", {}))

    def save_slots(self, env: str, slots: Slots) -> None:
        path = self.layout.slots_file(env)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(slots), indent=2) + "\n")
        tmp.replace(path)

    @staticmethod
    def program(env: str, slot: str) -> str:
        return f"{env}-{slot}"

    @staticmethod
    def db_program(env: str) -> str:
        return f"{env}-postgres"

    @staticmethod
    def jobs_program(env: str) -> str:
        return f"{env}-jobs"

    @staticmethod
    def warm_timer_program(env: str) -> str:
        return f"{env}-warm-timer"

    def port(self, env: Environment, slot: str) -> int:
        return env.app_port(SLOTS.index(slot))

    def release(self, release_id: str) -> releases.Release:
        try:
            return releases.get(release_id, self.var_dir)
        except releases.ReleaseError as exc:
            raise DeployError(str(exc)) from None

    def active_release(self, env: str) -> str | None:
        return self.slots(self.env(env).name).active_release()

    def release_python(self, release: releases.Release) -> Path:
        return self.install(release) / "bin" / "python"

    def front_door(self, env: str) -> FrontDoor:
        """HAProxy on loopback, as a client of `env` (a backup answers for its primary)."""
        e = self.primary(self.env(env))
        d = self.spec.defaults
        if e.access.tls:
            cafile = None if e.access.tls_certificate else self.layout.tls_dir(e.name) / "haproxy.pem"
            return FrontDoor(host=e.hostnames[0], port=d.haproxy_https_port, tls=True, cafile=cafile,
                             address=self.spec.front_door_host.address)
        auth = None
        if e.access.basic_auth:
            password = read_secrets_file(secrets_path(e.name, self.var_dir)).get("BASIC_AUTH_PASSWORD", "")
            auth = (e.access.basic_auth_user, password)
        return FrontDoor(host=e.hostnames[0], port=d.haproxy_http_port, basic_auth=auth,
                         address=self.spec.front_door_host.address)

    def app_door(self, env: str) -> FrontDoor:
        """The active slot's gunicorn on loopback, as HAProxy reaches it."""
        e = self.env(env)
        slot = self.slots(e.name).active
        if slot is None:
            raise DeployError(f"{env}: no app server is on traffic (run `wtx up {env}`)")
        return FrontDoor(host=(self.primary(e).hostnames or ["localhost"])[0], port=self.port(e, slot),
                         address=self.address(e))

    # ========================================================================================
    # Processes
    # ========================================================================================
    def app_values(self, env: Environment, rel: releases.Release, slot: str | None = None) -> dict[str, str]:
        """The variables `rel` runs with in `env`: in an app slot, or (slot None) one-off."""
        secrets = self.secrets(env)
        ensure_env_dir(env.name, self.var_dir)  # a backup's own directory too (0711)
        values = app_environment(
            env, self.spec, secrets, var_dir=self.var_dir,
            database_url=self.database_url(env, secrets), release_dir=rel.path, slot=slot,
        )
        own = self.layout.env_dir(env.name)
        private_dir(self.layout.logs_dir(env.name), base=own)
        for key in ("PROMETHEUS_MULTIPROC_DIR", "EMAIL_FILE_PATH"):
            if values.get(key):
                private_dir(Path(values[key]), base=own)
        values.setdefault("PATH", SYSTEM_PATH)
        values.setdefault("LANG", "C.UTF-8")
        values.setdefault("HOME", str(self.layout.env_dir(env.name)))
        return values

    def slot_command(self, env: Environment, slot: str, rel: releases.Release) -> str:
        """The slot's supervisord command: load its env file, empty its metrics directory,
        exec gunicorn with the slot's rendered config (release-independent: see gunicorn.py)."""
        venv = self.layout.release_venv(rel.id)
        values = self.app_values(env, rel, slot)
        private_dir(self.layout.slot_env_file(env.name, slot).parent, base=self.layout.env_dir(env.name))
        envfile = write_envfile(self.layout.slot_env_file(env.name, slot), values)
        d = self.spec.defaults
        conf = write_gunicorn_config(self.layout.gunicorn_conf(env.name, slot), GunicornConfig(
            env=env.name, slot=slot, port=self.port(env, slot), workers=env.app.replicas,
            quiet_paths=(d.health_check.path, d.readiness_path), address=self.address(env),
            timeout=self.spec.server_timeout_s(env),
        ))
        gunicorn = [str(venv / "bin" / "python"), "-m", "gunicorn", "--config", str(conf)]
        steps = [f"set -a && . {shlex.quote(str(envfile))} && set +a"]
        metrics_dir = values.get("PROMETHEUS_MULTIPROC_DIR")
        if metrics_dir:
            # Every (re)start of the slot begins with an empty directory: nothing of an
            # earlier release, or of workers from before a crash, reaches /metrics. This runs
            # before gunicorn (and its preloaded app) opens any file in it.
            quoted = shlex.quote(metrics_dir)
            steps.append(f"rm -rf {quoted} && mkdir -p {quoted}")
        steps.append("exec " + shlex.join(gunicorn))
        return shlex.join(["/bin/sh", "-c", " && ".join(steps)])

    def jobs_command(self, env: Environment, rel: releases.Release) -> str:
        """The recovery jobs (`wondertix run_jobs`: email outbox, payment reconciliation) of
        the release on traffic, at the spec's intervals."""
        values = self.app_values(env, rel)
        envfile = write_envfile(self.layout.slot_env_file(env.name, "jobs"), values)
        jobs = self.spec.defaults.jobs
        run_jobs = [str(self.layout.release_venv(rel.id) / "bin" / "wondertix"), "run_jobs",
                    "--outbox-every", str(jobs.outbox_every_s),
                    "--reconcile-payments-every", str(jobs.reconcile_payments_every_s)]
        steps = [f"set -a && . {shlex.quote(str(envfile))} && set +a", "exec " + shlex.join(run_jobs)]
        return shlex.join(["/bin/sh", "-c", " && ".join(steps)])

    def env_programs(self, env: Environment) -> list[Program]:
        logs = self.layout.logs_dir(env.name)
        programs: list[Program] = []
        host = self.spec.host_name(env)  # slots, jobs, timer and its own database: one host
        ha = self.ha_cluster(env) if self.owns_cluster(env) else None
        if ha is not None:
            programs += ha.programs(venv_dir(self.layout, self.root))
        elif self.owns_cluster(env):
            cl = self.cluster(env)
            programs.append(Program(
                name=self.db_program(env.name), command=cl.command(), directory=cl.pgdata,
                stdout_log=logs / "postgres.log", user="postgres", stopsignal="INT",
                stopwaitsecs=60, startsecs=2, stopasgroup=False,
                log_max_mb=env.logging.max_file_mb, log_keep=env.logging.keep_files, host=host,
            ))
        slots = self.slots(env.name)
        for slot in SLOTS:
            rid = slots.releases.get(slot)
            if not rid:
                continue
            rel = self.release(rid)
            programs.append(Program(
                name=self.program(env.name, slot), command=self.slot_command(env, slot, rel),
                directory=self.layout.env_dir(env.name),
                # gunicorn writes its access log to stdout, the app's and its own log lines to
                # stderr: supervisord is each file's one writer, and rotates it.
                stdout_log=logs / f"access-{slot}.log", stderr_log=logs / f"app-{slot}.log",
                log_max_mb=env.logging.max_file_mb, log_keep=env.logging.keep_files,
                autostart=bool(slots.running.get(slot)), startsecs=1, startretries=5,
                stopwaitsecs=30, host=host,
            ))
        active = slots.active_release()
        if active:
            programs.append(Program(
                name=self.jobs_program(env.name), command=self.jobs_command(env, self.release(active)),
                directory=self.layout.env_dir(env.name), stdout_log=logs / "jobs.log",
                autostart=bool(slots.running.get(slots.active or "")), startsecs=1, startretries=5,
                stopwaitsecs=self.spec.defaults.jobs.outbox_every_s + 60,
                log_max_mb=env.logging.max_file_mb, log_keep=env.logging.keep_files, host=host,
            ))
        if env.backups is not None and self.owns_cluster(env):
            # Backs up every backups.every_h (`wtx db backup-timer ENV`); pgBackRest's own lock
            # keeps it from overlapping a `wtx db backup` run by hand.
            timer = [sys.executable, "-m", "wtx", "--root", str(self.root), "--var-dir", str(self.var_dir),
                     "db", "backup-timer", env.name]
            programs.append(Program(
                name=backups.timer_program(env.name), command=shlex.join(timer),
                directory=self.layout.env_dir(env.name), stdout_log=logs / "backups.log",
                autostart=True, startsecs=0, startretries=3, stopwaitsecs=10,
                environment={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                log_max_mb=env.logging.max_file_mb, log_keep=env.logging.keep_files,
            ))
        if slots.next_expiry() is not None:
            # Stops the slot kept warm for rollback when its window ends (`wtx expire-warm
            # ENV --wait`: reads the deadline from the slots file, so a later deploy or a
            # restart of supervisord moves it; ends when nothing is warm any more).
            timer = [sys.executable, "-m", "wtx", "--root", str(self.root), "--var-dir", str(self.var_dir),
                     "expire-warm", env.name, "--wait"]
            programs.append(Program(
                name=self.warm_timer_program(env.name), command=shlex.join(timer),
                directory=self.layout.env_dir(env.name), stdout_log=logs / "warm-timer.log",
                autostart=True, autorestart="false", startsecs=0, startretries=0, stopwaitsecs=10,
                environment={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                log_max_mb=env.logging.max_file_mb, log_keep=env.logging.keep_files, host=host,
            ))
        return programs

    def apply_programs(self, env: Environment, only: set[str] | None = None) -> None:
        private_dir(self.layout.logs_dir(env.name), base=self.layout.env_dir(env.name))
        self.supervisor.write_programs(env.name, self.env_programs(env))
        self.supervisor.update(only=only)

    def haproxy_binary(self) -> str:
        found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if not found:
            raise DeployError("haproxy is not installed (Debian: apt-get install -y haproxy)")
        return found

    # ----------------------------------------------------------------------------------------
    # HAProxy config
    # ----------------------------------------------------------------------------------------
    def basic_auth_hash(self, env: Environment, password: str) -> str:
        # A salt derived from the password keeps the hash (and so haproxy.cfg) stable.
        salt = hmac.new(password.encode(), b"wtx-haproxy-userlist", hashlib.sha256).hexdigest()[:16]
        res = subprocess.run(
            ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
            input=password + "\n", capture_output=True, text=True, check=True,
        )
        return res.stdout.strip()

    def certificate(self, env: Environment) -> Path:
        if env.access.tls_certificate:
            path = Path(env.access.tls_certificate)
            if not path.is_absolute():
                path = self.root / path
            if not path.is_file():
                raise DeployError(f"{env.name}: access.tls_certificate {path} does not exist")
            return path
        return hap.ensure_certificate(self.layout.tls_dir(env.name) / "haproxy.pem", env.hostnames)

    def render_haproxy(self) -> bool:
        """Write haproxy.cfg from the spec and the slot states; True when it changed."""
        routes: list[hap.Route] = []
        certs: dict[str, Path] = {}
        for env in self.spec.environments.values():
            if env.is_backup:
                continue
            user = pw_hash = None
            if env.access.basic_auth:
                user = env.access.basic_auth_user
                pw_hash = self.basic_auth_hash(env, self.secrets(env)["BASIC_AUTH_PASSWORD"])
            if env.access.tls:
                certs[env.name] = self.certificate(env)
            backups: tuple[tuple[str, int, str | None, str], ...] = ()
            backup_maxconn = 0
            bak = self.backup(env)
            if bak is not None:
                backups = ((bak.name, bak.app.base_port, self.slots(bak.name).active, self.address(bak)),)
                backup_maxconn = bak.server_maxconn
            routes.append(hap.Route(
                env=env.name, hostnames=tuple(env.hostnames), url=env.url,
                allowed_networks=tuple(env.access.allowed_networks),
                basic_auth_user=user, basic_auth_hash=pw_hash, tls=env.access.tls,
                base_port=env.app.base_port, replicas=env.app.replicas,
                active_slot=self.slots(env.name).active, backups=backups,
                maxconn=env.server_maxconn, backup_maxconn=backup_maxconn,
                front_door=env.front_door,
                monitoring_networks=tuple(env.logging.monitoring_networks),
                address=self.address(env), server_timeout_s=self.spec.server_timeout_s(env),
            ))
        d = self.spec.defaults
        text = hap.render_config(
            routes=routes, layout=self.layout, http_port=d.haproxy_http_port,
            https_port=d.haproxy_https_port, stats_port=d.haproxy_stats_port,
            health_path=d.health_check.path, inter_ms=d.health_check.inter_ms,
            fall=d.health_check.fall, rise=d.health_check.rise, certificates=certs,
            bind_address=self.spec.front_door_host.address,
            databases=self.database_routes(),
        )
        cfg = self.layout.haproxy_cfg
        private_dir(cfg.parent, base=self.var_dir)
        if cfg.exists() and cfg.read_text() == text:
            return False
        tmp = cfg.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        hap.check_config(self.haproxy_binary(), tmp)
        tmp.replace(cfg)
        return True

    def database_routes(self) -> tuple[hap.DatabaseRoute, ...]:
        routes = []
        for env in self.spec.environments.values():
            ha = env.database.ha
            if ha is None or env.is_backup or env.database.port is None:
                continue
            cl = HACluster(self.spec, env, self.layout, self.root)
            routes.append(hap.DatabaseRoute(
                env=env.name, address=cl.entry_address, port=env.database.port,
                members=tuple((m.host, cl.address(m.host), m.port, m.rest_port) for m in ha.members),
                inter_ms=ha.check_inter_ms, connect_timeout_ms=ha.connect_timeout_ms,
            ))
        return tuple(routes)

    def haproxy_program(self) -> Program:
        """HAProxy under supervisord; its log (every environment's requests) is rotated at the
        largest size any environment's logging asks for."""
        envs = self.spec.environments.values()
        return Program(
            name=HAPROXY_PROGRAM,
            command=f"{self.haproxy_binary()} -W -db -f {self.layout.haproxy_cfg}",
            directory=self.layout.haproxy_dir, stdout_log=self.layout.haproxy_log,
            stopsignal="USR1", stopwaitsecs=15, startsecs=1,
            environment={"TZ": "UTC"},  # its log's times (%tr) in UTC, like every other log
            log_max_mb=max(e.logging.max_file_mb for e in envs),
            log_keep=max(e.logging.keep_files for e in envs),
            host=self.spec.front_door_host_name,
        )

    def ensure_haproxy(self) -> None:
        """Render haproxy.cfg; start HAProxy, or reload it (hitless) when the config changed."""
        changed = self.render_haproxy()
        self.supervisor.write_programs("_frontdoor", [self.haproxy_program()])
        self.supervisor.update(only={HAPROXY_PROGRAM})
        state = self.supervisor.state(HAPROXY_PROGRAM)
        if state != "RUNNING":
            self.supervisor.start_program(HAPROXY_PROGRAM)
            self.supervisor.wait_running(HAPROXY_PROGRAM, 10)
        elif changed:
            # Master-worker mode: USR2 re-reads the config; listeners are handed over.
            self.supervisor.signal_program(HAPROXY_PROGRAM, "USR2")
            time.sleep(0.3)
        self.wait_runtime_api(10)

    def wait_runtime_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runtime.available():
                return
            time.sleep(0.1)
        raise DeployError(f"HAProxy's runtime API ({self.layout.haproxy_sock}) did not answer")

    # ----------------------------------------------------------------------------------------
    # Releases and the release phase
    # ----------------------------------------------------------------------------------------
    def install(self, rel: releases.Release) -> Path:
        try:
            return install(self.layout, rel)
        except InstallError as exc:
            raise DeployError(f"release {rel.id}: {exc}") from None

    def manage(self, env: Environment, rel: releases.Release, *args: str,
               timeout: float = 600.0, overrides: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the release's own `wondertix <args>` with the environment's variables."""
        values = {**self.app_values(env, rel), **(overrides or {})}
        cmd = [str(self.layout.release_venv(rel.id) / "bin" / "wondertix"), *args]
        return subprocess.run(cmd, env=values, capture_output=True, text=True, timeout=timeout,
                              cwd=self.layout.env_dir(env.name), umask=UMASK)

    def migrate(self, env: Environment, rel: releases.Release) -> None:
        """The release phase: the release's migrations against the environment's database."""
        try:
            res = self.manage(env, rel, "migrate", "--noinput")
        except subprocess.TimeoutExpired:
            raise DeployError(f"{env.name}: migrations of {rel.id} did not finish in time") from None
        if res.returncode != 0:
            lines = [ln for ln in (res.stderr or res.stdout).strip().splitlines() if ln.strip()]
            raise DeployError(
                f"{env.name}: migrations of release {rel.id} failed: {lines[-1] if lines else res.returncode}"
            )

    # ----------------------------------------------------------------------------------------
    # Slots
    # ----------------------------------------------------------------------------------------
    def start_slot(self, env: Environment, slot: str, rel: releases.Release) -> None:
        """Put `rel` in `slot` and start it (the slot must not be on traffic)."""
        slots = self.slots(env.name)
        name = self.program(env.name, slot)
        if slots.active == slot:
            raise DeployError(f"{env.name}: refusing to restart the slot on traffic ({slot})")
        self.supervisor.stop_program(name)
        slots.releases[slot] = rel.id
        slots.running[slot] = True
        slots.forget_warm(slot)
        self.save_slots(env.name, slots)
        self.apply_programs(env, only={name})
        if self.supervisor.state(name) not in ("RUNNING", "STARTING"):
            self.supervisor.start_program(name)

    def restore_slot(self, env: Environment, slot: str, release_id: str | None) -> None:
        """Stop a slot and give it back the release it held before (an aborted deploy must
        not cost the environment its rollback target)."""
        self.supervisor.stop_program(self.program(env.name, slot))
        slots = self.slots(env.name)
        if release_id:
            slots.releases[slot] = release_id
        else:
            slots.releases.pop(slot, None)
        slots.running[slot] = False
        slots.forget_warm(slot)
        self.save_slots(env.name, slots)
        self.apply_programs(env, only={self.program(env.name, slot)})

    def stop_slot(self, env: Environment, slot: str) -> None:
        name = self.program(env.name, slot)
        self.supervisor.stop_program(name)
        slots = self.slots(env.name)
        slots.running[slot] = False
        slots.forget_warm(slot)
        self.save_slots(env.name, slots)
        # The stopped program's autostart flips; applying it to a stopped group is harmless.
        self.apply_programs(env, only={name})

    def probe(self, env: Environment, slot: str, path: str, timeout: float = 2.0) -> int:
        """Status of GET `path` straight at a slot (as HAProxy's check sends it); 0 if no answer."""
        return self.probe_answer(env, slot, path, timeout)[0]

    def probe_answer(self, env: Environment, slot: str, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """(status, the start of the body) of GET `path` straight at a slot; (0, "") if no answer."""
        host = (self.primary(env).hostnames or ["localhost"])[0]
        conn = http.client.HTTPConnection(self.address(env), self.port(env, slot), timeout=timeout)
        try:
            conn.request("GET", path, headers={
                "Host": host, "X-Forwarded-Proto": "https" if env.access.tls else "http",
            })
            resp = conn.getresponse()
            return resp.status, resp.read(400).decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return 0, ""
        finally:
            conn.close()

    def readiness(self, env: Environment, slot: str) -> tuple[int, str]:
        """The slot's readiness as the load balancer judges it: not ready only after `fall`
        failed probes in a row, `inter_ms` apart (one probe meeting a passing blip is not a
        verdict). (status, the start of the body) of the last probe."""
        check = self.spec.defaults.health_check
        answer = (0, "")
        for attempt in range(max(1, check.fall)):
            if attempt:
                time.sleep(check.inter_ms / 1000)
            answer = self.probe_answer(env, slot, self.spec.defaults.readiness_path)
            if answer[0] == 200:
                break
        return answer

    def wait_ready(self, env: Environment, slot: str, timeout: float) -> None:
        """Until the slot answers readiness with 200; DeployError on timeout or a dead process."""
        name = self.program(env.name, slot)
        path = self.spec.defaults.readiness_path
        deadline = time.monotonic() + timeout
        last, said = 0, ""
        while time.monotonic() < deadline:
            last, said = self.probe_answer(env, slot, path)
            if last == 200:
                return
            state = self.supervisor.state(name)
            if state in ("FATAL", "EXITED", "STOPPED", "ABSENT"):
                raise DeployError(f"{env.name}: {name} is {state} (see {self.layout.logs_dir(env.name)}/app-{slot}.log)")
            time.sleep(0.1)
        # What the app said is its readiness verdict (pending migrations, database unreachable…).
        what = f"answered {last}: {' '.join(said.split())[:300]}" if last else "never answered"
        raise DeployError(f"{env.name}: {name} not ready within {timeout:.0f}s ({path} {what})")

    def traffic_env(self, env: Environment) -> Environment:
        """The environment whose HAProxy backend carries `env`'s servers."""
        return self.primary(env)

    def enable_server(self, env: Environment, slot: str, timeout: float) -> None:
        be = hap.backend_name(self.traffic_env(env).name)
        srv = hap.server_name(env.name, slot)
        self.runtime.set_state(be, srv, "ready")
        if not self.runtime.wait_status(be, srv, "UP", timeout):
            raise DeployError(f"{env.name}: HAProxy did not see {srv} UP within {timeout:.0f}s "
                              f"(status {self.runtime.status(be, srv)})")

    def retire_server(self, env: Environment, slot: str, drain_timeout: float) -> None:
        """drain (no new requests) → wait for in-flight ones → maintenance."""
        be = hap.backend_name(self.traffic_env(env).name)
        srv = hap.server_name(env.name, slot)
        self.runtime.set_state(be, srv, "drain")
        self.runtime.wait_drained(be, srv, drain_timeout)
        self.runtime.set_state(be, srv, "maint")

    def set_active(self, env: Environment, slot: str) -> None:
        slots = self.slots(env.name)
        slots.active = slot
        slots.forget_warm(slot)
        self.save_slots(env.name, slots)
        self.start_jobs(env)

    # ----------------------------------------------------------------------------------------
    # The previous release kept warm (rollback within the window is a traffic switch)
    # ----------------------------------------------------------------------------------------
    def keep_warm(self, env: Environment, slot: str) -> float | None:
        """`slot` just left traffic: keep it running, out of traffic, for the spec's
        rollback_warm_s (and start the timer that stops it then). Its deadline, or None when
        the window is 0 and the caller is to stop it now."""
        slots = self.slots(env.name)
        if not slots.keep_warm(slot, time.time(), self.spec.rollback_warm_s(env)):
            self.save_slots(env.name, slots)
            return None
        self.save_slots(env.name, slots)
        name = self.warm_timer_program(env.name)
        self.apply_programs(env, only={name})
        if self.supervisor.info(name) is not None and self.supervisor.state(name) not in ("RUNNING", "STARTING"):
            self.supervisor.start_program(name)
        return slots.warm_until[slot]

    def warm_status(self, env: Environment, slots: Slots) -> str:
        """What `wtx status` says of the warm slot: only when its program really runs."""
        warm = slots.warm(time.time())
        if warm is None or self.supervisor.state(self.program(env.name, warm[0])) != "RUNNING":
            return ""
        return warm_text(slots, time.time())

    def expire_warm(self, envs: list[str] | None = None, progress: Progress | None = None) -> list[str]:
        """Stop every slot whose warm window has passed; the programs stopped."""
        stopped = []
        with self.locked():
            for name in envs or list(self.spec.environments):
                env = self.env(name)
                for slot in self.slots(name).expired(time.time()):
                    _say(progress, f"{name}: the warm window of slot {slot} ended: stopping it")
                    self.stop_slot(env, slot)
                    ledger.append(self.var_dir, "warm-expired", env=name, slot=slot,
                                  release=self.slots(name).releases.get(slot))
                    stopped.append(self.program(name, slot))
        return stopped

    def wait_and_expire_warm(self, env: str, progress: Progress | None = None, *, poll_s: float = 5.0) -> list[str]:
        """The warm timer: until nothing of `env` is warm, sleep to the next deadline (read
        again every poll_s, so a later deploy or rollback moves it) and stop what expired."""
        stopped: list[str] = []
        while True:
            until = self.slots(env).next_expiry()
            if until is None:
                return stopped
            delay = until - time.time()
            if delay > 0:
                time.sleep(min(delay, poll_s))
                continue
            stopped += self.expire_warm([env], progress)

    def start_jobs(self, env: Environment) -> None:
        """(Re)start the jobs program on the release now on traffic."""
        name = self.jobs_program(env.name)
        self.apply_programs(env, only={name})
        if self.supervisor.info(name) is not None and self.supervisor.state(name) not in ("RUNNING", "STARTING"):
            self.supervisor.start_program(name)

    # ========================================================================================
    # Public interface (the CLI calls exactly these)
    # ========================================================================================
    def up(self, envs: list[str] | None = None, progress: Progress | None = None) -> list[str]:
        """Bring environments up; returns why any of them was left stopped."""
        with self.locked():
            return self._up(envs, progress)

    def _up(self, names: list[str] | None, progress: Progress | None) -> list[str]:
        self.haproxy_binary()
        skipped: list[str] = []
        targets = self.ordered(names)
        # A backup runs on its primary's database: the primary's cluster comes up with it.
        needed = {e.name: e for e in targets}
        for env in targets:
            owner = self.cluster_env(env)
            if owner is not None and owner.name not in needed:
                needed[owner.name] = owner
        _say(progress, "starting supervisord")
        self.supervisor.start()

        # 1. Databases: each PostgreSQL cluster initialized, started, its role and database made.
        clusters = [e for e in self.ordered(list(needed)) if self.owns_cluster(e) and not e.database.ha]
        for env in [e for e in self.ordered(list(needed)) if self.owns_cluster(e) and e.database.ha]:
            self.ha_up(env, progress)
            try:
                backups.prepare_cluster(self, env, progress)
            except PostgresError as exc:
                raise DeployError(f"{env.name}: {exc}") from None
            self.start_backup_timer(env)
        for env in clusters:
            _say(progress, f"{env.name}: PostgreSQL cluster on {self.address(env)}:{env.database.port}")
            self.secrets(env)  # generated first (and its directory made traversable)
            try:
                self.cluster(env).init(env.database.name, env.database.role, backups.cluster_settings(self, env))
            except PostgresError as exc:
                raise DeployError(f"{env.name}: {exc}") from None
            self.apply_programs(env, only={self.db_program(env.name)})
            self.supervisor.start_program(self.db_program(env.name))
        for env in clusters:
            cl = self.cluster(env)
            try:
                cl.wait_ready(30)
                cl.ensure_database(env.database.name, env.database.role, self.secrets(env)["DB_PASSWORD"])
                backups.prepare_cluster(self, env, progress)
            except PostgresError as exc:
                raise DeployError(f"{env.name}: {exc}") from None
            self.start_backup_timer(env)

        # 2. The release each environment runs: what it ran before, else the newest build
        #    (a backup always runs its primary's release). An environment that accepts
        #    releases only through promotion starts only on a release promoted into it —
        #    never a fresh build of the work tree; with none, it is left stopped.
        from wtx.pipeline import deploy_refusal, promoted_release

        chosen: dict[str, releases.Release] = {}
        for env in targets:
            slots = self.slots(env.name)
            gated = self.primary(env)
            if gated.promoted_only:
                rid = (self.slots(gated.name).active_release() if env.is_backup else None) \
                    or slots.active_release() or promoted_release(self.var_dir, gated.name)
                # What it ran before restarts if it was promoted there; a first start takes
                # the newest promotion, which must still hold.
                recheck = not (slots.active_release() or (env.is_backup and self.slots(gated.name).active_release()))
                refusal = deploy_refusal(self.spec, self.var_dir, gated.name, rid, recheck=recheck) if rid else (
                    f"no release was promoted to {gated.name} yet (`wtx pipeline run`)")
                if refusal:
                    _say(progress, f"{env.name}: not started: {refusal}")
                    skipped.append(f"{env.name}: {refusal}")
                    continue
                assert rid is not None
                chosen[env.name] = self.release(rid)
            elif env.is_backup and self.slots(self.primary(env).name).active_release():
                rid = self.slots(self.primary(env).name).active_release()
                assert rid is not None
                chosen[env.name] = self.release(rid)
            elif slots.active_release():
                chosen[env.name] = self.release(slots.active_release() or "")
            else:
                chosen[env.name] = self.newest_release(progress)
        targets = [env for env in targets if env.name in chosen]
        for rel in {r.id: r for r in chosen.values()}.values():
            _say(progress, f"installing release {rel.id}")
            self.install(rel)

        # 3. Release phase per database (a backup shares its primary's), side by side.
        jobs = {
            env.name: partial(self.migrate, env, chosen[env.name])
            for env in targets if self.cluster_env(env) in (None, env)
        }
        _say(progress, f"migrating {', '.join(jobs)}")
        run_parallel(jobs)
        for env in targets:
            if env.database.engine == "sqlite":
                backups.mark_sqlite(self, env)  # the file exists once migrated
            if self.seed_demo_once(env, chosen[env.name]):
                _say(progress, f"{env.name}: demo data loaded (data_policy = \"demo\", first start)")

        # 4. App servers: the active slot of each environment (blue the first time).
        for env in targets:
            slots = self.slots(env.name)
            slot = slots.active or SLOTS[0]
            rel = chosen[env.name]
            slots.active = slot
            slots.releases[slot] = rel.id
            slots.running[slot] = True
            self.save_slots(env.name, slots)
            name = self.program(env.name, slot)
            _say(progress, f"{env.name}: starting {name} (release {rel.id})")
            self.apply_programs(env, only={name})
            if self.supervisor.state(name) not in ("RUNNING", "STARTING"):
                self.supervisor.start_program(name)
        run_parallel({
            env.name: partial(self.wait_ready, env, self.slots(env.name).active or SLOTS[0], 90)
            for env in targets
        })
        for env in targets:
            self.start_jobs(env)

        # 5. The front door.
        _say(progress, "HAProxy")
        self.ensure_haproxy()
        for env in targets:
            slot = self.slots(env.name).active or SLOTS[0]
            be, srv = hap.backend_name(self.traffic_env(env).name), hap.server_name(env.name, slot)
            self.runtime.set_state(be, srv, "ready")
            self.runtime.wait_status(be, srv, "UP", 10)
            last = ledger.last(self.var_dir, env=env.name)
            if last is None or last.get("release") != chosen[env.name].id:
                ledger.append(self.var_dir, ledger.DEPLOY, env=env.name, release=chosen[env.name].id,
                              previous=last.get("release") if last else None, slot=slot, via="up")
        return skipped

    def start_backup_timer(self, env: Environment) -> None:
        if env.backups is not None:
            timer = backups.timer_program(env.name)
            self.apply_programs(env, only={timer})
            if self.supervisor.state(timer) not in ("RUNNING", "STARTING"):
                self.supervisor.start_program(timer)

    def ha_up(self, env: Environment, progress: Progress | None) -> str:
        """`env`'s HA database up: etcd, Patroni members, HAProxy's entry point; returns
        once exactly one primary is UP behind HAProxy and the app's role and database exist."""
        ha = self.ha_cluster(env)
        assert ha is not None
        self.refuse_plain_cluster(env, ha)
        self.secrets(env)
        _say(progress, f"{env.name}: Patroni ({ha.ha.members[0].host} first) and etcd on "
                       f"{', '.join(ha.hosts())}")
        try:
            ensure_venv(self.layout, self.root)
            ha.write_configs()
            names = {p.name for p in ha.programs(venv_dir(self.layout, self.root))}
            self.apply_programs(env, only=names)
            dbha.start(ha, self.supervisor, partial(_say, progress))
            _say(progress, f"{env.name}: HAProxy's database entry point {ha.entry_address}:{env.database.port}")
            self.ensure_haproxy()
            lead = dbha.wait_one_primary(ha, self.runtime, 30)
            ha.member_cluster(lead).ensure_database(env.database.name, env.database.role,
                                                    self.secrets(env)["DB_PASSWORD"])
            # Read-only monitoring rights, so the app's /metrics can see its standbys' sync
            # state and lag (ops/replication.py; docs/operations.md#metrics says why this role).
            ha.member_cluster(lead).psql(f'GRANT pg_monitor TO "{env.database.role}";')
        except (PatroniError, PostgresError) as exc:
            raise DeployError(f"{env.name}: {exc}") from None
        _say(progress, f"{env.name}: database leader {lead}")
        return lead

    def refuse_plain_cluster(self, env: Environment, ha: HACluster) -> None:
        """A var dir from before `database.ha`: its data is in the old single cluster. Never
        start an empty HA cluster next to it as if nothing were there."""
        old = self.layout.pgdata(env.name)
        started = any((ha.paths.pgdata(m.host) / "PG_VERSION").exists() for m in ha.ha.members)
        if (old / "PG_VERSION").exists() and not started:
            raise DeployError(
                f"{env.name}: {old} holds its database as a single PostgreSQL cluster, from before "
                "database.ha: move its data into the HA cluster first (docs/operations.md#moving-to-the-ha-database: "
                f"`wtx db adopt {env.name}` dumps it, starts the HA cluster and restores the dump there)")

    def db_adopt(self, env: str, progress: Progress | None = None) -> dict[str, Any]:
        """Move `env`'s data from its old single cluster into its HA database (adopt.py)."""
        from wtx.backends.local.adopt import adopt

        with self.locked():
            return adopt(self, env, progress)

    def db_switchover(self, env: str, candidate: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """A planned change of leader of `env`'s HA database (Patroni's switchover)."""
        with self.locked():
            ha = self.ha_cluster(self.env(env))
            if ha is None:
                raise DeployError(f"{env}: its database has no HA members (database.ha) to switch over between")
            _say(progress, f"{env}: switching the database leader over")
            try:
                result = dbha.switchover(ha, self.runtime, candidate)
            except PatroniError as exc:
                ledger.append(self.var_dir, "db-switchover-failed", env=env, reason=str(exc))
                raise DeployError(str(exc)) from None
            ledger.append(self.var_dir, "db-switchover", **result)
            return result

    def newest_release(self, progress: Progress | None) -> releases.Release:
        try:
            return releases.latest(self.var_dir)
        except releases.ReleaseError:
            pass
        _say(progress, "no release yet: building one")
        try:
            return releases.build(self.root, self.var_dir, allow_dirty=True, progress=progress)
        except releases.ReleaseError as exc:
            raise DeployError(str(exc)) from None

    def down(self, envs: list[str] | None = None, progress: Progress | None = None) -> None:
        with self.locked():
            if not envs or set(envs) >= set(self.spec.environments):
                _say(progress, "stopping every program, then supervisord")
                self.supervisor.shutdown()
                return
            if not self.supervisor.running():
                return
            for env in reversed(self.ordered(envs)):
                _say(progress, f"{env.name}: stopping its app servers (requests in flight finish)")
                self.supervisor.stop_program(self.jobs_program(env.name))
                self.supervisor.stop_program(self.warm_timer_program(env.name))
                for slot in SLOTS:
                    self.supervisor.stop_program(self.program(env.name, slot))
                # `up` starts only the slot on traffic again: the warm one is stopped for good.
                slots = self.slots(env.name)
                if slots.running.get(slots.idle()) or slots.idle() in slots.warm_until:
                    slots.running[slots.idle()] = False
                    slots.forget_warm(slots.idle())
                    self.save_slots(env.name, slots)
                if self.owns_cluster(env):
                    self.supervisor.stop_program(backups.timer_program(env.name))
                ha = self.ha_cluster(env) if self.owns_cluster(env) else None
                if ha is not None:
                    _say(progress, f"{env.name}: stopping its HA database (Patroni members, then etcd)")
                    dbha.stop(ha, self.supervisor)
                elif self.owns_cluster(env):
                    _say(progress, f"{env.name}: stopping its PostgreSQL cluster")
                    self.supervisor.stop_program(self.db_program(env.name))

    # ----------------------------------------------------------------------------------------
    # Hosts: what a failure rehearsal does to a machine (netns hosts; this machine refuses)
    # ----------------------------------------------------------------------------------------
    def host_failures(self) -> HostFailures:
        """What kills, powers on, cuts off and heals a host (machines.py): the one code path
        of `wtx host …`, the drills and the tests."""
        clusters = [cl for env in self.spec.environments.values()
                    if env.database.ha is not None and not env.is_backup
                    for cl in [self.ha_cluster(env)] if cl is not None]
        return HostFailures(self.spec, self.hosts, self.supervisor, clusters)

    def kill_host(self, name: str) -> None:
        """Every process on host `name` dies at once (a netns host: its supervisord with
        them; a this-machine database host: its database members, simulated): nothing
        restarts them until `power_on_host`."""
        self._host_verb(name, "host-killed", lambda f: f.kill(name))

    def power_on_host(self, name: str) -> None:
        """The host back: its supervisord starts what is set to run there, then its
        database members (they rejoin as replicas)."""
        self._host_verb(name, "host-powered-on", lambda f: f.power_on(name))

    def partition_host(self, name: str) -> None:
        """Host `name` cut off from every other host (and from wtx); its processes run on."""
        self._host_verb(name, "host-partitioned", lambda f: f.partition(name))

    def heal_host(self, name: str) -> None:
        self._host_verb(name, "host-healed", lambda f: f.heal(name))

    def _host_verb(self, name: str, event: str, verb: Callable[[HostFailures], object]) -> None:
        try:
            verb(self.host_failures())
        except HostError as exc:
            raise DeployError(str(exc)) from None
        ledger.append(self.var_dir, event, host=name)

    def teardown_hosts(self) -> None:
        """Every netns host's namespace, veth and wtx's bridge removed (what runs there dies)."""
        try:
            self.hosts.teardown()
        except HostError as exc:
            raise DeployError(str(exc)) from None

    def status(self) -> list[EnvStatus]:
        front_up = self.supervisor.of_host(self.spec.front_door_host_name).running()
        api_up = front_up and self.runtime.available()
        out = []
        for env in self.spec.environments.values():
            sup_up = self.supervisor.of_host(self.spec.host_name(env)).running()
            slots = self.slots(env.name)
            rid = slots.active_release() or "-"
            health = "down"
            proc_state = self.supervisor.state(self.program(env.name, slots.active)) if slots.active and sup_up else ""
            if not sup_up:
                host = self.spec.host_name(env)
                health = (f"down (host {host} is down: its supervisord does not answer)"
                          if self.hosts[host].separate else "down (supervisord not running)")
            elif slots.active and api_up and proc_state not in ("RUNNING", "STARTING", "BACKOFF"):
                health = f"down ({self.program(env.name, slots.active)} {proc_state.lower()})"
            elif slots.active and api_up:
                be = hap.backend_name(self.traffic_env(env).name)
                srv_status = self.runtime.status(be, hap.server_name(env.name, slots.active))
                ready, said = self.readiness(env, slots.active)
                if srv_status.startswith("UP") and ready == 200:
                    health = "healthy"
                else:
                    why = f": {' '.join(said.split())[:160]}" if ready and ready != 200 and said else ""
                    health = f"unhealthy (haproxy {srv_status or '?'}, readyz {ready or 'no answer'}{why})"
            elif slots.active and not api_up:
                health = "down (HAProxy not running: its runtime API does not answer)"
            elif not slots.active:
                health = "down (never brought up: run `wtx up`)"
            last = ledger.last(self.var_dir, env=env.name)
            last_txt = f"{last.get('ts', '')} {last.get('event')} {last.get('release', '')}".strip() if last else "-"
            url = self.primary(env).url if not env.url else env.url
            if env.is_backup:
                url = f"{url} (backup of {env.backup_of})"
            out.append(EnvStatus(env=env.name, url=url, release=rid, health=health,
                                 database=self.database_label(env), last_deploy=last_txt,
                                 warm=self.warm_status(env, slots) if sup_up else "",
                                 backups=backups.status(self, env), database_ha=self.ha_status(env)))
        return out

    def ha_status(self, env: Environment) -> dict[str, Any] | None:
        """The HA database's leader, members and sync verdict, on the environment that owns it."""
        ha = self.ha_cluster(env) if self.owns_cluster(env) else None
        return hastatus.status(ha) if ha is not None else None

    def deploy(self, env: str, release_id: str | None = None, progress: Progress | None = None,
               *, ready_timeout: float = 60.0) -> DeployResult:
        from wtx.deploy import deploy

        with self.locked():
            return deploy(self, env, release_id, progress=progress, ready_timeout=ready_timeout)

    def rollback(self, env: str, progress: Progress | None = None) -> DeployResult:
        from wtx.deploy import rollback

        with self.locked():
            return rollback(self, env, progress=progress)

    def log_entries(self, envs: list[str] | None = None, lines: int = 100, follow: bool = False, *,
                    level: str | None = None, request_id: str | None = None, path: str | None = None,
                    since: datetime | None = None, sources: list[str] | None = None) -> Iterator[logview.Entry]:
        """Every log file of `envs` (default: all) and HAProxy's, as one time-ordered view in
        UTC: the last `lines` entries that pass the filters, then (follow) new ones as written.
        `sources`: only those files (a name like patroni-prd-db, or a kind like etcd)."""
        names = [self.env(n).name for n in envs] if envs else list(self.spec.environments)
        filters = logview.Filters(envs=frozenset(names), min_level=level, request_id=request_id,
                                  path=path, since=since, all_envs=not envs, sources=frozenset(sources or ()))
        zone = ZoneInfo(self.spec.defaults.theater_time_zone)
        # --since may reach back past the last rotation: then the rotated copies are read too.
        yield from logview.view(logview.sources(self.var_dir, names, rotated=since is not None),
                                filters, zone, lines)
        if follow:
            found = logview.sources(self.var_dir, names)
            rescan = iter(lambda: logview.sources(self.var_dir, names), None)
            yield from logview.follow(found, filters, zone, rescan=rescan)

    def logs(self, env: str | None = None, lines: int = 100, follow: bool = False) -> Iterator[str]:
        """The environment's log lines (app, access, PostgreSQL, HAProxy), merged, newest last."""
        for entry in self.log_entries([env] if env else None, lines, follow):
            yield entry.render()

    def db_seed(self, env: str, progress: Progress | None = None) -> None:
        with self.locked():
            e = self.env(env)
            if e.database.data_policy != "demo":
                raise DeployError(f"{env}: data_policy is {e.database.data_policy!r}; only demo data is seeded")
            backups.refuse_marked_real(self, e, "seed")
            rel = self.current_release(e)
            _say(progress, f"{env}: migrations of release {rel.id}")
            self.migrate(e, rel)
            _say(progress, f"{env}: loading the demo data")
            res = self.manage(e, rel, "seed_demo")
            if res.returncode != 0:
                raise DeployError(f"{env}: seed_demo failed: {_last_line(res)}")
            ledger.append(self.var_dir, "db-seed", env=env, release=rel.id)

    def seed_demo_once(self, env: Environment, rel: releases.Release) -> bool:
        """Load the demo data into an environment whose data policy is "demo", on its first
        start and after each `db reset` (the ledger says which); True when it seeded."""
        if env.database.data_policy != "demo" or env.is_backup:
            return False
        if backups.read_marker(self, env) == "real":
            return False  # the database says it holds real data, whatever the spec says
        for record in reversed(ledger.read(self.var_dir, env.name)):
            if record.get("event") == "db-seed":
                return False
            if record.get("event") == "db-reset":
                break
        res = self.manage(env, rel, "seed_demo")
        if res.returncode != 0:
            raise DeployError(f"{env.name}: seed_demo failed: {_last_line(res)}")
        ledger.append(self.var_dir, "db-seed", env=env.name, release=rel.id, via="up")
        return True

    def db_reset(self, env: str, progress: Progress | None = None) -> None:
        with self.locked():
            e = self.env(env)
            if e.database.data_policy == "real":
                ledger.append(self.var_dir, "db-reset-refused", env=env, reason="data_policy is real")
                raise DeployError(f"{env}: refusing to reset a database with real data (data_policy = \"real\")")
            if e.is_backup:
                raise DeployError(f"{env}: a backup's database belongs to {e.backup_of}")
            backups.refuse_marked_real(self, e, "reset")
            rel = self.current_release(e)
            try:
                dump = backups.dump_before(self, e, "reset", progress)
            except PostgresError as exc:
                raise DeployError(f"{env}: {exc}") from None
            _say(progress, f"{env}: dropping and re-creating the database")
            if e.database.engine == "sqlite":
                url = self.database_url(e, self.secrets(e))
                path = Path(url.removeprefix("sqlite:///"))
                for suffix in ("", "-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
            else:
                try:
                    self.cluster(e).drop_and_create(e.database.name, e.database.role)
                    guards.write_pg_marker(self.cluster(e), e.database.name, e.database.data_policy)
                except PostgresError as exc:
                    raise DeployError(f"{env}: {exc}") from None
            _say(progress, f"{env}: migrations of release {rel.id}")
            self.migrate(e, rel)
            if e.database.engine == "sqlite":
                backups.mark_sqlite(self, e)
            ledger.append(self.var_dir, "db-reset", env=env, release=rel.id, dump=dump)

    def db_refresh(self, env: str, source: str, progress: Progress | None = None) -> dict[str, Any]:
        """Replace `env`'s database with a scrubbed copy of `source`'s (see refresh.py)."""
        from wtx.backends.local.refresh import refresh

        with self.locked():
            target, src = self.env(env), self.env(source)
            if target.database.data_policy == "real":
                ledger.append(self.var_dir, "db-refresh-refused", env=env, source=source, reason="data_policy is real")
                raise DeployError(f"{env}: refusing to overwrite a database with real data (data_policy = \"real\")")
            if target.is_backup or not self.owns_cluster(target):
                raise DeployError(f"{env}: its database belongs to {self.primary(target).name}")
            if env == source or target.database.engine != "postgresql" or src.database.engine != "postgresql":
                raise DeployError(f"{env} --from {source}: both must be distinct PostgreSQL environments")
            backups.refuse_marked_real(self, target, "refresh")
            src_owner = self.cluster_env(src)
            assert src_owner is not None
            source_cluster, target_cluster = self.cluster(src_owner), self.cluster(target)
            for name, cl in ((src_owner.name, source_cluster), (env, target_cluster)):
                try:
                    cl.wait_ready(5)
                except PostgresError:
                    raise DeployError(f"{name}: its PostgreSQL cluster is not running (run `wtx up {name}`)") from None
            rel = self.current_release(target)

            def prepare(url: str) -> None:
                # The target's own release: its migrations bring prd's schema up to it, and its
                # scrub knows its models (and refuses columns it does not know).
                for args in (("migrate", "--noinput"), ("scrub_personal_data", "--noinput")):
                    res = self.manage(target, rel, *args, overrides={"DATABASE_URL": url})
                    if res.returncode != 0:
                        raise DeployError(f"{env}: {args[0]} of the copy failed: {_last_line(res)}")

            try:
                result = refresh(
                    source=source_cluster, source_db=src.database.name, target=target_cluster,
                    target_db=target.database.name, target_role=target.database.role,
                    hba_database=target.database.name, dump_dir=self.layout.dumps_dir(env),
                    prepare=prepare, progress=progress,
                )
                guards.write_pg_marker(target_cluster, target.database.name, target.database.data_policy)
                guards.prune_dumps(self.layout.dumps_dir(env), self.spec.defaults.dumps_keep)
            except PostgresError as exc:
                ledger.append(self.var_dir, "db-refresh-failed", env=env, source=source, reason=str(exc))
                raise DeployError(f"{env}: {exc}") from None
            except DeployError as exc:
                ledger.append(self.var_dir, "db-refresh-failed", env=env, source=source, reason=str(exc))
                raise
            record = {"source": source, "release": rel.id, "dump": result.dump, "seconds": result.seconds,
                      "tables": result.tables, "rows": result.rows}
            ledger.append(self.var_dir, "db-refresh", env=env, **record)
            return {"env": env, **record}

    @contextmanager
    def scratch_database(self, env: str, progress: Progress | None = None) -> Iterator[str]:
        """An empty scratch database in `env`'s own cluster (never `env`'s database), for the
        block; yields its URL (see refresh.scratch_database)."""
        from wtx.backends.local.refresh import scratch_database

        with self.locked():
            target = self.env(env)
            if target.is_backup or not self.owns_cluster(target) or target.database.engine != "postgresql":
                raise DeployError(f"{env}: has no PostgreSQL cluster of its own to hold a scratch database")
            cluster = self.cluster(target)
            try:
                cluster.wait_ready(5)
            except PostgresError:
                raise DeployError(f"{env}: its PostgreSQL cluster is not running (run `wtx up {env}`)") from None
            try:
                with scratch_database(target=cluster, target_role=target.database.role,
                                      hba_database=target.database.name, progress=progress) as url:
                    yield url
            except PostgresError as exc:
                raise DeployError(f"{env}: scratch database: {exc}") from None

    @contextmanager
    def scratch_copy(self, env: str, source: str, progress: Progress | None = None) -> Iterator[str]:
        """A fresh copy of `source`'s database in a scratch database of `env`'s cluster (never
        `env`'s own database), for the block; yields its URL (see refresh.scratch_copy)."""
        from wtx.backends.local.refresh import scratch_copy

        with self.locked():
            target, src = self.env(env), self.env(source)
            if target.is_backup or not self.owns_cluster(target) or target.database.engine != "postgresql":
                raise DeployError(f"{env}: has no PostgreSQL cluster of its own to hold a scratch copy")
            src_owner = self.cluster_env(src)
            if src_owner is None or env == source:
                raise DeployError(f"{env} --from {source}: both must be distinct PostgreSQL environments")
            source_cluster, target_cluster = self.cluster(src_owner), self.cluster(target)
            for name, cl in ((src_owner.name, source_cluster), (env, target_cluster)):
                try:
                    cl.wait_ready(5)
                except PostgresError:
                    raise DeployError(f"{name}: its PostgreSQL cluster is not running (run `wtx up {name}`)") from None
            try:
                with scratch_copy(source=source_cluster, source_db=src.database.name, target=target_cluster,
                                  target_role=target.database.role, hba_database=target.database.name,
                                  progress=progress) as url:
                    yield url
            except PostgresError as exc:
                raise DeployError(f"{env}: scratch copy of {source}: {exc}") from None

    # Backups and restores (backups.py)
    def db_backup(self, env: str, kind: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
        # Not under the backend's lock: a long backup must not hold up a deploy, and pgBackRest
        # locks the stanza itself (two backups never overlap).
        return backups.backup(self, env, kind, progress)

    def db_backup_timer(self, env: str, progress: Progress | None = None) -> None:
        backups.run_timer(self, env, progress)

    def db_backups(self, env: str) -> dict[str, Any]:
        return backups.backups(self, env)

    def db_restore(self, env: str, to: str, into: str, *, replace_live: bool = False,
                   progress: Progress | None = None) -> dict[str, Any]:
        with self.locked():
            return backups.restore(self, env, to, into, replace_live=replace_live, progress=progress)

    def db_drop_scratch(self, env: str, scratch: str | None = None) -> list[str]:
        with self.locked():
            return backups.drop_scratch(self, env, scratch)

    def run(self, env: str, args: list[str]) -> int:
        """`wondertix <args>` of `env`'s active release with `env`'s variables, attached to
        this terminal (a shell stays interactive); its exit code."""
        e = self.env(env)
        rel = self.current_release(e)
        values = self.app_values(e, rel)
        cmd = [str(self.layout.release_venv(rel.id) / "bin" / "wondertix"), *args]
        code = subprocess.run(cmd, env=values, cwd=self.layout.env_dir(e.name)).returncode
        ledger.append(self.var_dir, "run", env=env, release=rel.id, command=args[0] if args else "", exit_code=code)
        return code

    def prune_installs(self) -> list[str]:
        """Remove the venvs of releases no environment can roll back to any more.

        Kept: every release a slot holds, and per environment the `release_keep` most recent
        releases it ran (from the ledger). Only var/venvs/<id>/ is ever removed: the release
        directories are builds (`wtx releases`), read-only and never touched; a pruned
        release is reinstalled if deployed again.
        """
        keep: set[str] = set()
        for name in self.spec.environments:
            keep.update(r for r in self.slots(name).releases.values() if r)
            recent: list[str] = []
            for record in reversed(ledger.read(self.var_dir, name)):
                rid = record.get("release")
                if record.get("event") in (ledger.DEPLOY, ledger.ROLLBACK) and rid and rid not in recent:
                    recent.append(rid)
                if len(recent) >= self.spec.defaults.release_keep:
                    break
            keep.update(recent)
        removed = []
        base = self.layout.venvs_dir
        for venv in sorted(p for p in base.iterdir() if p.is_dir()) if base.exists() else []:
            if venv.name.startswith(".") or venv.name in keep:
                continue
            shutil.rmtree(venv)
            removed.append(venv.name)
        return removed

    def current_release(self, env: Environment) -> releases.Release:
        rid = self.slots(env.name).active_release()
        if rid:
            return self.release(rid)
        rel = self.newest_release(None)
        self.install(rel)
        return rel


def run_parallel(jobs: Mapping[str, Callable[[], Any]]) -> None:
    """Run jobs side by side; the first failure (by name order) is raised after all end."""
    errors: dict[str, BaseException] = {}

    def run(name: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors[name] = exc

    threads = [threading.Thread(target=run, args=(n, f), daemon=True) for n, f in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in jobs:
        if name in errors:
            exc = errors[name]
            if isinstance(exc, DeployError | SupervisorError):
                raise DeployError(str(exc)) from None
            raise exc


def warm_text(slots: Slots, now: float) -> str:
    """`wtx status`'s words for the previous release kept warm ("" when none is)."""
    warm = slots.warm(now)
    if warm is None:
        return ""
    slot, rid, until = warm
    when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"previous {rid} warm in slot {slot} until {when} (rollback is a traffic switch)"


def _last_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (res.stderr or res.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {res.returncode}"

