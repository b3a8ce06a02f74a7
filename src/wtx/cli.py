"""`wtx`: the command line of WonderTix's deployment system.

Thin, like the app's views: parse arguments, call one function of spec/release/ledger or the
backend, render the answer (a rich table for people, --json for scripts). Failures end with
one line on stderr ("wtx: error: …") and a non-zero exit code; WTX_DEBUG=1 shows tracebacks.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wtx import ledger, logview, pipeline
from wtx import release as releases
from wtx.backends import DeployError
from wtx.release import Progress, ReleaseError
from wtx.render.envfile import app_environment, default_database_url
from wtx.secrets import MASK, SecretsError, read_secrets_file, secrets_path
from wtx.spec import Environment, Spec, SpecError, load_spec, project_root
from wtx.spec import var_dir as default_var_dir

app = typer.Typer(
    name="wtx",
    help="WonderTix deployments: environments, releases, deploys, rollbacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
spec_app = typer.Typer(help="The environment spec (deploy/environments.toml).", no_args_is_help=True)
db_app = typer.Typer(help="An environment's database.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The promotion pipeline: build → dev → stg → prd.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
app.add_typer(db_app, name="db")
app.add_typer(pipeline_app, name="pipeline")
host_app = typer.Typer(help="Failure rehearsals on a host of the spec (netns hosts; this machine refuses).",
                       no_args_is_help=True)
app.add_typer(host_app, name="host")

# Piped output (logs, CI) gets room for full URLs and ids instead of 80 columns of ellipses.
_PIPED_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A failure to report in one line."""


@dataclasses.dataclass
class Context:
    root: Path
    var_dir: Path
    _spec: Spec | None = None

    @property
    def spec(self) -> Spec:
        if self._spec is None:
            self._spec = load_spec(self.root / "deploy" / "environments.toml")
        return self._spec

    def env(self, name: str) -> Environment:
        return self.spec.env(name)


_state: dict[str, Context] = {}


def _ctx() -> Context:
    if "ctx" not in _state:
        root = project_root()
        _state["ctx"] = Context(root=root, var_dir=default_var_dir(root))
    return _state["ctx"]


@app.callback()
def _main(
    root: Path | None = typer.Option(None, "--root", envvar="WTX_ROOT",
                                     help="Project root (the checkout holding deploy/environments.toml)."),
    var: Path | None = typer.Option(None, "--var-dir", envvar="WTX_VAR_DIR",
                                    help="Runtime state directory (default: <root>/var)."),
) -> None:
    _state.pop("ctx", None)
    try:
        resolved = root.resolve() if root else project_root()
    except SpecError as exc:
        _die(str(exc))
    _state["ctx"] = Context(root=resolved, var_dir=(var.resolve() if var else resolved / "var"))


def _die(message: str, code: int = 1) -> Any:
    first, *rest = str(message).strip().splitlines() or ["failed"]
    err.print(f"[bold red]wtx: error:[/] {first}", markup=True, highlight=False)
    for line in rest:
        err.print(f"  {line}", markup=False)
    raise typer.Exit(code)


