"""The local backend's backups, restores and data guards: what `wtx db backup|backups|restore`,
`wtx status` and the destructive `wtx db` commands call (pgbackrest.py and guards.py do the work).

Functions of the backend (not methods) keep backend.py to the environments' life cycle.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wtx import ledger
from wtx.backends import DeployError, Progress
from wtx.backends.local import dbha, guards
from wtx.backends.local import pgbackrest as pgbr
from wtx.backends.local.layout import SLOTS
from wtx.backends.local.postgres import PostgresError, ensure_reachable
from wtx.backends.local.refresh import database_exists, dump_to_file
from wtx.spec import Environment

if TYPE_CHECKING:
    from wtx.backends.local.backend import LocalBackend


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


# ------------------------------------------------------------------------------ configuration
def repository(b: LocalBackend, env: Environment) -> pgbr.Repository | None:
    """The pgBackRest repository of `env`'s cluster (None: its spec declares no backups)."""
    owner = b.cluster_env(env)
    if owner is None or owner.backups is None:
        return None
    return pgbr.Repository(stanza=owner.name, config_dir=b.layout.pgbackrest_dir(owner.name),
                           repo_path=b.layout.backup_repo(owner.backups.host),
                           retention_full=owner.backups.retention_full)


def cluster_settings(b: LocalBackend, env: Environment, pgdata: Path | None = None) -> dict[str, str]:
    """The extra PostgreSQL parameters of `env`'s own cluster (archiving when it has backups);
    `pgdata`: an HA member's data directory (its archive command names it, see archive_settings)."""
    repo = repository(b, env) if b.owns_cluster(env) else None
    return pgbr.archive_settings(repo, pgdata) if repo is not None else {}


def write_repo_config(b: LocalBackend, env: Environment, repo: pgbr.Repository) -> None:
    """The stanza's config: `env`'s one cluster, or every member of its HA database (pgBackRest
    finds the primary among them, so a backup follows the leader across failovers)."""
    ha = b.ha_cluster(env)
    if ha is not None:
        members = [(ha.paths.pgdata(m.host), ha.paths.sockdir(m.host), m.port) for m in ha.ha.members]
        pgbr.write_config(repo, var_dir=b.var_dir, pgdata=members[0][0], sockdir=members[0][1], port=members[0][2],
                          others=members[1:])
        return
    cl = b.cluster(env)
    assert env.database.port is not None
    pgbr.write_config(repo, var_dir=b.var_dir, pgdata=cl.pgdata, sockdir=cl.sockdir, port=env.database.port)


def _need_repo(b: LocalBackend, env: Environment) -> pgbr.Repository:
    repo = repository(b, env)
    if repo is None:
        raise DeployError(f"{env.name}: the spec declares no backups ([environments.{env.name}.backups])")
    return repo


def prepare_cluster(b: LocalBackend, env: Environment, progress: Progress | None = None) -> None:
    """After `env`'s own cluster started: its data marker, and with backups the pgBackRest
    config, archiving on (a restart when a running cluster did not have it yet) and the stanza."""
    cl = b.cluster(env)
    guards.write_pg_marker(cl, env.database.name, env.database.data_policy)
    repo = repository(b, env)
    if repo is None:
        return
    write_repo_config(b, env, repo)
    if cl.setting("archive_mode") != "on":
        _say(progress, f"{env.name}: restarting PostgreSQL to turn WAL archiving on")
        ha = b.ha_cluster(env)
        if ha is not None:  # Patroni has the new setting pending: its own restart, member by member
            dbha.restart_members(ha, timeout=90)
            cl = b.cluster(env)
        else:
            b.supervisor.stop_program(b.db_program(env.name))
            b.supervisor.start_program(b.db_program(env.name))
        cl.wait_ready(60)
    try:
        pgbr.stanza_create(repo)
    except pgbr.BackupError as exc:
        raise DeployError(f"{env.name}: {exc}") from None


def timer_program(env: str) -> str:
    return f"{env}-backups"


def due(b: LocalBackend, env: Environment) -> bool:
    """A backup is due: none yet, or the last one is backups.every_h old."""
    assert env.backups is not None
    last = pgbr.info(_need_repo(b, env)).last
    return last is None or last.age_s() >= env.backups.every_h * 3600


