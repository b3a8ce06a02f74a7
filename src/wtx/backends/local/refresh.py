"""Copy one environment's PostgreSQL database into another's, scrubbed before it can be read.

    source cluster (prd)                    target cluster (stg)
    pg_dump -Fc  ──── pipe, never a file ───▶ pg_restore into <db>_incoming   (no app role may
                                             connect: pg_hba names only the target database)
                                             migrate + scrub_personal_data as a one-off role
                                             allowed into <db>_incoming only, for this run
                                             <db> ──rename──▶ <db>_previous (dropped)
                                             <db>_incoming ──rename──▶ <db>

Each environment runs its own cluster, so `CREATE DATABASE … TEMPLATE` cannot cross them; the
dump streams from one to the other through a pipe and nothing unscrubbed touches the disk
outside PostgreSQL. The target's own database is dumped to a file first (the way back), and
swapped out only after the scrub committed: stg never reads an unscrubbed row, even briefly.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wtx.backends.local.guards import dump_path
from wtx.backends.local.postgres import PG_BIN, Cluster, PostgresError, as_postgres_cmd

Progress = Callable[[str], None]


@dataclass
class RefreshResult:
    dump: str | None          # the target's database as it was before (pg_dump -Fc), if it existed
    seconds: float
    tables: int
    rows: int


def staging_name(database: str) -> str:
    return f"{database}_incoming"[:63]


def refresh_role_name(role: str) -> str:
    return f"{role}_refresh"[:63]


def _say(progress: Progress | None, msg: str) -> None:
    if progress is not None:
        progress(msg)


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def database_exists(cluster: Cluster, database: str) -> bool:
    return bool(cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = {_lit(database)};").strip())  # noqa: S608


def dump_to_file(cluster: Cluster, database: str, path: Path) -> Path:
    """pg_dump -Fc of `database` into `path` (0600, written by wtx, read back with pg_restore)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    with open(path, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
        res = subprocess.run(
            as_postgres_cmd([str(PG_BIN / "pg_dump"), "-Fc", "-h", str(cluster.sockdir), "-p", str(cluster.port), database]),
            stdout=fh, stderr=subprocess.PIPE, text=False,
        )
    if res.returncode != 0:
        path.unlink(missing_ok=True)
        raise PostgresError(f"pg_dump of {database} failed: {res.stderr.decode(errors='replace').strip()}")
    return path


def copy_database(source: Cluster, source_db: str, target: Cluster, target_db: str, owner: str) -> None:
    """pg_dump | pg_restore, cluster to cluster; every restored object is owned by `owner`."""
    dump = subprocess.Popen(
        as_postgres_cmd([str(PG_BIN / "pg_dump"), "-Fc", "--no-owner", "--no-privileges",
                         "-h", str(source.sockdir), "-p", str(source.port), source_db]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert dump.stdout is not None
    restore = subprocess.run(
        as_postgres_cmd([str(PG_BIN / "pg_restore"), "--no-owner", "--no-privileges", f"--role={owner}",
                         "--exit-on-error", "-h", str(target.sockdir), "-p", str(target.port), "-d", target_db]),
        stdin=dump.stdout, capture_output=True,
    )
    dump.stdout.close()
    dump_err = dump.stderr.read().decode(errors="replace").strip() if dump.stderr else ""
    dump.wait(60)
    if dump.returncode != 0:
        raise PostgresError(f"pg_dump of {source_db} failed: {dump_err}")
    if restore.returncode != 0:
        raise PostgresError(f"pg_restore into {target_db} failed: {restore.stderr.decode(errors='replace').strip()}")


def row_counts(cluster: Cluster, database: str) -> dict[str, int]:
    """Exact rows per table of the public schema (count(*), not the planner's estimate)."""
    tables = [t for t in cluster.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;", database).split() if t]
    if not tables:
        return {}
    sql = " UNION ALL ".join(f"SELECT {_lit(t)}, count(*) FROM public.{_q(t)}" for t in tables)  # noqa: S608
    counts = {}
    for line in cluster.psql(sql + ";", database).splitlines():
        if "|" in line:
            name, _, n = line.partition("|")
            counts[name] = int(n)
    return counts


def swap_in(cluster: Cluster, staging: str, database: str, timeout: float = 30.0) -> None:
    """Put `staging` in the place of `database`: no new connections to the old one, end the
    open ones, rename old away, rename the new one in, drop the old one (a dump was taken)."""
    previous = f"{database}_previous"[:63]
    cluster.psql(f"DROP DATABASE IF EXISTS {_q(previous)} WITH (FORCE);")
    exists = database_exists(cluster, database)
    if exists:
        cluster.psql(f"ALTER DATABASE {_q(database)} ALLOW_CONNECTIONS false;")
        deadline = time.monotonic() + timeout
        while True:  # ends: connections are refused now, and the deadline bounds it
            cluster.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {_lit(database)};")  # noqa: S608
            try:
                cluster.psql(f"ALTER DATABASE {_q(database)} RENAME TO {_q(previous)};")
                break
            except PostgresError:
                if time.monotonic() > deadline:
                    cluster.psql(f"ALTER DATABASE {_q(database)} ALLOW_CONNECTIONS true;")
                    raise
                time.sleep(0.1)
    try:
        cluster.psql(f"ALTER DATABASE {_q(staging)} RENAME TO {_q(database)};")
    except PostgresError:
        if exists:  # put the old one back: the environment keeps its database
            cluster.psql(f"ALTER DATABASE {_q(previous)} RENAME TO {_q(database)};\n"
                         f"ALTER DATABASE {_q(database)} ALLOW_CONNECTIONS true;")
        raise
    cluster.psql(f"ALTER DATABASE {_q(database)} ALLOW_CONNECTIONS true;\n"
                 f"REVOKE ALL ON DATABASE {_q(database)} FROM PUBLIC;")
    if exists:
        cluster.psql(f"DROP DATABASE IF EXISTS {_q(previous)} WITH (FORCE);")


def refresh(
    *, source: Cluster, source_db: str, target: Cluster, target_db: str, target_role: str,
    hba_database: str, dump_dir: Path, prepare: Callable[[str], None], progress: Progress | None = None,
) -> RefreshResult:
    """Replace `target_db` with a copy of `source_db` that `prepare(database_url)` (migrate,
    then scrub) has made safe, in a staging database the target's app cannot reach.

    `hba_database`/`target_role` are the pg_hba entry the target's app connects with; while the
    scrub runs, one more entry admits a one-off role to the staging database only."""
    started = time.monotonic()
    staging, scrubber = staging_name(target_db), refresh_role_name(target_role)
    dump: Path | None = None
    if database_exists(target, target_db):
        _say(progress, f"dumping {target_db} first (the way back)")
        dump = dump_to_file(target, target_db, dump_path(dump_dir, target_db, "refresh"))
    _say(progress, f"creating {staging}, which no application role may connect to")
    try:
        url = _isolated_copy(source, source_db, target, staging, scrubber, target_role, hba_database, progress)
        _say(progress, f"migrating and scrubbing {staging}")
        prepare(url)
        _close_scrubber(target, scrubber, hba_database, target_role)
        counts = row_counts(target, staging)
        _say(progress, f"swapping {staging} in as {target_db}")
        swap_in(target, staging, target_db)
    except BaseException:
        _drop_staging(target, staging, scrubber, hba_database, target_role)
        raise
    return RefreshResult(dump=str(dump) if dump else None, seconds=round(time.monotonic() - started, 1),
                         tables=len(counts), rows=sum(counts.values()))


def _isolated_copy(source: Cluster | None, source_db: str, target: Cluster, name: str, role: str, target_role: str,
                   hba_database: str, progress: Progress | None) -> str:
    """Copy `source_db` into a new database `name` of the target's cluster, owned by
    `target_role` but out of its app's reach, and make `role`: a one-off member of the owner
    role that always acts as it (so a migration's new tables belong to the owner), allowed
    into `name` only. Returns that role's URL; the caller drops both (`_drop_staging`)."""
    _drop_staging(target, name, role, hba_database, target_role)
    target.psql(f"CREATE DATABASE {_q(name)} OWNER {_q(target_role)};\n"
                f"REVOKE ALL ON DATABASE {_q(name)} FROM PUBLIC;")
    if source is not None:  # else an empty database
        _say(progress, f"copying {source_db} (port {source.port}) into {name} (port {target.port})")
        copy_database(source, source_db, target, name, target_role)
    password = secrets.token_urlsafe(24)
    target.psql(f"CREATE ROLE {_q(role)} LOGIN PASSWORD {_lit(password)} IN ROLE {_q(target_role)};\n"
                f"ALTER ROLE {_q(role)} SET role = {_lit(target_role)};")
    target.write_hba(hba_database, target_role, extra=[(name, role)])
    target.reload()
    return f"postgres://{role}:{password}@{target.address}:{target.port}/{name}"


def rehearsal_name(database: str) -> str:
    return f"{database}_rehearsal"[:63]


@contextmanager
def scratch_copy(*, source: Cluster, source_db: str, target: Cluster, target_role: str,
                 hba_database: str, progress: Progress | None = None) -> Iterator[str]:
    """A fresh copy of `source_db` in a scratch database of the target's cluster, for the
    length of the block: yields the URL of a one-off role allowed into that database only.
    The environment's own database is never touched and its app role cannot connect to the
    copy (pg_hba names only its own database); on leaving, the copy and the role are dropped.
    The copy is not scrubbed: the caller scrubs it before anything serves from it."""
    scratch, visitor = rehearsal_name(hba_database), rehearsal_name(target_role)
    try:
        yield _isolated_copy(source, source_db, target, scratch, visitor, target_role, hba_database, progress)
    finally:
        _drop_staging(target, scratch, visitor, hba_database, target_role)


def integration_name(database: str) -> str:
    return f"{database}_integration"[:63]


@contextmanager
def scratch_database(*, target: Cluster, target_role: str, hba_database: str,
                     progress: Progress | None = None) -> Iterator[str]:
    """An empty scratch database in the target's cluster for the block, reached only by a
    one-off role (as scratch_copy's): the integration gate's suites run in it; dropped on
    leaving, pass or fail."""
    scratch, visitor = integration_name(hba_database), integration_name(target_role)
    try:
        yield _isolated_copy(None, "", target, scratch, visitor, target_role, hba_database, progress)
    finally:
        _drop_staging(target, scratch, visitor, hba_database, target_role)


def _close_scrubber(cluster: Cluster, scrubber: str, hba_database: str, role: str) -> None:
    cluster.write_hba(hba_database, role)
    cluster.reload()
    cluster.psql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {_lit(scrubber)};\n"  # noqa: S608
        f"DROP ROLE IF EXISTS {_q(scrubber)};"
    )


def _drop_staging(cluster: Cluster, staging: str, scrubber: str, hba_database: str, role: str) -> None:
    """Leave nothing of an earlier or failed run: no staging database, no one-off role."""
    cluster.psql(f"DROP DATABASE IF EXISTS {_q(staging)} WITH (FORCE);")
    _close_scrubber(cluster, scrubber, hba_database, role)
