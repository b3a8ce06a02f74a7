"""Guards against destroying real data: a marker inside each database, and a dump first.

The marker says the data policy the database was created with, and travels with the data, not
with the checkout: a spec edited to call prd's database "demo", or a dev pointed at a copy of
it, still finds "real" written inside and `wtx db reset|seed|refresh` refuse.

    PostgreSQL: COMMENT ON DATABASE <db> IS 'wtx data_policy=real'
                (a database's own comment: pg_dump leaves it out unless asked with --create,
                so a refresh's copy never carries prd's marker into stg; a physical restore
                of prd does carry it, as it should — it is real data)
    SQLite:     a one-row table wtx_data_marker(data_policy) in the database file

A marker only ever tightens (demo → scrubbed-copy-of-prd → real): wtx never writes a looser
one over a stricter one. Every destructive step dumps the database first into
var/envs/<env>/dumps/ (0600, named with the time and the reason) and keeps the newest
`dumps_keep` dumps of that directory.
"""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from wtx.backends.local.postgres import Cluster

POLICIES = ("demo", "scrubbed-copy-of-prd", "real")
_COMMENT = re.compile(r"\bwtx data_policy=([a-z-]+)")
MARKER_TABLE = "wtx_data_marker"


def stricter(a: str | None, b: str | None) -> str | None:
    """The stricter of two policies (None: no marker)."""
    known = [p for p in (a, b) if p in POLICIES]
    return max(known, key=POLICIES.index) if known else None


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


# ------------------------------------------------------------------------------ PostgreSQL
def read_pg_marker(cluster: Cluster, database: str) -> str | None:
    """The policy written inside `database` (None: no marker, or no such database)."""
    comment = cluster.psql(
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = {_lit(database)};"  # noqa: S608
    ).strip()
    found = _COMMENT.search(comment)
    return found.group(1) if found else None


def write_pg_marker(cluster: Cluster, database: str, policy: str) -> str:
    """Mark `database` with `policy`, never loosening an existing marker; the marker now."""
    if policy not in POLICIES:
        raise ValueError(f"unknown data policy {policy!r}")
    now = stricter(read_pg_marker(cluster, database), policy)
    assert now is not None
    cluster.psql(f"COMMENT ON DATABASE {_q(database)} IS {_lit('wtx data_policy=' + now)};")
    return now


# ------------------------------------------------------------------------------ SQLite
def read_sqlite_marker(path: Path) -> str | None:
    if not path.exists():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = con.execute(f"SELECT data_policy FROM {MARKER_TABLE} LIMIT 1").fetchone()  # noqa: S608
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return row[0] if row and row[0] in POLICIES else None


def write_sqlite_marker(path: Path, policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"unknown data policy {policy!r}")
    now = stricter(read_sqlite_marker(path), policy)
    assert now is not None
    con = sqlite3.connect(path)
    try:
        with con:
            con.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (data_policy TEXT NOT NULL)")
            con.execute(f"DELETE FROM {MARKER_TABLE}")  # noqa: S608
            con.execute(f"INSERT INTO {MARKER_TABLE} (data_policy) VALUES (?)", (now,))  # noqa: S608
    finally:
        con.close()
    return now


# ------------------------------------------------------------------------------ dumps
def dump_path(dump_dir: Path, database: str, reason: str, suffix: str = "dump") -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return dump_dir / f"{database}-{stamp}-before-{reason}.{suffix}"


def dump_sqlite(path: Path, target: Path) -> Path:
    """A consistent copy of a SQLite database (its backup API), 0600."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def prune_dumps(dump_dir: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` dumps (by the time in their names); the removed ones."""
    if not dump_dir.is_dir():
        return []
    dumps = sorted((p for p in dump_dir.iterdir() if p.is_file() and "-before-" in p.name),
                   key=lambda p: (p.name.split("-before-")[0].rsplit("-", 1)[-1], p.name))
    removed = dumps[:-keep] if keep > 0 else dumps
    for p in removed:
        p.unlink()
    return removed