def run_timer(b: LocalBackend, name: str, progress: Progress | None = None, *, poll_s: float = 60.0,
              rounds: int | None = None) -> None:
    """The `<env>-backups` program: every poll_s, a backup when one is due (full or incremental
    by full_every_days). A failure is logged and tried again at the next poll; `wtx status`
    turns red once the last backup is older than max_age_h. rounds bounds it (tests)."""
    env = b.env(name)
    done = 0
    while rounds is None or done < rounds:
        done += 1
        try:
            if due(b, env):
                made = backup(b, name, None, progress)
                _say(progress, f"{name}: {made['type']} backup {made['label']} in {made['wall_seconds']} s")
        except (DeployError, pgbr.BackupError, PostgresError) as exc:
            _say(progress, f"{name}: backup failed: {exc}")
        if rounds is None or done < rounds:
            time.sleep(poll_s)


# ------------------------------------------------------------------------------ guards
def read_marker(b: LocalBackend, env: Environment) -> str | None:
    """The data policy written inside `env`'s database (None: none, or no database yet)."""
    if env.database.engine == "sqlite":
        url = b.database_url(env, b.secrets(env))
        return guards.read_sqlite_marker(Path(url.removeprefix("sqlite:///")))
    owner = b.cluster_env(env)
    assert owner is not None
    cl = b.cluster(owner)
    try:
        cl.wait_ready(5)
    except PostgresError:
        raise DeployError(f"{env.name}: its PostgreSQL cluster is not running (run `wtx up {owner.name}`): "
                          "wtx reads the data marker from the database itself") from None
    return guards.read_pg_marker(cl, env.database.name)


def mark_sqlite(b: LocalBackend, env: Environment) -> None:
    url = b.database_url(env, b.secrets(env))
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists():
        guards.write_sqlite_marker(path, env.database.data_policy)


def refuse_marked_real(b: LocalBackend, env: Environment, action: str) -> None:
    """Refuse `action` on a database whose own marker says real data, whatever the spec says."""
    marker = read_marker(b, env)
    if marker == "real":
        ledger.append(b.var_dir, f"db-{action}-refused", env=env.name, reason="database marked real")
        raise DeployError(f"{env.name}: refusing to {action} a database marked as holding real data "
                          "(its wtx data marker says data_policy=real, whatever this checkout's spec says)")


def dump_before(b: LocalBackend, env: Environment, reason: str, progress: Progress | None = None) -> str | None:
    """Dump `env`'s database before a destructive step (None: there is nothing to dump yet),
    then keep only the newest `dumps_keep` dumps of the environment."""
    dump_dir = b.layout.dumps_dir(env.name)
    path: Path | None = None
    if env.database.engine == "sqlite":
        url = b.database_url(env, b.secrets(env))
        db = Path(url.removeprefix("sqlite:///"))
        if db.exists():
            _say(progress, f"{env.name}: dumping its database first ({reason})")
            path = guards.dump_sqlite(db, guards.dump_path(dump_dir, env.database.name, reason, "sqlite3"))
    else:
        owner = b.cluster_env(env)
        assert owner is not None
        cl = b.cluster(owner)
        if database_exists(cl, env.database.name):
            _say(progress, f"{env.name}: dumping its database first ({reason})")
            path = dump_to_file(cl, env.database.name, guards.dump_path(dump_dir, env.database.name, reason))
    guards.prune_dumps(dump_dir, b.spec.defaults.dumps_keep)
    return str(path) if path else None


# ------------------------------------------------------------------------------ backups
def _set_dict(s: pgbr.BackupSet, now: datetime) -> dict[str, Any]:
    return {"label": s.label, "type": s.kind, "started": s.started.isoformat(), "stopped": s.stopped.isoformat(),
            "seconds": round((s.stopped - s.started).total_seconds()), "age_h": round(s.age_s(now) / 3600, 2),
            "database_bytes": s.size_bytes, "repository_bytes": s.repo_bytes,
            "wal_start": s.wal_start, "wal_stop": s.wal_stop}


def backup(b: LocalBackend, name: str, kind: str | None, progress: Progress | None = None) -> dict[str, Any]:
    env = b.env(name)
    repo = _need_repo(b, env)
    owner = b.cluster_env(env)
    assert owner is not None and owner.backups is not None
    try:
        b.cluster(owner).wait_ready(5)
        current = pgbr.info(repo)
        kind = kind or pgbr.choose_kind(current, owner.backups.full_every_days)
        _say(progress, f"{owner.name}: {kind} backup into {repo.repo_path}")
        started = time.monotonic()
        made = pgbr.backup(repo, kind)
    except PostgresError:
        raise DeployError(f"{owner.name}: its PostgreSQL cluster is not running (run `wtx up {owner.name}`)") from None
    except pgbr.BackupError as exc:
        ledger.append(b.var_dir, "db-backup-failed", env=owner.name, reason=str(exc))
        raise DeployError(f"{owner.name}: {exc}") from None
    took = round(time.monotonic() - started, 1)
    record = {**_set_dict(made, datetime.now(UTC)), "wall_seconds": took}
    ledger.append(b.var_dir, "db-backup", env=owner.name, label=made.label, type=made.kind, seconds=took,
                  database_bytes=made.size_bytes, repository_bytes=made.repo_bytes)
    return {"env": owner.name, "repository": str(repo.repo_path), **record}


