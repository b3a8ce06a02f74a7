"""Moving an environment's data from its old single cluster into its HA database.

A var dir from before `database.ha` holds the environment's data in var/envs/<env>/pgdata.
`wtx db adopt` dumps it (the old cluster started on its unix socket only, never on a port),
renames the old directory (never deletes it), brings the HA cluster up and restores the dump
into the leader as the environment's role.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from wtx import ledger
from wtx.backends import DeployError, Progress
from wtx.backends.local.postgres import PG_BIN, Cluster, PostgresError, as_postgres_cmd
from wtx.backends.local.refresh import dump_to_file, row_counts

if TYPE_CHECKING:
    from wtx.backends.local.backend import LocalBackend


def say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _last_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (res.stderr or res.stdout).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {res.returncode}"


def adopt(backend: LocalBackend, env: str, progress: Progress | None = None) -> dict[str, Any]:
    """Dump, start the HA cluster, restore; the caller holds the backend's lock."""
    e = backend.env(env)
    ha = backend.ha_cluster(e)
    if ha is None or e.is_backup:
        raise DeployError(f"{env}: has no HA database of its own (database.ha) to adopt data into")
    old = backend.layout.pgdata(env)
    if not (old / "PG_VERSION").exists():
        raise DeployError(f"{env}: no single cluster at {old}: nothing to adopt")
    if any((ha.paths.pgdata(m.host) / "PG_VERSION").exists() for m in ha.ha.members):
        raise DeployError(f"{env}: its HA database exists already; restore the dump into it by hand if meant")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backend.supervisor.start()
    backend.supervisor.stop_program(backend.db_program(env))
    old_cluster = Cluster(pgdata=old, sockdir=backend.layout.pgsock(env), port=e.database.port or 0,
                          log_dir=backend.layout.logs_dir(env), var_dir=backend.var_dir)
    old_cluster.init(e.database.name, e.database.role)  # its socket directory, as before
    pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(old), "-w", "-t", "60"]
    say(progress, f"{env}: dumping the old cluster ({old}), reachable on its socket only")
    # -l: the server's output to a file of its own (an inherited pipe would never close).
    started = subprocess.run(as_postgres_cmd([*pg_ctl, "-l", str(old / "adopt.log"), "-o",
                                              "-c listen_addresses=''", "start"]),
                             capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        raise DeployError(f"{env}: the old cluster did not start: {_last_line(started)}")
    try:
        dump = dump_to_file(old_cluster, e.database.name, backend.layout.env_dir(env) / "dumps" / f"adopt-{stamp}.dump")
    except PostgresError as exc:
        raise DeployError(f"{env}: {exc}") from None
    finally:
        subprocess.run(as_postgres_cmd([*pg_ctl, "-m", "fast", "stop"]), capture_output=True, timeout=120)
    moved = old.with_name(f"pgdata.adopted-{stamp}")
    old.rename(moved)
    backend.apply_programs(e, only={backend.db_program(env)})  # the old program is gone
    lead = backend.ha_up(e, progress)
    leader_cluster = ha.member_cluster(lead)
    say(progress, f"{env}: restoring into the leader ({lead})")
    with open(dump, "rb") as fh:  # read by wtx (the dump is 0600, never postgres's)
        restore = subprocess.run(as_postgres_cmd(
            [str(PG_BIN / "pg_restore"), "--no-owner", "--no-privileges", f"--role={e.database.role}",
             "--exit-on-error", "-h", str(leader_cluster.sockdir), "-p", str(leader_cluster.port),
             "-d", e.database.name]), stdin=fh, capture_output=True, timeout=3600)
    if restore.returncode != 0:
        err = restore.stderr.decode(errors="replace").strip().splitlines()
        raise DeployError(f"{env}: restoring {dump} failed: {err[-1] if err else restore.returncode} "
                          f"(the old cluster is in {moved})")
    tables = len(row_counts(leader_cluster, e.database.name))
    ledger.append(backend.var_dir, "db-adopt", env=env, dump=str(dump), old=str(moved), leader=lead, tables=tables)
    return {"env": env, "dump": str(dump), "old": str(moved), "leader": lead, "tables": tables}