def command(fn: F) -> F:
    """Turn every known failure into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (SpecError, SecretsError, ReleaseError, DeployError, CommandError, pipeline.PipelineError) as exc:
            _die(str(exc))
        except KeyboardInterrupt:
            _die("interrupted", 130)
        except Exception as exc:
            if os.environ.get("WTX_DEBUG"):
                raise
            _die(f"{type(exc).__name__}: {exc}".splitlines()[0] + "  (WTX_DEBUG=1 for the traceback)")

    return wrapper  # type: ignore[return-value]


def _backend(ctx: Context) -> Any:
    try:
        from wtx.backends.local import LocalBackend  # type: ignore[attr-defined,unused-ignore]  # on use
    except ImportError as exc:
        raise CommandError(f"the local backend (wtx.backends.local) is not available: {exc}") from None
    return LocalBackend(ctx.spec, ctx.root, ctx.var_dir)


@contextmanager
def _progress(title: str) -> Iterator[Progress]:
    """A spinner on stderr (stdout stays clean for --json); each step is also logged.

    Without a terminal (CI, a pipe) each step is one line with the seconds since the command
    started, so a slow step shows in the log."""
    if not err.is_terminal:
        started = time.monotonic()

        def plain(msg: str) -> None:
            err.print(f"· {time.monotonic() - started:5.1f}s {msg}", markup=False)
        yield plain
        return
    with err.status(title) as status:
        def update(msg: str) -> None:
            err.log(msg, markup=False)
            status.update(msg)
        yield update


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def _envs(ctx: Context, names: list[str] | None) -> list[str]:
    if not names:
        return ctx.spec.names()
    for name in names:
        ctx.env(name)  # SpecError naming the known ones
    return names


def _as_dict(item: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if isinstance(item, dict):
        return item
    return dict(vars(item))


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        parts = [str(value.get(k)) for k in ("release", "ts", "event") if value.get(k)]
        return " ".join(parts) if parts else json.dumps(value, default=str)
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, dict) and "check" in v for v in value):  # the spec's gates
            return "; ".join(f"{v['check']} (" + ", ".join(f"{k}={_fmt(x)}" for k, x in v.items() if k != "check") + ")"
                             for v in value)
        return ", ".join(map(str, value))
    return str(value)


# --------------------------------------------------------------------------------------------
# Environments


@app.command()
@command
def up(envs: list[str] | None = typer.Argument(None, help="Environments (default: all).")) -> None:
    """Bring environments up: databases, app servers, HAProxy (all of them by default)."""
    ctx = _ctx()
    names = _envs(ctx, envs)
    backend = _backend(ctx)
    with _progress(f"bringing up {', '.join(names)}") as progress:
        skipped = backend.up(names, progress=progress) or []
    for reason in skipped:
        out.print(f"[yellow]not started:[/] {reason}")
    out.print(f"up: {', '.join(names)}  (see `wtx status`)")


@app.command()
@command
def down(envs: list[str] | None = typer.Argument(None, help="Environments (default: all).")) -> None:
    """Stop environments (their data stays under var/)."""
    ctx = _ctx()
    names = _envs(ctx, envs)
    backend = _backend(ctx)
    with _progress(f"stopping {', '.join(names)}") as progress:
        backend.down(names, progress=progress)
    out.print(f"down: {', '.join(names)}")


@app.command()
@command
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Per environment: URL, release, health, database, backups, last deploy.

    Exits 1 when an environment's last backup is older than its backups.max_age_h (or it has
    none), or its HA database is not in sync (no synchronous standby, a replica lagging)."""
    ctx = _ctx()
    rows = [_as_dict(s) for s in _backend(ctx).status()]
    stale = [f"{r['env']}: {r['backups']['problem']}" for r in rows if (r.get("backups") or {}).get("stale")]
    stale += [f"{r['env']}: database {r['database_ha']['problem']}" for r in rows
              if r.get("database_ha") and r["database_ha"]["in_sync"] is False]
    if as_json:
        _print_json(rows)
    else:
        table = Table(title="WonderTix environments")
        for col in ("env", "url", "release", "health", "database", "backups", "last deploy"):
            table.add_column(col, overflow="fold")
        for row in rows:
            health = _fmt(row.get("health"))
            colour = "green" if health == "healthy" else "red"
            release = _fmt(row.get("release")) + (f"\n[dim]{row['warm']}[/]" if row.get("warm") else "")
            table.add_row(_fmt(row.get("env")), _fmt(row.get("url")), release,
                          f"[{colour}]{health}[/]", _fmt(row.get("database")) + _ha_cell(row.get("database_ha")),
                          _backups_cell(row.get("backups")),
                          _fmt(row.get("last_deploy")))
        out.print(table)
    if stale:
        _die("; ".join(stale))


