"""pgBackRest for an environment's PostgreSQL cluster: WAL archiving, backups, point-in-time restores.

    cluster (prd's host)                       repository (another host: var/hosts/<host>/pgbackrest)
    archive_command = pgbackrest archive-push ──▶ archive/<stanza>/…  (every WAL segment)
    wtx db backup (full | incr)              ──▶ backup/<stanza>/…   (retention_full fulls kept)
    wtx db restore --to TIME --into scratch  ◀── restore --type=time into a new data directory

The stanza is the environment's name. Everything pgBackRest writes locally (its config, log,
lock and spool) lives under var/envs/<env>/pgbackrest/, owned by the postgres user that runs
it, so two var dirs on one machine never share a lock. `archive_settings` is the one place the
PostgreSQL parameters come from: the local cluster's wtx.conf and any other manager of the
cluster (Patroni's `postgresql.parameters`) take them from there.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from wtx.backends.local.postgres import (
    PG_BIN,
    PG_USER,
    PostgresError,
    as_postgres_cmd,
    ensure_reachable,
)

PGBACKREST = os.environ.get("WTX_PGBACKREST", "pgbackrest")


class BackupError(RuntimeError):
    pass


@dataclass(frozen=True)
class Repository:
    """Where one environment's pgBackRest reads its config and keeps its repository."""

    stanza: str            # the environment's name
    config_dir: Path       # var/envs/<env>/pgbackrest (pgbackrest.conf, log/, lock/, spool/)
    repo_path: Path        # var/hosts/<host>/pgbackrest
    retention_full: int

    @property
    def config_file(self) -> Path:
        return self.config_dir / "pgbackrest.conf"

    def command(self, *args: str) -> list[str]:
        """`pgbackrest <args>` for this stanza, with this config only (never /etc's)."""
        return [PGBACKREST, f"--config-path={self.config_dir}", f"--stanza={self.stanza}", *args]


def archive_settings(repo: Repository, pgdata: Path | None = None) -> dict[str, str]:
    """The PostgreSQL parameters continuous archiving needs, as name → value (unquoted).

    Call this from whatever writes the cluster's configuration (wtx.conf here, Patroni's
    `postgresql.parameters` there): archive_timeout bounds how old the newest archived WAL can
    be on a quiet database, so a point-in-time restore can reach any second older than it.
    `pgdata`: the data directory of the member that runs the command. An HA stanza lists every
    member (pg1, pg2…) and archive-push reads PostgreSQL's relative `%p` against pg1-path, so
    each member names its own directory as pg1 (else the member that leads after a failover
    fails every push: "working directory … is not the same as option pg1-path")."""
    own = [f"--pg1-path={pgdata}"] if pgdata is not None else []
    push = " ".join([*repo.command(*own, "archive-push"), "%p"])
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": push,
        "archive_timeout": "60",
    }


def render_config(repo: Repository, *, pgdata: Path, sockdir: Path, port: int,
                  others: Sequence[tuple[Path, Path, int]] = ()) -> str:
    """The stanza's config; `others` are further members of an HA cluster (data directory,
    socket directory, port) as pg2, pg3…: pgBackRest backs up from whichever is the primary."""
    members = [(pgdata, sockdir, port), *others]
    return "\n".join([
        "# Written by wtx from deploy/environments.toml ([environments.<env>.backups]); do not edit.",
        "[global]",
        f"repo1-path={repo.repo_path}",
        f"repo1-retention-full={repo.retention_full}",
        f"log-path={repo.config_dir / 'log'}",
        f"lock-path={repo.config_dir / 'lock'}",
        f"spool-path={repo.config_dir / 'spool'}",
        "log-level-console=warn",
        "log-level-file=info",
        "start-fast=y",
        "compress-type=lz4",
        "",
        f"[{repo.stanza}]",
        *[line for i, (data, sock, p) in enumerate(members, 1)
          for line in (f"pg{i}-path={data}", f"pg{i}-port={p}", f"pg{i}-socket-path={sock}", f"pg{i}-user={PG_USER}")],
        "",
    ])


