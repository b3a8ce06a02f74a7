"""The restore drill (issue 8, acceptance 4) and the data-marker guard (acceptance 5) on real
PostgreSQL clusters set up by wtx's own code, with pgBackRest archiving prd's WAL.

prd's cluster is made the way `wtx up` makes it (wtx.conf with the archive settings, its role
and database, the data marker, the pgBackRest config and stanza) in a throwaway var dir, on a
free port (a spec variant: nothing here binds the spec's fixed ports). The app serves it with
gunicorn; patrons buy through the API. Then: a full backup, orders, a noted second, more
orders, `db_restore --to <second> --into scratch` → the scratch copy holds exactly the orders
placed before that second.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer, manage
from tests.support.wtxclusters import wtx_clusters

from wtx import ledger
from wtx.backends import DeployError
from wtx.backends.local import backups, guards
from wtx.backends.local import pgbackrest as pgbr
from wtx.backends.local.postgres import PG_BIN, Cluster, as_postgres_cmd

ORDERS_EACH_SIDE = 4



@pytest.fixture(scope="module")
def site() -> Iterator[dict]:
    with wtx_clusters(prefix="wtx-drill-") as clusters:
        prd_cluster, stg_cluster = clusters.start("prd"), clusters.start("stg")
        url = clusters.url("prd")
        manage(url, "migrate", "--noinput")
        manage(url, "seed_demo")
        with LiveServer(url, workers=2, migrate=False) as server:
            yield {"backend": clusters.backend, "prd": clusters.backend.env("prd"), "stg": clusters.backend.env("stg"),
                   "prd_cluster": prd_cluster, "stg_cluster": stg_cluster, "server": server}


def _on_sale(cluster: Cluster, database: str) -> tuple[int, int]:
    row = cluster.psql(
        "SELECT p.id || ' ' || pt.id FROM catalog_performance p JOIN catalog_pricetype pt ON pt.event_id = p.event_id "
        "WHERE pt.active AND NOT pt.staff_only AND NOT pt.pay_what_you_can AND p.status = 'on_sale' "
        "AND p.starts_at > now() AND (p.on_sale_from IS NULL OR p.on_sale_from <= now()) "
        "AND (p.on_sale_until IS NULL OR p.on_sale_until > now()) ORDER BY p.starts_at DESC, pt.id LIMIT 1;",
        database,
    ).split()
    return int(row[0]), int(row[1])


def _buy(site: dict, n: int, tag: str) -> list[str]:
    perf, price = _on_sale(site["prd_cluster"], site["prd"].database.name)
    refs = []
    with httpx.Client(base_url=site["server"].url, timeout=30) as client:
        for i in range(n):
            r = client.post("/api/v1/orders", json=order_payload(perf, price, 1, email=f"{tag}{i}@example.org"))
            assert r.status_code == 201, r.text
            refs.append(r.json()["reference"])
    return refs


def _order_ids(sockdir: str, port: int, database: str) -> set[str]:
    res = subprocess.run(as_postgres_cmd([str(PG_BIN / "psql"), "-X", "-A", "-t", "-h", sockdir, "-p", str(port),
                                          "-d", database, "-c", "SELECT 'WT-' || lpad(id::text, 6, '0') FROM sales_order"]),
                         capture_output=True, text=True, timeout=30, check=True)
    return {line for line in res.stdout.split() if line}


def test_restore_to_a_noted_second_holds_exactly_the_orders_placed_before_it(site):
    backend, prd = site["backend"], site["prd"]
    full = backend.db_backup("prd", "full")
    assert full["type"] == "full" and full["database_bytes"] > 0

    already = _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name)
    before = _buy(site, ORDERS_EACH_SIDE, "before")
    time.sleep(1.2)
    noted = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.2)
    after = _buy(site, ORDERS_EACH_SIDE, "after")
    live = _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name)
    assert live == already | set(before) | set(after)

    result = backend.db_restore("prd", noted.isoformat(), "scratch")
    assert result["port"] != prd.database.port
    restored = _order_ids(result["socket"], result["port"], prd.database.name)
    assert restored == already | set(before), f"restored to {noted}: extra {restored - already - set(before)}, missing {already | set(before) - restored}"
    assert not restored & set(after)
    # The scratch copy never archives into prd's repository, and the live cluster is untouched.
    assert _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name) == live
    scratch_conf = Path(result["data"]) / "postgresql.auto.conf"
    assert "archive_mode = 'off'" in scratch_conf.read_text()
    print(f"\ndrill: full backup {full['wall_seconds']} s, database {full['database_bytes']} B, "
          f"added {full['repository_bytes']} B; restore to {noted} in {result['seconds']} s; "
          f"{len(already | set(before))} orders restored, {len(after)} after the noted second absent")

    dropped = backend.db_drop_scratch("prd", result["scratch"])
    assert dropped == [result["scratch"]] and not Path(result["data"]).exists()


def test_incremental_backup_lists_after_the_full_and_status_reports_fresh_ages(site):
    backend, prd = site["backend"], site["prd"]
    made = backend.db_backup("prd")  # a full exists and is young: the default is incremental
    assert made["type"] == "incr"
    listed = backend.db_backups("prd")["backups"]
    assert [b["type"] for b in listed][-1] == "incr" and "full" in [b["type"] for b in listed]
    state = backups.status(backend, prd)
    assert state is not None and state["stale"] is False and state["last_backup_age_h"] < 1
    assert state["wal_archive_age_s"] is not None and state["wal_archive_age_s"] < 600


def test_restore_over_the_live_cluster_is_refused_without_the_second_confirmation(site):
    backend, prd = site["backend"], site["prd"]
    refs = _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name)
    with pytest.raises(DeployError, match="--replace-live-database"):
        backend.db_restore("prd", "latest", "live")
    assert _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name) == refs
    assert ledger.read(backend.var_dir, "prd")[-1]["event"] == "db-restore-refused"


def test_a_database_marked_real_is_never_reset_even_where_the_spec_says_otherwise(site):
    """stg's spec says scrubbed-copy-of-prd; the database it points at says real inside."""
    backend, stg, cl = site["backend"], site["stg"], site["stg_cluster"]
    assert stg.database.data_policy != "real"
    assert guards.read_pg_marker(cl, stg.database.name) == stg.database.data_policy  # written at creation
    guards.write_pg_marker(cl, stg.database.name, "real")  # as if prd's data had been restored into it
    cl.psql("CREATE TABLE keep_me (v text); INSERT INTO keep_me VALUES ('box office takings');", stg.database.name)
    for action in (lambda: backend.db_reset("stg"), lambda: backend.db_refresh("stg", "prd")):
        with pytest.raises(DeployError, match="marked as holding real data"):
            action()
    assert cl.psql("SELECT v FROM keep_me;", stg.database.name).strip() == "box office takings"
    # A looser policy is never written over it.
    assert guards.write_pg_marker(cl, stg.database.name, "demo") == "real"
    events = [r["event"] for r in ledger.read(backend.var_dir, "stg")]
    assert events[-2:] == ["db-reset-refused", "db-refresh-refused"]


