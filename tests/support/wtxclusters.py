"""Environments' PostgreSQL clusters set up by wtx's own code, without supervisord or fixed ports.

A spec variant moves the databases to free ports; `start` does what `wtx up` does for one
environment's database (wtx.conf with the archive settings, role, database, data marker,
pgBackRest config and stanza), running the server as a child process instead of under
supervisord. Used by the restore drill (tests/integration) and bench/backup_restore.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import tomli_w
from tests.support.pgcluster import free_port

from wtx.backends.local import LocalBackend, backups
from wtx.backends.local.postgres import PG_BIN, Cluster, as_postgres_cmd
from wtx.spec import Environment, load_spec

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Clusters:
    backend: LocalBackend
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str) -> Cluster:
        env = self.backend.env(name)
        cl = self.backend.cluster(env)
        self.backend.secrets(env)
        cl.init(env.database.name, env.database.role, backups.cluster_settings(self.backend, env))
        log = open(self.root / f"{name}-postgres.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs.append(subprocess.Popen(as_postgres_cmd([str(PG_BIN / "postgres"), "-D", str(cl.pgdata)]),
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        cl.wait_ready(60)
        cl.ensure_database(env.database.name, env.database.role, self.backend.secrets(env)["DB_PASSWORD"])
        backups.prepare_cluster(self.backend, env)
        return cl

    def url(self, name: str) -> str:
        env: Environment = self.backend.env(name)
        pw = quote(self.backend.secrets(env)["DB_PASSWORD"], safe="")
        return f"postgres://{env.database.role}:{pw}@127.0.0.1:{env.database.port}/{env.database.name}"


def spec_variant(dest: Path) -> Path:
    """The checked-in spec with prd's (and bak's) and stg's database ports moved to free ones,
    each a plain cluster (prd's HA members are exercised by the HA tests: this drill is about
    what pgBackRest does with one cluster's WAL)."""
    raw = tomllib.loads((ROOT / "deploy" / "environments.toml").read_text())
    for name in ("prd", "stg"):
        database = raw["environments"][name]["database"]
        database["port"] = free_port()
        database.pop("ha", None)
    path = dest / "deploy" / "environments.toml"
    path.parent.mkdir(parents=True)
    path.write_text(tomli_w.dumps(raw))
    return path


@contextmanager
def wtx_clusters(prefix: str = "wtx-clusters-") -> Iterator[Clusters]:
    """A throwaway var dir (under /tmp, where the postgres user can reach it) and a backend on
    the spec variant; on leaving, scratch copies dropped, servers stopped, everything removed."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    clusters = Clusters(LocalBackend(load_spec(spec_variant(root)), ROOT, root / "var"), root)
    try:
        yield clusters
    finally:
        try:
            backups.drop_scratch(clusters.backend, "prd", None)
        finally:
            for proc in clusters.procs:
                proc.terminate()  # SIGTERM: PostgreSQL's smart shutdown; then bounded
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)
            shutil.rmtree(root, ignore_errors=True)