def _chown_pg(path: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def postgres_dir(path: Path, mode: int) -> None:
    path.mkdir(exist_ok=True)
    _chown_pg(path)
    path.chmod(mode)


def write_config(repo: Repository, *, var_dir: Path, pgdata: Path, sockdir: Path, port: int,
                 others: Sequence[tuple[Path, Path, int]] = ()) -> None:
    """The repository's directory (0750) and the stanza's config (0600), both the postgres
    user's; the directories above them are made traversable (never listable) by it."""
    for directory in (repo.repo_path, repo.config_dir):
        ensure_reachable(directory, var_dir)
        postgres_dir(directory, 0o750 if directory == repo.repo_path else 0o700)
    for sub in ("log", "lock", "spool"):
        postgres_dir(repo.config_dir / sub, 0o700)
    text = render_config(repo, pgdata=pgdata, sockdir=sockdir, port=port, others=others)
    tmp = repo.config_file.with_suffix(".tmp")
    tmp.write_text(text)
    _chown_pg(tmp)
    tmp.chmod(0o600)
    tmp.replace(repo.config_file)


def run(repo: Repository, *args: str, timeout: float = 1800.0) -> str:
    """Run pgBackRest as the postgres user; its stdout, or BackupError with its own words."""
    try:
        res = subprocess.run(as_postgres_cmd(repo.command(*args)), capture_output=True, text=True,
                             timeout=timeout, cwd="/")
    except FileNotFoundError:
        raise BackupError("pgbackrest is not installed (Debian: apt-get install -y pgbackrest)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"pgbackrest {args[-1]} did not finish within {timeout:.0f} s") from None
    if res.returncode != 0:
        words = (res.stderr or res.stdout).strip().splitlines()
        raise BackupError(f"pgbackrest {args[-1]} failed: {words[-1] if words else res.returncode}")
    return res.stdout


def stanza_create(repo: Repository) -> None:
    """Create the stanza in the repository (a no-op when it exists and matches the cluster)."""
    run(repo, "stanza-create", timeout=120)


def check(repo: Repository) -> None:
    """Switch to a new WAL segment and wait until it is archived: everything committed so
    far is in the repository (what a restore to "now" needs)."""
    run(repo, "check", timeout=120)


@dataclass
class BackupSet:
    label: str
    kind: str              # full | incr | diff
    started: datetime
    stopped: datetime
    size_bytes: int        # the database's size at the backup
    repo_bytes: int        # what this set added to the repository (compressed)
    wal_start: str
    wal_stop: str

    def age_s(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.stopped).total_seconds()


@dataclass
class Info:
    sets: list[BackupSet]
    archive_min: str | None
    archive_max: str | None
    status: str            # pgBackRest's own word ("ok", "no valid backups", …)

    @property
    def last(self) -> BackupSet | None:
        return self.sets[-1] if self.sets else None

    def last_full(self) -> BackupSet | None:
        fulls = [s for s in self.sets if s.kind == "full"]
        return fulls[-1] if fulls else None


def parse_info(text: str, stanza: str) -> Info:
    """pgbackrest info --output=json → the stanza's backup sets, oldest first."""
    data = json.loads(text or "[]")
    entry = next((s for s in data if s.get("name") == stanza), None)
    if entry is None:
        return Info(sets=[], archive_min=None, archive_max=None, status="missing stanza")
    sets = []
    for b in entry.get("backup", []):
        ts = b.get("timestamp", {})
        info = b.get("info", {})
        repo = info.get("repository", {})
        archive = b.get("archive", {})
        sets.append(BackupSet(
            label=b.get("label", ""), kind=b.get("type", ""),
            started=datetime.fromtimestamp(int(ts.get("start", 0)), UTC),
            stopped=datetime.fromtimestamp(int(ts.get("stop", 0)), UTC),
            size_bytes=int(info.get("size", 0)), repo_bytes=int(repo.get("delta", repo.get("size", 0))),
            wal_start=archive.get("start") or "", wal_stop=archive.get("stop") or "",
        ))
    sets.sort(key=lambda s: s.stopped)
    archives = entry.get("archive", [])
    mins = [a.get("min") for a in archives if a.get("min")]
    maxs = [a.get("max") for a in archives if a.get("max")]
    return Info(sets=sets, archive_min=min(mins) if mins else None, archive_max=max(maxs) if maxs else None,
                status=str(entry.get("status", {}).get("message", "")))


def info(repo: Repository) -> Info:
    return parse_info(run(repo, "info", "--output=json", timeout=60), repo.stanza)


def choose_kind(info: Info, full_every_days: int, now: datetime | None = None) -> str:
    """full when there is none yet or the last one is older than full_every_days, else incr."""
    last_full = info.last_full()
    if last_full is None or last_full.age_s(now) >= full_every_days * 86_400:
        return "full"
    return "incr"


def backup(repo: Repository, kind: str) -> BackupSet:
    """One backup of `kind` (full | incr); the set it made (pgBackRest expires old fulls by
    repo1-retention-full, and the WAL only they needed, as it finishes)."""
    if kind not in ("full", "incr"):
        raise BackupError(f"unknown backup type {kind!r} (full or incr)")
    before = {s.label for s in info(repo).sets}
    run(repo, f"--type={kind}", "backup")
    made = [s for s in info(repo).sets if s.label not in before]
    if not made:
        raise BackupError("pgbackrest backup finished but no new backup set is listed")
    return made[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def target_text(when: datetime) -> str:
    """A recovery target time as PostgreSQL reads it (UTC, microseconds)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def restore(repo: Repository, pgdata: Path, *, to: datetime | None, delta: bool = False,
            archive: bool = False) -> None:
    """Restore the latest usable backup set into `pgdata` and have recovery replay the archived
    WAL up to `to` (None: to the end of the archive), then promote. With archive False the
    restored cluster never pushes WAL into the repository (a scratch copy must not)."""
    args = [f"--pg1-path={pgdata}"]
    if to is not None:  # without a target, recovery replays to the end of the archive and promotes
        args += ["--type=time", f"--target={target_text(to)}", "--target-action=promote"]
    if not archive:
        args.append("--archive-mode=off")
    if delta:
        args.append("--delta")
    run(repo, *args, "restore")


def start_scratch(pgdata: Path, sockdir: Path, port: int, log: Path, timeout: float = 300.0) -> None:
    """Start a restored cluster on its own port and socket (never the source's), archiving
    off, and wait until recovery reached its target and the cluster was promoted.

    The settings go last into postgresql.auto.conf, which PostgreSQL reads after every other
    file: a copy of a plain cluster includes wtx.conf, but a copy of an HA member carries the
    postgresql.conf Patroni wrote for it (the member's port and socket, its synchronous
    standby names: a promoted copy would wait for ever on every commit for a standby it never has)."""
    conf = "\n".join([
        "# Added by wtx for a restored scratch copy: its own port and socket, no archiving,",
        "# no synchronous standby.",
        "listen_addresses = '127.0.0.1'",
        f"port = {port}",
        f"unix_socket_directories = '{sockdir}'",
        "archive_mode = 'off'",
        "synchronous_standby_names = ''",
        "logging_collector = off",
        "",
    ])
    path = pgdata / "postgresql.auto.conf"
    before = path.read_text() if path.exists() else ""
    path.write_text(before + ("" if before.endswith("\n") or not before else "\n") + conf)
    _chown_pg(path)
    path.chmod(0o600)
    res = subprocess.run(as_postgres_cmd([str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-l", str(log),
                                          "-w", "-t", str(int(timeout)), "start"]),
                         capture_output=True, text=True, timeout=timeout + 30, cwd="/")
    if res.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        raise BackupError(f"the restored cluster did not start: {' / '.join(tail) or res.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded: recovery ends (promote) or the deadline
        state = subprocess.run(as_postgres_cmd([str(PG_BIN / "psql"), "-X", "-A", "-t", "-h", str(sockdir),
                                                "-p", str(port), "-d", "postgres", "-c", "SELECT pg_is_in_recovery()"]),
                               capture_output=True, text=True, timeout=30, cwd="/")
        if state.returncode == 0 and state.stdout.strip() == "f":
            return
        time.sleep(0.5)
    raise BackupError(f"the restored cluster was still recovering after {timeout:.0f} s (see {log})")


def stop_scratch(pgdata: Path) -> None:
    if (pgdata / "postmaster.pid").exists():
        subprocess.run(as_postgres_cmd([str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w",
                                        "-t", "60", "stop"]), capture_output=True, text=True, timeout=90, cwd="/")


@dataclass(frozen=True)
class Archiver:
    """What pg_stat_archiver says about continuous WAL archiving."""

    archived_age_s: float | None  # since the last segment was archived; None: none yet
    failing_for_s: float | None  # the last attempt failed (after the last success): since when
    failed_count: int
    last_failed_wal: str

    @property
    def problem(self) -> str:
        if self.failing_for_s is None:
            return ""
        return (f"WAL archiving failing for {self.failing_for_s:.0f} s ({self.failed_count} failed attempts, "
                f"segment {self.last_failed_wal or '?'}): a restore cannot reach past the last archived segment")


def archiver_state(psql_output: str, now: datetime | None = None) -> Archiver:
    """pg_stat_archiver's row (ARCHIVER_SQL's answer: archived epoch|failed epoch|count|wal)."""
    text = psql_output.strip()
    try:
        archived, failed, count, wal = text.split("|")
        at = (now or datetime.now(UTC)).timestamp()
        archived_age = max(0.0, at - float(archived)) if archived else None
        failing = (max(0.0, at - float(failed)) if failed and (not archived or float(failed) > float(archived))
                   else None)
        return Archiver(archived_age, failing, int(count or 0), wal)
    except ValueError:
        raise PostgresError(f"unexpected pg_stat_archiver answer: {text!r}") from None


ARCHIVER_SQL = ("SELECT coalesce(extract(epoch FROM last_archived_time)::text, '') || '|' || "
                "coalesce(extract(epoch FROM last_failed_time)::text, '') || '|' || failed_count || '|' || "
                "coalesce(last_failed_wal, '') FROM pg_stat_archiver;")
