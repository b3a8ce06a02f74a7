"""The `migrations` gate: a rehearsal of the release's migrations on a copy of prd's data.

    source's database (prd) ──copy──▶ scratch database in this environment's cluster
                                        (never its own database; no app role can reach it)
    1. the release's unapplied migrations (`showmigrations --plan`) through the linter
    2. `migrate` by the release, timed against max_seconds
    3. `scrub_personal_data` by the release: nothing personal is read after this point
    4. the previous release this environment ran reads every model it knows and serves the
       spec's paths (Django's test client) on the migrated schema: during a deploy both
       releases run on it, so the new one must not break the one it replaces
    the scratch database and its one-off role are dropped at the end, pass or fail.

Without a previous release (the environment's first), step 4 is recorded as not checked and
the gate passes on what it did check.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import zipfile
from typing import Any

from wtx import ledger, migration_lint
from wtx.backends import DeployError
from wtx.pipeline import GateResult
from wtx.release import Release, ReleaseError
from wtx.release import get as get_release
from wtx.spec import MigrationsGate

MARK = "WTX-PREVIOUS-RELEASE "
_clock = time.monotonic  # how long migrate took (a test replaces it)

def _reads_script(host: str, paths: list[str]) -> str:
    """Run by the previous release (`wondertix shell -c`) on the migrated scratch database:
    one row of every model it knows (every column it selects), then its pages."""
    return f"""
import json
from django.apps import apps
from django.test import Client

out = {{"models": 0, "model_errors": [], "paths": {{}}}}
for model in apps.get_models():
    meta = model._meta
    if not meta.managed or meta.proxy:
        continue
    try:
        list(model._base_manager.all()[:1])
        out["models"] += 1
    except Exception as exc:
        out["model_errors"].append(meta.label + ": " + type(exc).__name__ + ": " + (str(exc).splitlines() or [""])[0][:200])
client = Client(HTTP_HOST={host!r})
for path in {paths!r}:
    try:
        out["paths"][path] = client.get(path).status_code
    except Exception as exc:
        out["paths"][path] = type(exc).__name__ + ": " + (str(exc).splitlines() or [""])[0][:200]