def test_pgbackrest_files_belong_to_postgres_and_are_not_readable_by_others(site):
    backend, prd = site["backend"], site["prd"]
    repo = backups.repository(backend, prd)
    assert repo is not None
    conf = repo.config_file.stat()
    assert conf.st_mode & 0o077 == 0
    import pwd

    assert pwd.getpwuid(conf.st_uid).pw_name == "postgres"
    assert repo.repo_path.stat().st_mode & 0o007 == 0
    assert backend.spec.hosts[prd.backups.host] != backend.spec.host_of(prd) or prd.backups.host != backend.spec.host_name(prd)
    assert repo.repo_path.is_relative_to(backend.layout.host_dir(prd.backups.host))
    assert pgbr.archive_settings(repo)["archive_mode"] == "on"
    assert site["prd_cluster"].setting("archive_mode") == "on"


def test_a_restore_to_latest_holds_every_order_committed_before_it(site):
    backend, prd = site["backend"], site["prd"]
    _buy(site, 1, "last")
    live = _order_ids(str(site["prd_cluster"].sockdir), prd.database.port, prd.database.name)
    result = backend.db_restore("prd", "latest", "scratch")
    try:
        assert _order_ids(result["socket"], result["port"], prd.database.name) == live
    finally:
        backend.db_drop_scratch("prd", result["scratch"])
