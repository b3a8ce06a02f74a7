"""/metrics reports the HA database's standbys and lag, read at most once per cache period per
worker, and a scrape never fails because the database does. Against a real Patroni leader
(the app's role, pg_monitor, no superuser): tests/integration/test_ha_backups.py."""

from __future__ import annotations

import math

import pytest
from django.test import Client

from wondertix.ops import replication

pytestmark = pytest.mark.django_db


class FakeCursor:
    def __init__(self, row):
        self.row, self.sql = row, []

    def execute(self, sql):
        self.sql.append(sql)

    def fetchone(self):
        return self.row


def test_one_query_gives_sync_standbys_streaming_replicas_lag_and_archive_age():
    cursor = FakeCursor((1, 1, 4096, 12.5))
    assert replication.read(cursor) == replication.Replication(1, 1, 4096, 12.5)
    assert len(cursor.sql) == 1 and "pg_stat_replication" in cursor.sql[0] and "pg_stat_archiver" in cursor.sql[0]
    nothing_archived = replication.read(FakeCursor((0, 0, None, None)))
    assert nothing_archived.lag_bytes == 0 and math.isnan(nothing_archived.wal_archive_age_s)


@pytest.fixture
def fake_leader(monkeypatch):
    reads = []

    def read(cursor):
        reads.append(1)
        return replication.Replication(sync_standbys=1, streaming_replicas=1, lag_bytes=2048, wal_archive_age_s=7.0)

    monkeypatch.setattr(replication, "read", read)
    monkeypatch.setitem(replication._cache, "at", -math.inf)
    return reads


def test_the_database_is_asked_at_most_once_per_cache_period(fake_leader):
    assert replication.refresh(10, now=1000.0) is True
    assert replication.refresh(10, now=1009.9) is False
    assert replication.refresh(10, now=1010.0) is True
    assert len(fake_leader) == 2


def test_metrics_show_the_gauges_where_the_database_is_ha(fake_leader, settings):
    settings.DATABASE_REPLICATION_METRICS = True
    settings.REPLICATION_METRICS_CACHE_S = 60
    body = Client().get("/metrics").content.decode()
    assert "wondertix_database_sync_standbys 1.0" in body
    assert "wondertix_database_replication_lag_bytes 2048.0" in body
    assert "wondertix_wal_archive_age_seconds 7.0" in body
    Client().get("/metrics")
    assert len(fake_leader) == 1, "the second scrape within the period reads the cache"


def test_a_scrape_while_the_database_fails_keeps_the_last_values(monkeypatch, settings):
    def broken(cursor):
        raise replication_error

    replication_error = RuntimeError("connection refused")
    monkeypatch.setattr(replication, "read", broken)
    monkeypatch.setitem(replication._cache, "at", -math.inf)
    from wondertix.ops import metrics

    metrics.DATABASE_SYNC_STANDBYS.set(1)
    settings.DATABASE_REPLICATION_METRICS = True
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert "wondertix_database_sync_standbys 1.0" in response.content.decode()


def test_without_an_ha_database_the_replication_is_never_read(fake_leader, settings):
    settings.DATABASE_REPLICATION_METRICS = False
    assert Client().get("/metrics").status_code == 200
    assert fake_leader == []
