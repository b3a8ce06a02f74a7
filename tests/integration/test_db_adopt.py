"""A var dir from before prd's HA database: its data is in one plain cluster. `wtx up` refuses
to start an empty HA cluster beside it; `wtx db adopt prd` moves the data into the HA
database, where the app's role reads it through the entry point.

Binds the spec's ports moved by tests/support/moved_spec.OFFSET, like test_db_failover.py: one
HA test at a time on the machine (`flock /tmp/wtx-ha.lock`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from tests.support.moved_spec import moved_spec
from tests.support.processes import kill_processes_naming

from wtx.backends import DeployError
from wtx.backends.local import LocalBackend, dbha

ROOT = Path(__file__).resolve().parents[2]


def test_an_old_single_cluster_is_refused_then_adopted_into_the_ha_database_without_losing_a_row() -> None:
    os.environ.setdefault("WTX_TOOLS_DIR", str(Path(tempfile.gettempdir()) / "wtx-tools"))
    var = Path(tempfile.mkdtemp(prefix="wtx-adopt-test-"))
    var.chmod(0o711)
    spec = moved_spec(var / "spec")  # beside the deploy tests' stack: tests/support/moved_spec.py
    prd = spec.env("prd")
    db = prd.database
    backend = LocalBackend(spec, ROOT, var)
    try:
        # prd as it ran before database.ha: one cluster in var/envs/prd/pgdata, with an order.
        password = backend.secrets(prd)["DB_PASSWORD"]
        from wtx.backends.local.postgres import Cluster

        old = Cluster(pgdata=backend.layout.pgdata("prd"), sockdir=backend.layout.pgsock("prd"), port=db.port or 0,
                      log_dir=backend.layout.logs_dir("prd"), var_dir=var)
        old.init(db.name, db.role)
        import subprocess

        from wtx.backends.local.postgres import PG_BIN, as_postgres_cmd

        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(old.pgdata), "-w", "-t", "60", "-o", "-c listen_addresses=''"]
        subprocess.run(as_postgres_cmd([*pg_ctl, "-l", str(old.pgdata / "test.log"), "start"]),
                       check=True, capture_output=True, timeout=120)
        try:
            old.ensure_database(db.name, db.role, password)
            old.psql("CREATE TABLE sales_order_probe (id int PRIMARY KEY, note text);"
                     "INSERT INTO sales_order_probe SELECT g, 'order ' || g FROM generate_series(1, 250) g;", db.name)
            old.psql(f'ALTER TABLE sales_order_probe OWNER TO "{db.role}";', db.name)
        finally:
            subprocess.run(as_postgres_cmd([str(PG_BIN / "pg_ctl"), "-D", str(old.pgdata), "-w", "-m", "fast", "stop"]),
                           check=True, capture_output=True, timeout=120)

        with pytest.raises(DeployError) as refused:
            with backend.locked():
                backend.supervisor.start()
                backend.ha_up(prd, progress=None)
        assert f"wtx db adopt {prd.name}" in str(refused.value)
        ha = backend.ha_cluster(prd)
        assert ha is not None
        assert not any((ha.paths.pgdata(m.host) / "PG_VERSION").exists() for m in ha.ha.members), "nothing started"

        result = backend.db_adopt("prd")
        assert result["leader"] == dbha.leader(ha)
        assert Path(result["old"]).is_dir() and not backend.layout.pgdata("prd").exists(), "kept, renamed"
        dsn = (f"host={backend.database_host(prd)} port={db.port} dbname={db.name} user={db.role} "
               f"password={password} connect_timeout=5")
        with psycopg.connect(dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*), sum(id) FROM sales_order_probe").fetchone()
            assert rows == (250, sum(range(1, 251)))
            conn.execute("INSERT INTO sales_order_probe VALUES (251, 'after the move')")  # the app's role owns it
        dbha.wait_all_running(ha, 60)
        assert dbha.sync_standbys(ha), "the adopted data is on the synchronous standby too"
    finally:
        backend.supervisor.shutdown(timeout=90)
        kill_processes_naming(var)
        shutil.rmtree(var, ignore_errors=True)
