"""The HA database's replication as /metrics gauges: is bak's copy in sync, how far behind.

Read from the leader's own views (the app's connection goes through the entry point to the
leader): `pg_stat_replication` for the standbys, `pg_stat_archiver` for the WAL archive. A
role without monitoring rights sees the standbys' rows with their state, sync state and
positions blanked, so wtx grants the app's role PostgreSQL's built-in read-only `pg_monitor`
role on an HA database (docs/operations.md#metrics explains the choice).

Cached per process for REPLICATION_METRICS_CACHE_S seconds: a scraper polling every worker
every second costs the database at most one small query per worker per period. The backup's
own age lives in pgBackRest's repository, which the app never reads: `wtx status` reports it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from wondertix.ops import metrics

log = logging.getLogger(__name__)

SQL = """
SELECT count(*) FILTER (WHERE r.state = 'streaming' AND r.sync_state IN ('sync', 'quorum')),
       count(*) FILTER (WHERE r.state = 'streaming'),
       coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)), 0),
       (SELECT extract(epoch FROM now() - last_archived_time) FROM pg_stat_archiver)
  FROM pg_stat_replication r
"""


@dataclass(frozen=True)
class Replication:
    sync_standbys: int
    streaming_replicas: int
    lag_bytes: int            # the furthest streaming standby's replay position behind the leader
    wal_archive_age_s: float  # NaN: nothing archived yet (or archiving off)


def read(cursor: Any) -> Replication:
    """One query on a DB-API cursor connected to the leader."""
    cursor.execute(SQL)
    sync, streaming, lag, archive_age = cursor.fetchone()
    return Replication(int(sync), int(streaming), int(lag or 0),
                       float(archive_age) if archive_age is not None else math.nan)


_cache: dict[str, float] = {"at": -math.inf}


def refresh(max_age_s: float, *, now: float | None = None) -> bool:
    """Set the gauges from the database unless this process did so less than `max_age_s` ago.
    Returns whether it queried. A failure is logged and leaves the last values (a scrape never
    fails because the database is failing over)."""
    from django.db import connection

    now = time.monotonic() if now is None else now
    if now - _cache["at"] < max_age_s:
        return False
    _cache["at"] = now
    try:
        with connection.cursor() as cursor:
            found = read(cursor)
    except Exception as exc:  # noqa: BLE001 - any database failure: keep the last values
        log.warning("replication metrics not read: %s", type(exc).__name__)
        return True
    metrics.DATABASE_SYNC_STANDBYS.set(found.sync_standbys)
    metrics.DATABASE_STREAMING_REPLICAS.set(found.streaming_replicas)
    metrics.DATABASE_REPLICATION_LAG.set(found.lag_bytes)
    metrics.WAL_ARCHIVE_AGE.set(found.wal_archive_age_s)
    return True