def _ha_cell(state: dict[str, Any] | None) -> str:
    if not state:
        return ""
    lines = [f"{m['name']}: {m['role']} {m['state']}" + ("" if m["role"] == "leader" else
             f", lag {m['lag_bytes'] if m['lag_bytes'] is not None else '?'} B") for m in state["members"]]
    verdict = ("[green]in sync[/]" if state["in_sync"] else f"[red]NOT IN SYNC: {escape(state['problem'])}[/]"
               if state["in_sync"] is False else f"[red]{escape(state['problem'])}[/]")
    etcd = state.get("etcd") or {}
    if etcd.get("warning"):
        verdict += f"\n[yellow]{escape(etcd['warning'])}[/]"
    return "\n" + escape("\n".join(lines)) + "\n" + verdict


def _backups_cell(b: dict[str, Any] | None) -> str:
    if not b:
        return "—"
    colour = "red" if b.get("stale") else "green"
    last = (f"{b['last_backup']}, {b['last_backup_age_h']:.1f} h ago" if b.get("last_backup")
            else b.get("problem") or "none")
    wal = b.get("wal_archive_age_s")
    wal_txt = f"WAL archived {wal:.0f} s ago" if isinstance(wal, int | float) else "WAL: none archived yet"
    cell = f"[{colour}]{last}[/] (max {b['max_age_h']} h)\n[dim]{wal_txt}[/]"
    if b.get("last_backup") and b.get("problem"):  # e.g. WAL archiving failing beside a fresh backup
        cell += f"\n[red]{escape(b['problem'])}[/]"
    return cell