def backups(b: LocalBackend, name: str) -> dict[str, Any]:
    env = b.env(name)
    repo = _need_repo(b, env)
    try:
        found = pgbr.info(repo)
    except pgbr.BackupError as exc:
        raise DeployError(f"{env.name}: {exc}") from None
    now = datetime.now(UTC)
    return {"env": repo.stanza, "repository": str(repo.repo_path), "status": found.status,
            "archive_min": found.archive_min, "archive_max": found.archive_max,
            "backups": [_set_dict(s, now) for s in found.sets]}


def status(b: LocalBackend, env: Environment) -> dict[str, Any] | None:
    """Last backup's and the WAL archive's ages for `wtx status`; `stale` when the last
    backup is older than backups.max_age_h (or there is none) or WAL archiving is failing.
    None: no backups declared."""
    if env.backups is None or not b.owns_cluster(env):
        return None
    repo = repository(b, env)
    assert repo is not None
    limit_h = env.backups.max_age_h
    out: dict[str, Any] = {"max_age_h": limit_h, "last_backup": None, "last_backup_age_h": None,
                           "wal_archive_age_s": None, "stale": True, "problem": ""}
    found: pgbr.Info | None = None
    try:
        found = pgbr.info(repo) if repo.config_file.exists() else None
    except pgbr.BackupError as exc:
        out["problem"] = str(exc)  # the archiver's state below does not need the repository
    last = found.last if found is not None else None
    if last is not None:
        age_h = last.age_s() / 3600
        out.update(last_backup=f"{last.label} ({last.kind})", last_backup_age_h=round(age_h, 2), stale=age_h > limit_h)
        if out["stale"]:
            out["problem"] = f"last backup older than {limit_h} h"
    elif found is not None and found.status not in ("ok", "no valid backups", "missing stanza", ""):
        out["problem"] = f"the backup repository answers: {found.status}"  # pgBackRest's own word
    elif not out["problem"]:
        out["problem"] = "no backup yet"
    try:
        cl = b.cluster(env)
        cl.wait_ready(1)
        archiver = pgbr.archiver_state(cl.psql(pgbr.ARCHIVER_SQL))
    except PostgresError:
        return out  # cluster down: the health column says so
    out["wal_archive_age_s"] = archiver.archived_age_s
    if archiver.problem:
        # WAL is piling up in pg_wal and the recovery point stopped moving: red, exit 1.
        out["stale"] = True
        out["problem"] = "; ".join(p for p in (out["problem"], archiver.problem) if p)
    return out


# ------------------------------------------------------------------------------ restores
def parse_time(text: str) -> datetime:
    """An ISO time; without a zone it is UTC (the zone every wtx log and record uses)."""
    try:
        when = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise DeployError(f"--to {text!r}: not a time (e.g. 2026-11-27T18:30:05Z, or 'latest')") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def restore(b: LocalBackend, name: str, to: str, into: str, *, replace_live: bool = False,
            progress: Progress | None = None) -> dict[str, Any]:
    env = b.env(name)
    repo = _need_repo(b, env)
    owner = b.cluster_env(env)
    assert owner is not None
    target = None if to == "latest" else parse_time(to)
    if target is not None and target > datetime.now(UTC):
        raise DeployError(f"--to {to}: that time has not come yet")
    if into not in ("scratch", "live"):
        raise DeployError(f"--into {into!r}: scratch (a new cluster beside {owner.name}'s) or live")
    if into == "live" and not replace_live:
        ledger.append(b.var_dir, "db-restore-refused", env=owner.name, into="live", reason="no second confirmation")
        raise DeployError(f"{owner.name}: restoring over the live cluster replaces every row written since "
                          f"{to}; pass --replace-live-database as well to confirm (a dump is taken first)")
    if into == "live" and b.ha_cluster(owner) is not None:
        ledger.append(b.var_dir, "db-restore-refused", env=owner.name, into="live", reason="HA database")
        raise DeployError(f"{owner.name}: its database is an HA cluster (Patroni): restore into scratch and copy "
                          "what is needed back, or follow docs/operations.md#restoring-an-ha-database")
    try:
        cl = b.cluster(owner)
    except PostgresError as exc:
        raise DeployError(str(exc)) from None
    started = time.monotonic()
    running = True
    try:
        cl.wait_ready(3)
    except PostgresError:
        running = False
    try:
        if running:
            _say(progress, f"{owner.name}: archiving the current WAL segment (pgbackrest check)")
            pgbr.check(repo)
        if into == "scratch":
            result = _restore_scratch(b, owner, repo, target, progress)
        else:
            result = _restore_live(b, owner, repo, target, running, progress)
    except pgbr.BackupError as exc:
        ledger.append(b.var_dir, "db-restore-failed", env=owner.name, into=into, to=to, reason=str(exc))
        raise DeployError(f"{owner.name}: {exc}") from None
    result.update(env=owner.name, into=into, to=to, seconds=round(time.monotonic() - started, 1))
    ledger.append(b.var_dir, "db-restore", **{k: v for k, v in result.items() if k != "env"}, env=owner.name)
    return result


