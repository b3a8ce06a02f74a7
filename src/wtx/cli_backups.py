"""`wtx db backup|backups|restore|drop-scratch`: an environment's pgBackRest backups and
point-in-time restores (docs/operations.md#backups). Registered on `wtx db` by cli.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from wtx import cli
from wtx.cli import CommandError, _ctx, _print_json, _progress, command, db_app, out


def _gib(n: Any) -> str:
    return f"{int(n or 0) / 1_048_576:.1f} MiB"


@db_app.command("backup")
@command
def db_backup(
    env: str = typer.Argument(..., help="Environment with [environments.ENV.backups] (prd)."),
    full: bool = typer.Option(False, "--full", help="A full backup."),
    incr: bool = typer.Option(False, "--incr", help="An incremental backup (changes since the last backup)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Back up an environment's database with pgBackRest (default: full when the last full is
    older than backups.full_every_days, else incremental)."""
    if full and incr:
        raise CommandError("--full or --incr, not both")
    ctx = _ctx()
    ctx.env(env)
    kind = "full" if full else "incr" if incr else None
    with _progress(f"backing up {env}") as progress:
        result = cli._backend(ctx).db_backup(env, kind, progress=progress)
    if as_json:
        _print_json(result)
        return
    out.print(f"{result['env']}: {result['type']} backup {result['label']} in {result['wall_seconds']:.1f} s — "
              f"database {_gib(result['database_bytes'])}, added {_gib(result['repository_bytes'])} "
              f"to {result['repository']}")


@db_app.command("backup-timer", hidden=True)
@command
def db_backup_timer(env: str = typer.Argument(..., help="Environment.")) -> None:
    """The `<env>-backups` program: a backup whenever one is due (backups.every_h)."""
    ctx = _ctx()
    ctx.env(env)

    def say(msg: str) -> None:
        out.print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {msg}", markup=False)
    cli._backend(ctx).db_backup_timer(env, progress=say)


@db_app.command("backups")
@command
def db_backups(
    env: str = typer.Argument(..., help="Environment with backups."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The backups of an environment, oldest first, with their ages and the WAL archive's range."""
    ctx = _ctx()
    ctx.env(env)
    data = cli._backend(ctx).db_backups(env)
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{data['env']} backups in {data['repository']} ({data['status']})")
    for col in ("label", "type", "finished (UTC)", "age", "took", "database", "stored"):
        table.add_column(col)
    for b in data["backups"]:
        table.add_row(b["label"], b["type"], b["stopped"][:19].replace("T", " "), f"{b['age_h']:.1f} h",
                      f"{b['seconds']} s", _gib(b["database_bytes"]), _gib(b["repository_bytes"]))
    out.print(table)
    out.print(f"WAL archive: {data['archive_min'] or '—'} … {data['archive_max'] or '—'}")


@db_app.command("restore")
@command
def db_restore(
    env: str = typer.Argument(..., help="Environment whose backups to restore (prd)."),
    to: str = typer.Option(..., "--to", help="Point in time (ISO, UTC unless it says otherwise) or 'latest'."),
    into: str = typer.Option("scratch", "--into", help="scratch (a new cluster on a free port) or live."),
    replace_live: bool = typer.Option(False, "--replace-live-database",
                                      help="With --into live: the second confirmation (stops the app, dumps, restores over it)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Point-in-time restore from pgBackRest: into a scratch cluster (the live one untouched),
    or, with two confirmations, over the live cluster."""
    ctx = _ctx()
    ctx.env(env)
    if into == "live" and not replace_live:
        raise CommandError(f"refusing to restore over {env}'s live database: it loses every row written after "
                           f"{to}. Pass --replace-live-database as well (the app is stopped and a dump taken first)")
    with _progress(f"restoring {env} to {to} into {into}") as progress:
        result = cli._backend(ctx).db_restore(env, to, into, replace_live=replace_live, progress=progress)
    if as_json:
        _print_json(result)
        return
    if into == "scratch":
        out.print(f"{env} as of {to} is in scratch copy {result['scratch']} ({result['seconds']:.1f} s): "
                  f"127.0.0.1:{result['port']}, database {result['database']} (its roles and passwords as they were)")
        out.print(f"  as the postgres user: {result['psql']}")
        out.print(f"  when done: {result['drop']}")
    else:
        out.print(f"{env} restored to {to} in {result['seconds']:.1f} s; its data before: {result.get('dump') or '—'}")
        if result.get("next"):
            out.print(f"  {result['next']}")


@db_app.command("drop-scratch")
@command
def db_drop_scratch(
    env: str = typer.Argument(..., help="Environment."),
    name: str | None = typer.Argument(None, help="The scratch copy (default: every one of ENV)."),
) -> None:
    """Stop and remove scratch copies made by `wtx db restore --into scratch`."""
    ctx = _ctx()
    ctx.env(env)
    dropped = cli._backend(ctx).db_drop_scratch(env, name)
    out.print(f"{env}: dropped {', '.join(dropped) if dropped else 'nothing (no scratch copies)'}")