@app.command()
@command
def logs(
    env: str | None = typer.Argument(None, help="Environment (default: all; or use --env)."),
    envs: list[str] | None = typer.Option(None, "--env", "-e", help="Environment; repeat for several."),
    lines: int = typer.Option(50, "-n", "--lines", min=1, max=100_000, help="How many entries."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new entries."),
    level: str | None = typer.Option(None, "--level", help="Only this level and above: DEBUG, INFO, WARNING, ERROR, CRITICAL."),
    request_id: str | None = typer.Option(None, "--request-id", help="Only entries of this request id."),
    path: str | None = typer.Option(None, "--path", help="Only requests to this path (or below it)."),
    since: str | None = typer.Option(None, "--since", help="Only entries since: 30s, 15m, 2h, 1d, or an ISO time (UTC)."),
    source: list[str] | None = typer.Option(
        None, "--source", help="Only this log: a program's file (patroni-prd-db, etcd-witness, access-blue) or a kind "
                               "(patroni, etcd, app, access, postgres, haproxy); repeat for several."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per entry."),
) -> None:
    """Every log of the environments (app, access, PostgreSQL, HAProxy, and an HA database's
    Patroni and etcd members) as one time-ordered view in UTC; HAProxy's health checks are
    never in it."""
    ctx = _ctx()
    names = [*([env] if env else []), *(envs or [])]
    for name in names:
        ctx.env(name)
    if level is not None and level.upper() not in logview.LEVELS:
        raise CommandError(f"--level {level!r}: use one of {', '.join(logview.LEVELS)}")
    unknown = [s for s in source or [] if s.split("-", 1)[0] not in (*logview.KINDS, "haproxy")]
    if unknown:
        raise CommandError(f"--source {unknown[0]!r}: a log's name or one of {', '.join((*logview.KINDS, 'haproxy'))}")
    try:
        since_ts = logview.parse_since(since) if since else None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    entries = _backend(ctx).log_entries(
        names or None, lines, follow, level=level.upper() if level else None,
        request_id=request_id, path=path, since=since_ts, sources=source)
    for entry in entries:
        if as_json:
            out.print(json.dumps(entry.as_dict()), markup=False, highlight=False, soft_wrap=True)
        else:
            out.print(entry.render(), markup=False, highlight=False)


# --------------------------------------------------------------------------------------------
# Releases


@app.command()
@command
def build(
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Build uncommitted changes too."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Build an immutable, content-addressed release of the current commit."""
    ctx = _ctx()
    with _progress("building a release") as progress:
        built = releases.build(ctx.root, ctx.var_dir, allow_dirty=allow_dirty, progress=progress)
    if as_json:
        _print_json(built.summary())
        return
    s = built.summary()
    dirty = " (dirty work tree)" if s["dirty"] else ""
    out.print(f"release [bold]{built.id}[/] from commit {s['commit'][:12]}{dirty}: "
              f"{s['files']} files, {s['size_bytes'] / 1e6:.1f} MB → {built.path}")


def _running(ctx: Context) -> dict[str, str]:
    """Which release each environment was last put on (from the ledger)."""
    current: dict[str, str] = {}
    for record in ledger.read(ctx.var_dir):
        if record.get("event") in (ledger.DEPLOY, ledger.ROLLBACK) and record.get("env") and record.get("release"):
            current[record["env"]] = record["release"]
    return current


@app.command("releases")
@command
def releases_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Built releases, newest last, and where each runs."""
    ctx = _ctx()
    running = _running(ctx)
    rows = []
    for r in releases.list_releases(ctx.var_dir):
        row = r.summary()
        row["environments"] = sorted(e for e, rid in running.items() if rid == r.id)
        rows.append(row)
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no releases yet: run `wtx build`")
        return
    table = Table(title=f"Releases in {releases.releases_dir(ctx.var_dir)}")
    for col in ("id", "commit", "built", "size", "running in"):
        table.add_column(col, overflow="fold")
    for row in rows:
        commit = row["commit"][:12] + (" +dirty" if row["dirty"] else "")
        table.add_row(row["id"], commit, row["built_at"], f"{row['size_bytes'] / 1e6:.1f} MB",
                      ", ".join(row["environments"]) or "—")
    out.print(table)


@app.command()
@command
def history(
    env: str | None = typer.Argument(None, help="Environment (default: every record)."),
    verify: bool = typer.Option(False, "--verify", help="Check the ledger's hash chain: exit 1 if a record was edited, removed or reordered."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The ledger: every build, deploy, abort and rollback (of one environment, or all)."""
    ctx = _ctx()
    if env is not None:
        ctx.env(env)
    if verify:
        _verify_ledger(ctx, as_json)
        return
    records = ledger.read(ctx.var_dir, env)
    if as_json:
        _print_json(records)
        return
    what = env or "the ledger"
    if not records:
        out.print(f"{what}: nothing in the ledger yet")
        return
    table = Table(title=f"History of {what}")
    for col in ("when (UTC)", "event", *([] if env else ["env"]), "release", "previous", "detail"):
        table.add_column(col, overflow="fold")
    for rec in records:
        detail = rec.get("reason") or rec.get("detail") or (f"{rec['seconds']} s" if "seconds" in rec else "")
        style = "red" if rec.get("event") in (ledger.ABORT, pipeline.PROMOTE_REFUSED) else ""
        if rec.get("event") == pipeline.GATE:
            detail = f"{rec.get('check')} {'passed' if rec.get('passed') else 'FAILED'}: {detail}"
            style = "" if rec.get("passed") else "red"
        table.add_row(rec.get("ts", ""), rec.get("event", ""), *([] if env else [rec.get("env", "")]),
                      _fmt(rec.get("release")), _fmt(rec.get("previous")), str(detail), style=style)
    out.print(table)


def _verify_ledger(ctx: Context, as_json: bool) -> None:
    verdict = ledger.verify(ctx.var_dir)
    if as_json:
        _print_json({"ok": verdict.ok, "records": verdict.records, "problems": verdict.problems, "warnings": verdict.warnings})
    else:
        for warning in verdict.warnings:
            out.print(f"[yellow]warning:[/] {warning}")
        for problem in verdict.problems:
            out.print(f"[red]tampered:[/] {problem}")
        if verdict.ok:
            out.print(f"ledger verified: {verdict.records} record(s), the chain is whole")
    if not verdict.ok:
        raise CommandError(f"the ledger was changed: {verdict.problems[0]}")


def _result(result: Any, as_json: bool, fallback: dict[str, Any]) -> dict[str, Any]:
    data = {**fallback, **(_as_dict(result) if result is not None and not isinstance(result, str) else {})}
    if as_json:
        _print_json(data)
    return data


@app.command()
@command
def deploy(
    env: str = typer.Argument(..., help="Environment."),
    release_id: str | None = typer.Argument(None, metavar="[RELEASE]", help="Release id or prefix (default: newest build)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Deploy a release with no dropped request; a failing step aborts and the old one keeps serving."""
    ctx = _ctx()
    target = ctx.env(env)
    if target.is_backup:
        raise CommandError(f"{env} is {target.backup_of}'s backup and follows its release; deploy {target.backup_of}")
    chosen = releases.get(release_id, ctx.var_dir) if release_id else releases.latest(ctx.var_dir)
    refusal = pipeline.deploy_refusal(ctx.spec, ctx.var_dir, env, chosen.id)
    if refusal:
        raise CommandError(refusal)
    backend = _backend(ctx)
    with _progress(f"deploying {chosen.id} to {env}") as progress:
        result = backend.deploy(env, chosen.id, progress=progress)
    data = _result(result, as_json, {"env": env, "release": chosen.id})
    if not as_json:
        took = f" in {data['seconds']:.1f} s" if isinstance(data.get("seconds"), int | float) else ""
        was = f" (was {data['previous']})" if data.get("previous") else ""
        out.print(f"{env} now serves release [bold]{data['release']}[/]{was}{took}")


@app.command()
@command
def rollback(
    env: str = typer.Argument(..., help="Environment."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Put the previous release back on traffic (it is still installed: a traffic switch)."""
    ctx = _ctx()
    ctx.env(env)
    backend = _backend(ctx)
    with _progress(f"rolling {env} back") as progress:
        result = backend.rollback(env, progress=progress)
    data = _result(result, as_json, {"env": env, "release": _running(ctx).get(env, "")})
    if not as_json:
        # The ledger's rollback record carries the same figure (`seconds`).
        took = (f": answering after {data['seconds']:.2f} s" if isinstance(data.get("seconds"), int | float)
                else "")
        out.print(f"{env} rolled back to [bold]{data['release'] or 'the previous release'}[/]{took}")
        for line in data.get("steps") or []:
            if "warm" in line:
                out.print(f"  {line}", markup=False, highlight=False)


@app.command("expire-warm", hidden=True)
@command
def expire_warm(
    env: str = typer.Argument(..., help="Environment."),
    wait: bool = typer.Option(False, "--wait", help="Sleep until each warm window ends (the warm timer)."),
) -> None:
    """Stop ENV's previous-release slot once its rollback warm window has passed (run by the
    `<env>-warm-timer` program that a deploy or rollback starts)."""
    ctx = _ctx()
    ctx.env(env)
    backend = _backend(ctx)
    stopped = backend.wait_and_expire_warm(env) if wait else backend.expire_warm([env])
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing warm had expired", highlight=False)


# --------------------------------------------------------------------------------------------
# Promotion: gates, approvals, promote, the pipeline (wtx.pipeline; docs/pipeline.md)


def _gate_line(env: str, result: pipeline.GateResult) -> str:
    mark = "[green]✓ passed[/]" if result.passed else "[red]✗ FAILED[/]"
    return f"  {mark} {env} {result.check:<20} {result.summary}  [dim]({result.seconds:.1f} s, {result.log})[/]"


@app.command()
@command
def gate(
    env: str = typer.Argument(..., help="Environment whose gates to run."),
    release_id: str = typer.Argument(..., metavar="RELEASE", help="Release id or prefix (the one ENV runs)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run ENV's gates against RELEASE as installed in ENV; every result goes to the ledger."""
    ctx = _ctx()
    ctx.env(env)
    backend = _backend(ctx)
    rel = releases.get(release_id, ctx.var_dir)
    with _progress(f"gates of {env} for {rel.id}") as progress:
        run = pipeline.run_gates(ctx.spec, backend, ctx.root, env, rel.id, progress=progress,
                                 on_result=None if as_json else lambda r: err.print(_gate_line(env, r)))
    if as_json:
        _print_json({"env": env, "release": rel.id, "run": run.run, "passed": run.passed,
                     "results": [dataclasses.asdict(r) for r in run.results], "not_run": run.not_run})
    if run.not_run and not as_json:
        out.print(f"  not run (after the first failure): {', '.join(run.not_run)}")
    failed = run.failed
    if failed is not None:
        raise CommandError(f"gate {failed.check} failed in {env} for {rel.id}: {failed.summary}")
    if not as_json:
        out.print(f"{env}: every gate passed for release [bold]{rel.id}[/] (gate run {run.run})")


@app.command()
@command
def promote(
    source: str = typer.Argument(..., metavar="FROM", help="Environment the release passed its gates in."),
    target: str = typer.Argument(..., metavar="TO", help="Environment to promote it into."),
    release_id: str | None = typer.Argument(None, metavar="[RELEASE]", help="Release id or prefix (default: what FROM runs)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Promote the same release from FROM into TO: only with FROM's passing gates (and an approval where TO needs one)."""
    ctx = _ctx()
    backend = _backend(ctx)
    with _progress(f"promoting from {source} to {target}") as progress:
        done = pipeline.promote(ctx.spec, backend, source, target, release_id, progress=progress)
    if as_json:
        _print_json(dataclasses.asdict(done))
        return
    out.print(f"{target} now serves release [bold]{done.release}[/], promoted from {source} in {done.seconds:.1f} s")


@app.command()
@command
def approve(
    env: str = typer.Argument(..., help="Environment that needs the approval (the spec's approval = true)."),
    release_id: str = typer.Argument(..., metavar="RELEASE", help="Release id or prefix."),
    by: str = typer.Option(..., "--by", help="Who approves (recorded in the ledger)."),
) -> None:
    """Record a person's approval of RELEASE for ENV."""
    ctx = _ctx()
    record = pipeline.approve(ctx.spec, ctx.var_dir, env, release_id, by)
    out.print(f"{env}: release [bold]{record['release']}[/] approved by {record['by']} at {record['ts']}")


@pipeline_app.command("run")
@command
def pipeline_run(
    release_id: str | None = typer.Option(None, "--release", help="Carry this built release on (resume) instead of building."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Build uncommitted changes (their lint and unit gates fail)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout."),
) -> None:
    """build → deploy dev → dev gates → promote stg → stg gates → approval → promote prd → prd verification.

    Exit code: 0 through to the end, 1 error or refusal, 3 a gate failed, 4 waiting for an
    approval, 5 the last environment's verification failed and it was rolled back."""
    ctx = _ctx()
    backend = _backend(ctx)

    def event(kind: str, data: dict[str, Any]) -> None:
        if kind == "stage":
            err.print(f"[bold]▸ {data['stage']}[/]: {data['detail']}")
        elif kind == "gate":
            err.print(_gate_line(data["env"], data["result"]))

    with _progress("pipeline") as progress:
        outcome = pipeline.run_pipeline(ctx.spec, backend, ctx.root, release_id=release_id,
                                        allow_dirty=allow_dirty, progress=progress, on_event=event)
    if as_json:
        _print_json(dataclasses.asdict(outcome))
    if outcome.code == pipeline.DONE:
        if not as_json:
            out.print(f"release [bold]{outcome.release}[/] went through every environment in {outcome.seconds:.0f} s")
        return
    _die(f"pipeline stopped at {outcome.stopped_at}: {outcome.reason}", outcome.code)


# --------------------------------------------------------------------------------------------
# Spec


@spec_app.command("check")
@command
def spec_check() -> None:
    """Validate deploy/environments.toml."""
    spec = _ctx().spec
    out.print(f"{spec.path}: valid — {len(spec.environments)} environments ({', '.join(spec.names())})")


def _masked_view(ctx: Context, env: Environment) -> dict[str, Any]:
    """The environment as declared, plus the variables a release starts with — every secret
    value replaced by a mask before it is even computed (real values are never read here)."""
    spec = ctx.spec
    owner = spec.env(env.secrets_owner)
    path = secrets_path(owner.name, ctx.var_dir)
    present = read_secrets_file(path) if path.exists() else {}
    placeholder = dict.fromkeys(owner.secrets, MASK)
    secret_state = {name: ("set" if present.get(name) else "not generated yet") for name in owner.secrets}
    db_url = default_database_url(env, spec, placeholder, ctx.var_dir)
    started_with = app_environment(env, spec, placeholder, var_dir=ctx.var_dir, database_url=db_url)
    started_with["DATABASE_URL"] = started_with["DATABASE_URL"].replace(quote(MASK, safe=""), MASK)
    view = env.model_dump(mode="json")
    view["secrets"] = {"file": str(path), "owner": owner.name, "values": secret_state}
    view["release_environment"] = started_with
    return view


@spec_app.command("show")
@command
def spec_show(
    env: str = typer.Argument(..., help="Environment."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """One environment as wtx sees it (secrets masked)."""
    ctx = _ctx()
    view = _masked_view(ctx, ctx.env(env))
    if as_json:
        _print_json(view)
        return
    table = Table(title=f"{env}: {view['description']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in view.items():
        if key in ("release_environment", "secrets", "description"):
            continue
        if isinstance(value, dict):
            for sub, subval in value.items():
                table.add_row(f"{key}.{sub}", _fmt(subval))
        else:
            table.add_row(key, _fmt(value))
    sec = view["secrets"]
    for name, state in sec["values"].items():
        table.add_row(f"secret {name}", f"{MASK} ({state}; {sec['file']})")
    out.print(table)
    envs = Table(title="started with (secrets masked)", show_header=False)
    envs.add_column("variable", style="bold")
    envs.add_column("value")
    for key, value in view["release_environment"].items():
        envs.add_row(key, value)
    out.print(envs)


# --------------------------------------------------------------------------------------------
# Database


def _refuse_real(env: Environment, action: str) -> None:
    if env.database.data_policy == "real":
        raise CommandError(
            f"refusing to {action} {env.name}: its data_policy is \"real\" (real patrons, real money)")


@db_app.command("seed")
@command
def db_seed(env: str = typer.Argument(..., help="Environment.")) -> None:
    """Load the demo data into an environment's database."""
    ctx = _ctx()
    target = ctx.env(env)
    _refuse_real(target, "seed demo data into")
    with _progress(f"seeding {env}") as progress:
        _backend(ctx).db_seed(env, progress=progress)
    out.print(f"{env}: demo data loaded")


def _confirm(yes: bool, what: str, question: str) -> None:
    """A destructive command goes ahead with --yes, or a person's yes at a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f"{what}; pass --yes to confirm")
    typer.confirm(question, abort=True)


@db_app.command("reset")
@command
def db_reset(
    env: str = typer.Argument(..., help="Environment."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask (required without a terminal)."),
) -> None:
    """Drop and re-create an environment's database (never one marked real; dumps it first)."""
    ctx = _ctx()
    target = ctx.env(env)
    _refuse_real(target, "reset")
    _confirm(yes, f"resetting {env} erases its data", f"Erase every row in {env}'s database?")
    with _progress(f"resetting {env}") as progress:
        _backend(ctx).db_reset(env, progress=progress)
    out.print(f"{env}: database reset")


@db_app.command("refresh")
@command
def db_refresh(
    env: str = typer.Argument(..., help="Environment whose database is replaced (never one with real data)."),
    source: str = typer.Option(..., "--from", help="Environment to copy (e.g. prd)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask (required without a terminal)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Replace an environment's database with a scrubbed copy of another's (stg --from prd)."""
    ctx = _ctx()
    target = ctx.env(env)
    ctx.env(source)
    _refuse_real(target, "refresh")
    _confirm(yes, f"refreshing {env} replaces its data with {source}'s, scrubbed",
             f"Replace {env}'s database with a scrubbed copy of {source}'s?")
    with _progress(f"refreshing {env} from {source}") as progress:
        result = _backend(ctx).db_refresh(env, source, progress=progress)
    data = _result(result, as_json, {"env": env, "source": source})
    if not as_json:
        took = f" in {data['seconds']:.1f} s" if isinstance(data.get("seconds"), int | float) else ""
        rows = f": {data['rows']} rows in {data['tables']} tables" if data.get("tables") else ""
        before = f"; its previous data: {data['dump']}" if data.get("dump") else ""
        out.print(f"{env} now holds a scrubbed copy of {source}{rows}{took}{before}")


def _host_verb(name: str, verb: str, done: str) -> None:
    ctx = _ctx()
    getattr(_backend(ctx), verb)(name)
    out.print(f"host {name}: {done}")


@host_app.command("kill")
@command
def host_kill(
    name: str = typer.Argument(..., help="Host (spec [hosts])."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask (required without a terminal)."),
) -> None:
    """SIGKILL every process on a host at once, as if it lost power (until `host power-on`)."""
    _confirm(yes, f"killing host {name} stops everything on it", f"Kill every process on host {name}?")
    _host_verb(name, "kill_host", "every process killed; nothing restarts them until `wtx host power-on`")


@host_app.command("power-on")
@command
def host_power_on(name: str = typer.Argument(..., help="Host (spec [hosts]).")) -> None:
    """Start a killed host's supervisord again (and so everything set to run there)."""
    _host_verb(name, "power_on_host", "powered on")


@host_app.command("partition")
@command
def host_partition(name: str = typer.Argument(..., help="Host (spec [hosts]).")) -> None:
    """Cut a host off from every other host (until `host heal`)."""
    _host_verb(name, "partition_host", "cut off (its processes keep running)")


@host_app.command("heal")
@command
def host_heal(name: str = typer.Argument(..., help="Host (spec [hosts]).")) -> None:
    """Give a partitioned host its link back."""
    _host_verb(name, "heal_host", "link back up")


@db_app.command("switchover")
@command
def db_switchover(
    env: str = typer.Argument(..., help="Environment whose HA database changes leader (prd)."),
    to: str = typer.Option("", "--to", help="The member (host) to lead next; default: the synchronous standby."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Planned change of database leader (Patroni switchover): e.g. before maintenance of its host."""
    ctx = _ctx()
    ctx.env(env)
    with _progress(f"switching {env}'s database leader over") as progress:
        result = _backend(ctx).db_switchover(env, to or None, progress=progress)
    data = _result(result, as_json, {"env": env})
    if not as_json:
        out.print(f"{env}: the database leader is now {data['to']} (was {data['from']}); writes routed to it "
                  f"after {data['routed_s']} s, {data['from']} streaming again after {data['rejoined_s']} s")


@db_app.command("adopt")
@command
def db_adopt(env: str = typer.Argument(..., help="Environment whose old single cluster moves into its HA database.")) -> None:
    """Move an environment's data from its old single PostgreSQL cluster into its HA database
    (dump, start the HA cluster, restore; the old cluster's directory is kept, renamed)."""
    ctx = _ctx()
    ctx.env(env)
    with _progress(f"moving {env}'s data into its HA database") as progress:
        result = _backend(ctx).db_adopt(env, progress=progress)
    out.print(f"{env}: {result['tables']} tables restored into the HA database (leader {result['leader']}); "
              f"dump {result['dump']}; the old cluster's directory is now {result['old']}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@command
def run(
    env: str = typer.Argument(..., help="Environment."),
    args: list[str] = typer.Argument(..., metavar="-- COMMAND [ARGS]...",
                                     help="A management command and its arguments (create_staff, mint_staff_token, seed_demo, shell, …)."),
) -> None:
    """Run a management command in an environment: its active release, its variables, its database.

    The exit code is the command's. Example: wtx run stg -- create_staff alice --role admin
    """
    ctx = _ctx()
    ctx.env(env)
    code = _backend(ctx).run(env, list(args))
    if code:
        raise typer.Exit(code if isinstance(code, int) else 1)


from wtx import cli_backups  # noqa: E402,F401  (registers `wtx db backup|backups|restore|drop-scratch`)


def main() -> None:
    # Everything wtx writes (and every process it starts) is the operator's only: logs and
    # mail hold order tokens and ticket codes. See docs/operations.md.
    os.umask(0o077)
    app()


if __name__ == "__main__":
    main()