def _restore_scratch(b: LocalBackend, env: Environment, repo: pgbr.Repository, target: datetime | None,
                     progress: Progress | None) -> dict[str, Any]:
    name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = b.layout.scratch_dir(env.name) / name
    pgdata, sockdir, logs = home / "data", home / "sock", home / "log"
    write_repo_config(b, env, repo)
    ensure_reachable(pgdata, b.var_dir)
    for directory in (pgdata, sockdir, logs):
        pgbr.postgres_dir(directory, 0o700)
    port = pgbr.free_port()
    try:
        _say(progress, f"{env.name}: restoring the latest backup into {pgdata}")
        pgbr.restore(repo, pgdata, to=target)
        _say(progress, f"{env.name}: replaying WAL to {target or 'the end of the archive'} on port {port}")
        pgbr.start_scratch(pgdata, sockdir, port, logs / "postgres.log")
    except BaseException:
        pgbr.stop_scratch(pgdata)
        shutil.rmtree(home, ignore_errors=True)
        raise
    return {"scratch": name, "port": port, "socket": str(sockdir), "data": str(pgdata), "log": str(logs / "postgres.log"),
            "database": env.database.name,
            "psql": f"runuser -u postgres -- psql -h {sockdir} -p {port} -d {env.database.name}",
            "drop": f"wtx db drop-scratch {env.name} {name}"}


def _restore_live(b: LocalBackend, env: Environment, repo: pgbr.Repository, target: datetime | None,
                  running: bool, progress: Progress | None) -> dict[str, Any]:
    """Stop the app servers on this database, dump it, restore over it, bring it all back."""
    bak = b.backup(env)
    served = [env] + ([bak] if bak is not None else [])
    for e in served:
        _say(progress, f"{e.name}: stopping its app servers and jobs (nothing writes during the restore)")
        b.supervisor.stop_program(b.jobs_program(e.name))
        for slot in SLOTS:
            b.supervisor.stop_program(b.program(e.name, slot))
    dump = dump_before(b, env, "restore", progress) if running else None
    _say(progress, f"{env.name}: stopping PostgreSQL")
    b.supervisor.stop_program(b.db_program(env.name))
    cl = b.cluster(env)
    _say(progress, f"{env.name}: restoring over {cl.pgdata} (delta)")
    pgbr.restore(repo, cl.pgdata, to=target, delta=True, archive=True)
    cl.init(env.database.name, env.database.role, cluster_settings(b, env))
    b.supervisor.start_program(b.db_program(env.name))
    cl.wait_ready(300)
    deadline = time.monotonic() + 300
    while cl.psql("SELECT pg_is_in_recovery();").strip() != "f":  # bounded by the deadline
        if time.monotonic() > deadline:
            raise pgbr.BackupError("the restored cluster was still recovering after 300 s")
        time.sleep(0.5)
    _say(progress, f"{env.name}: starting its app servers again")
    b._up([e.name for e in served], progress)
    return {"dump": dump, "next": f"take a full backup now: wtx db backup {env.name} --full"}


def drop_scratch(b: LocalBackend, name: str, scratch: str | None) -> list[str]:
    """Stop and remove `env`'s scratch clusters (all of them, or the one named)."""
    env = b.env(name)
    base = b.layout.scratch_dir(env.name)
    found = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if scratch is not None:
        found = [p for p in found if p.name == scratch]
        if not found:
            raise DeployError(f"{env.name}: no scratch copy named {scratch!r} (see {base})")
    for home in found:
        pgbr.stop_scratch(home / "data")
        shutil.rmtree(home)
    if found:
        ledger.append(b.var_dir, "db-scratch-dropped", env=env.name, scratches=[p.name for p in found])
    return [p.name for p in found]