print({MARK!r} + json.dumps(out))
"""


def previous_release(var_dir: Any, env: str, release_id: str) -> str | None:
    """The release `env` ran before `release_id` (its newest deploy or rollback of another)."""
    for record in reversed(ledger.read(var_dir, env)):
        rid = record.get("release")
        if record.get("event") in (ledger.DEPLOY, ledger.ROLLBACK) and rid and rid != release_id:
            return str(rid)
    return None


def unapplied(showmigrations_plan: str) -> list[str]:
    """`app.name` of every migration `showmigrations --plan` lists as not applied."""
    return [f"{m.group(1)}.{m.group(2)}" for m in re.finditer(r"^\[ \]\s+(\w+)\.(\w+)", showmigrations_plan, re.M)]


def migration_sources(release: Release, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """(name -> source of each migration in the release's app wheel, names not in it)."""
    found: dict[str, str] = {}
    with zipfile.ZipFile(release.app_wheel) as zf:
        files = zf.namelist()
        for name in names:
            label, _, migration = name.partition(".")
            suffix = f"/{label}/migrations/{migration}.py"
            path = next((f for f in files if f.endswith(suffix)), None)
            if path is not None:
                found[name] = zf.read(path).decode("utf-8", "replace")
    return found, [n for n in names if n not in found]


def _last_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in (res.stderr or res.stdout or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {res.returncode}"


def check_migrations(work: Any, gate: MigrationsGate, log: Any) -> GateResult:
    from wtx.gates import CheckError

    backend, env, rel = work.backend, work.env, work.release
    problems: list[str] = []
    figures: dict[str, Any] = {"source": gate.source, "max_seconds": gate.max_seconds}
    # The release this one replaces: the one the environment runs now when the candidate is
    # not installed yet, else (the usual `wtx gate`) the one it ran before the candidate.
    running = backend.active_release(env.name)
    prev_id = running if running and running != rel.id else previous_release(backend.var_dir, env.name, rel.id)
    prev: Release | None = None
    if prev_id:
        try:
            prev = get_release(prev_id, backend.var_dir)
        except ReleaseError as exc:
            raise CheckError(f"the previous release {prev_id} of {env.name} is not here: {exc}") from None
    figures["previous_release"] = prev_id or "none"
    log(f"previous release of {env.name}: {prev_id or 'none (first release here)'}")

    def manage(release: Release, *args: str, url: str) -> subprocess.CompletedProcess[str]:
        log(f"$ wondertix {' '.join(a if len(a) < 80 else a[:60] + '…' for a in args)}  (release {release.id}, "
            "DATABASE_URL = the scratch copy)")
        res: subprocess.CompletedProcess[str] = backend.manage(env, release, *args, timeout=gate.timeout_s,
                                                               overrides={"DATABASE_URL": url})
        log(f"(exit {res.returncode})\n{res.stdout}\n{res.stderr}")
        return res

    try:
        with backend.scratch_copy(env.name, gate.source, progress=log) as url:
            # 1. what the release would apply to prd, through the linter
            plan = manage(rel, "showmigrations", "--plan", url=url)
            if plan.returncode != 0:
                raise CheckError(f"showmigrations on the copy of {gate.source} failed: {_last_line(plan)}")
            new = unapplied(plan.stdout)
            sources, outside = migration_sources(rel, new)
            findings, allowed = migration_lint.lint(sources, gate.allow)
            if new and not re.search(r"^\[X\]", plan.stdout, re.M):
                # The source's database holds no schema yet (its first release is still to
                # come): no release runs on it for these migrations to break.
                log(f"{gate.source} has no migration applied yet: no release there to break; lint findings "
                    f"are figures only: {[str(f) for f in findings]}")
                figures["lint_not_needed"] = f"{gate.source} has no schema yet"
                allowed, findings = [*allowed, *findings], []
            figures.update(new_migrations=len(new), lint_findings=len(findings), lint_allowed=len(allowed))
            log(f"new migrations: {new or 'none'}; not in the app's wheel (not linted): {outside or 'none'}")
            for f in [*findings, *allowed]:
                log(f"lint: {f}{' (allowed by the spec)' if f in allowed else ''}")
            if findings:
                problems.append(f"dangerous migration {findings[0]}"
                                + (f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""))

            # 2. the release's migrations, timed
            started = _clock()
            migrate = manage(rel, "migrate", "--noinput", url=url)
            seconds = round(_clock() - started, 2)
            figures["migrate_seconds"] = seconds
            if migrate.returncode != 0:
                problems.insert(0, f"migrate on the copy of {gate.source} failed: {_last_line(migrate)}")
            else:
                if seconds > gate.max_seconds:
                    problems.append(f"migrate on the copy of {gate.source} took {seconds:.1f} s (at most {gate.max_seconds:g})")
                # 3. scrubbed before anything serves from it
                scrub = manage(rel, "scrub_personal_data", "--noinput", url=url)
                if scrub.returncode != 0:
                    raise CheckError(f"scrub_personal_data of the copy failed: {_last_line(scrub)}")
                # 4. the previous release on the migrated schema
                if prev is not None:
                    backend.release_python(prev)  # installed (a rollback target usually is)
                    host = (env.hostnames or ["localhost"])[0]
                    reads = manage(prev, "shell", "-c", _reads_script(host, gate.paths), url=url)
                    problems += _judge_previous(reads, prev.id, figures)
    except DeployError as exc:
        raise CheckError(str(exc)) from None

    prev_text = (f"previous release {prev_id}: {figures.get('previous_models_read', 0)} models read, "
                 f"{len(gate.paths)} paths 200" if prev_id else "previous release: none here yet (not checked)")
    if problems:
        more = f" (and {len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
        return GateResult(gate.check, False, problems[0] + more, figures)
    return GateResult(gate.check, True,
                      f"{figures['new_migrations']} new migration(s) on a copy of {gate.source} in "
                      f"{figures['migrate_seconds']:.1f} s (at most {gate.max_seconds:g}); "
                      f"{figures['lint_findings']} dangerous (+{figures['lint_allowed']} allowed); {prev_text}", figures)


def _judge_previous(res: subprocess.CompletedProcess[str], prev_id: str, figures: dict[str, Any]) -> list[str]:
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith(MARK)), None)
    if res.returncode != 0 or line is None:
        return [f"the previous release {prev_id} could not run on the migrated schema: {_last_line(res)}"]
    try:
        out = json.loads(line[len(MARK):])
        models, errors, paths = int(out["models"]), list(out["model_errors"]), dict(out["paths"])
    except (ValueError, KeyError, TypeError):
        return [f"the previous release {prev_id} answered what the gate cannot read: {line[:200]}"]
    out = {"models": models, "model_errors": errors, "paths": paths}
    figures["previous_models_read"] = out["models"]
    figures["previous_model_errors"] = len(out["model_errors"])
    figures["previous_paths"] = out["paths"]
    problems = [f"the previous release {prev_id} cannot read {err} on the migrated schema" for err in out["model_errors"]]
    problems += [f"the previous release {prev_id}: GET {path} answered {status} on the migrated schema"
                 for path, status in out["paths"].items() if status != 200]
    if out["models"] == 0 and not out["model_errors"]:
        problems.append(f"the previous release {prev_id} read no model: nothing was checked")
    return problems
