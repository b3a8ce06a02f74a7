"""PostgreSQL: one cluster per environment, run by supervisord as the `postgres` user.

Each cluster listens only on its host's address (127.0.0.1 by default; see [hosts]), on the
port from the spec, with its own role and password (from the environment's secrets). pg_hba
lets exactly that role reach exactly that database over TCP with scram-sha-256, from the
spec's hosts only; the superuser is reachable only through the cluster's
own unix socket (peer auth), which is how wtx administers it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

from wtx.backends.local.layout import TRAVERSABLE_DIR_MODE

PG_BIN = Path(os.environ.get("WTX_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


class PostgresError(RuntimeError):
    pass


def as_postgres_cmd(args: list[str]) -> list[str]:
    """`args` run as the postgres user (when wtx runs as root; as itself otherwise)."""
    return args if os.geteuid() != 0 else ["runuser", "-u", PG_USER, "--", *args]


def _as_postgres(args: list[str], *, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = as_postgres_cmd(args)
    res = subprocess.run(cmd, input=input_text, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise PostgresError(f"{Path(args[0]).name} failed: {(res.stderr or res.stdout).strip()}")
    return res


def _chown_to_postgres(path: Path) -> None:
    pw = pwd.getpwnam(PG_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _can_search(st: os.stat_result, user: pwd.struct_passwd, groups: set[int]) -> bool:
    if user.pw_uid == 0:
        return True
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid in groups:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def ensure_reachable(pgdata: Path, var_dir: Path) -> None:
    """The postgres user must pass through every directory above its data directory.

    Inside var/ that is wtx's to arrange: var/, var/envs/ and the environment's directory are
    0711 (traversable, not listable). Above var/ wtx changes nothing — the operator's home is
    not ours to open — and fails naming the directory that stops postgres instead."""
    var_dir = Path(var_dir)
    if var_dir not in pgdata.parents:
        raise PostgresError(f"{pgdata} is not under {var_dir}")
    var_dir.mkdir(parents=True, exist_ok=True)
    user = pwd.getpwnam(PG_USER)
    groups = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if PG_USER in g.gr_mem)}
    for directory in reversed(var_dir.parents):
        st = directory.stat()
        if not _can_search(st, user, groups):
            raise PostgresError(
                f"the {PG_USER} user cannot reach {pgdata}: {directory} (mode "
                f"{stat.S_IMODE(st.st_mode):04o}) is not traversable by it. wtx changes nothing "
                f"outside {var_dir}: allow passing through (chmod o+x {directory}) or "
                "keep var/ on a traversable path (WTX_VAR_DIR)"
            )
    for directory in [var_dir, *reversed([p for p in pgdata.parents if var_dir in p.parents])]:
        directory.mkdir(exist_ok=True)
        if (directory.stat().st_mode & 0o7777) != TRAVERSABLE_DIR_MODE:
            directory.chmod(TRAVERSABLE_DIR_MODE)


class Cluster:
    def __init__(self, *, pgdata: Path, sockdir: Path, port: int, log_dir: Path, var_dir: Path,
                 address: str = "127.0.0.1", clients: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.var_dir = var_dir
        # The address it listens on (its host's) and the addresses its clients connect from
        # (every host of the spec, and wtx's own side of the hosts' bridge).
        self.address = address
        self.clients = tuple(dict.fromkeys(clients))
        self.pgdata = pgdata
        self.sockdir = sockdir
        self.port = port
        self.log_dir = log_dir

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def command(self) -> str:
        """The foreground server command supervisord runs."""
        return f"{PG_BIN / 'postgres'} -D {self.pgdata}"

    def init(self, database: str, role: str, settings: dict[str, str] | None = None) -> None:
        """initdb (once) and write the cluster's own config and pg_hba; `settings` are more
        parameters for wtx.conf (continuous archiving: pgbackrest.archive_settings)."""
        ensure_reachable(self.pgdata, self.var_dir)
        self.sockdir.mkdir(exist_ok=True)
        _chown_to_postgres(self.sockdir)
        self.sockdir.chmod(0o700)
        if not self.initialized:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            _chown_to_postgres(self.pgdata)
            _as_postgres(
                [
                    str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", PG_USER,
                    "--auth-local=peer", "--auth-host=reject", "-E", "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        conf = "\n".join(
            [
                "# Written by wtx; included from postgresql.conf.",
                f"listen_addresses = '{self.address}'",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.sockdir}'",
                "password_encryption = 'scram-sha-256'",
                "max_connections = 100",
                "shared_buffers = 64MB",
                "logging_collector = off",
                "log_min_messages = warning",
                "log_connections = off",
                "log_timezone = 'UTC'",  # `wtx logs` shows every file's times in UTC
                "log_line_prefix = '%m [%p] '",
                *(f"{k} = '" + v.replace("'", "''") + "'" for k, v in (settings or {}).items()),
                "",
            ]
        )
        _write_as_postgres(self.pgdata / "wtx.conf", conf)
        main = self.pgdata / "postgresql.conf"
        text = main.read_text()
        if "include_if_exists = 'wtx.conf'" not in text:
            _write_as_postgres(main, text + "\ninclude_if_exists = 'wtx.conf'\n")
        self.write_hba(database, role)

    def write_hba(self, database: str, role: str, extra: list[tuple[str, str]] | tuple[()] = ()) -> None:
        """pg_hba: the superuser over the socket, `role` to `database` over TCP, and nothing
        else but `extra` (database, role) pairs (a refresh's one-off scrubber)."""
        lines = [
            "# Written by wtx: only this environment's role, only to its database.",
            "local all postgres peer",
            *(f"host {database} {role} {addr}/32 scram-sha-256" for addr in self.clients),
            *(f"host {db} {who} {addr}/32 scram-sha-256" for db, who in extra for addr in self.clients),
            "",
        ]
        _write_as_postgres(self.pgdata / "pg_hba.conf", "\n".join(lines))

    def reload(self) -> None:
        """Re-read pg_hba.conf (and settings) without a restart."""
        self.psql("SELECT pg_reload_conf();")
        time.sleep(0.3)  # the postmaster re-reads on SIGHUP, between connections

    def setting(self, name: str) -> str:
        """A parameter's value as the running server has it."""
        return self.psql(f"SELECT current_setting('{name}');").strip()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = _as_postgres(
                [str(PG_BIN / "pg_isready"), "-q", "-h", str(self.sockdir), "-p", str(self.port)],
                check=False,
            )
            if res.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresError(f"PostgreSQL on port {self.port} not ready after {timeout:.0f}s")

    def psql(self, sql: str, database: str = "postgres") -> str:
        res = _as_postgres(
            [
                str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.sockdir), "-p", str(self.port), "-d", database, "-f", "-",
            ],
            input_text=sql,
        )
        return res.stdout

    def ensure_database(self, database: str, role: str, password: str) -> None:
        """The role (its password always the current secret) and its database, once."""
        quoted_pw = password.replace("'", "''")
        self.psql(
            "DO $$ BEGIN\n"
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN\n"
            f'    CREATE ROLE "{role}" LOGIN;\n'
            "  END IF;\n"
            "END $$;\n"
            f'ALTER ROLE "{role}" WITH LOGIN PASSWORD \'{quoted_pw}\';\n'
        )
        # Names are validated by the spec (lower-case identifiers), never user input.
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';").strip()  # noqa: S608
        if not exists:
            self.psql(f'CREATE DATABASE "{database}" OWNER "{role}";')
        self.psql(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;')

    def drop_and_create(self, database: str, role: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
        self.psql(f'CREATE DATABASE "{database}" OWNER "{role}";')
        self.psql(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;')


def _write_as_postgres(path: Path, text: str) -> None:
    path.write_text(text)
    _chown_to_postgres(path)
    path.chmod(0o600)
