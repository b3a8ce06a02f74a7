"""The promotion pipeline: one release, built once, through dev → stg → prd.

The rules live here and read only the ledger (var/ledger.jsonl), so every decision can be
replayed from the record:

- `wtx gate ENV RELEASE` runs ENV's gates (the spec's checks, wtx.gates) against the release
  as installed in ENV and appends one `gate` record per check (`record_gate`).
- A release may leave ENV only if the newest run of ENV's gates for it passed every gate the
  spec declares for ENV (`gates_refusal`).
- `wtx promote FROM TO` needs TO's `promote_from` to be FROM, FROM's passing gates, an intact
  ledger and, where the spec says `approval = true`, a recorded `wtx approve`. It records a
  `promote` event and then deploys the same content-addressed release into TO with the same
  backend deploy as `wtx deploy`.
- An environment with `promote_from` accepts a release only through promotion: a deploy (and
  `wtx up`) of a release never promoted there is refused, with no flag to skip the check
  (`deploy_refusal`, called by wtx.deploy and the local backend's `up`).

`run_pipeline` (`wtx pipeline run`) chains them and stops at the first gate a release fails.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtx import ledger
from wtx import release as releases
from wtx.backends import Backend, DeployError, Progress
from wtx.spec import Environment, Spec

GATE = "gate"
PROMOTE = "promote"
PROMOTE_REFUSED = "promote-refused"
APPROVE = "approve"
VERIFICATION_ROLLBACK = "verification-rollback"

# `wtx pipeline run` exit codes: where the release stopped, and why.
DONE = 0
ERROR = 1            # a build, deploy or promotion failed or was refused
GATE_FAILED = 3      # a gate failed: the release stays where it is
WAITING = 4          # stopped before an environment that needs an approval
ROLLED_BACK = 5      # the last environment's verification failed and it was rolled back


class PipelineError(Exception):
    """A promotion, approval or gate run was refused; the message is one line."""


# --------------------------------------------------------------------------------------------
# Gate records


@dataclass
class GateResult:
    """What one check found: pass/fail, its figures, a one-line summary, how long it took."""

    check: str
    passed: bool
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    log: str = ""


def record_gate(var_dir: Path, env: str, release_id: str, result: GateResult, *, run: str) -> dict[str, Any]:
    """Append one check's result to the ledger (the only way a gate result is written)."""
    return ledger.append(
        var_dir, GATE, env=env, release=release_id, check=result.check, passed=result.passed,
        detail=result.summary, figures=result.figures, seconds=round(result.seconds, 2),
        log=result.log or None, run=run,
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def last_gate_run(var_dir: Path, env: str, release_id: str) -> list[dict[str, Any]]:
    """The records of the newest gate run of `env` for `release_id` (empty: never gated)."""
    records = [r for r in ledger.read(var_dir, env) if r.get("event") == GATE and r.get("release") == release_id]
    if not records:
        return []
    newest = records[-1].get("run")
    return [r for r in records if r.get("run") == newest]


def gates_refusal(spec: Spec, var_dir: Path, env_name: str, release_id: str) -> str | None:
    """Why `release_id` may not leave `env_name` (None: every declared gate passed)."""
    env = spec.env(env_name)
    if not env.gates:
        return f"{env_name} declares no gates: nothing was checked there"
    run = {r.get("check"): r for r in last_gate_run(var_dir, env_name, release_id)}
    if not run:
        return f"release {release_id} has no gate results in {env_name} (run `wtx gate {env_name} {release_id}`)"
    for gate in env.gates:
        rec = run.get(gate.check)
        if rec is None:
            return (f"gate {gate.check} of {env_name} did not run for release {release_id} in its last gate run "
                    f"(run `wtx gate {env_name} {release_id}`)")
        if rec.get("passed") is not True:
            return f"gate {gate.check} of {env_name} failed for release {release_id}: {rec.get('detail', '')}"
    return None


# --------------------------------------------------------------------------------------------
# Approval and promotion rules


def approval_of(var_dir: Path, env: str, release_id: str) -> dict[str, Any] | None:
    for record in reversed(ledger.read(var_dir, env)):
        if record.get("event") == APPROVE and record.get("release") == release_id:
            return record
    return None


def approve(spec: Spec, var_dir: Path, env_name: str, release_id: str, by: str) -> dict[str, Any]:
    """`wtx approve ENV RELEASE --by NAME`: a person's go-ahead, recorded in the ledger."""
    env = spec.env(env_name)
    if not env.approval:
        raise PipelineError(f"{env_name} needs no approval (the spec does not set approval = true for it)")
    name = " ".join(by.split())
    if not name or len(name) > 100 or not name.isprintable():
        raise PipelineError("--by must name the person approving (printable, at most 100 characters)")
    rel = _release(release_id, var_dir)
    return ledger.append(var_dir, APPROVE, env=env_name, release=rel.id, by=name,
                         detail=f"approved by {name}")


def promotion_refusal(spec: Spec, var_dir: Path, source: str, target: str, release_id: str) -> str | None:
    """Why `release_id` may not be promoted from `source` into `target` (None: it may)."""
    dst = spec.env(target)
    spec.env(source)
    if dst.is_backup:
        return f"{target} is {dst.backup_of}'s backup and follows its release; promote into {dst.backup_of}"
    if dst.promote_from != source:
        where = f"from {dst.promote_from}" if dst.promote_from else "from nowhere (releases are deployed to it directly)"
        return f"{target} is promoted {where}, not from {source}"
    verdict = ledger.verify(var_dir)
    if not verdict.ok:
        return f"the ledger was changed ({verdict.problems[0]}); promotion needs an intact record"
    refusal = gates_refusal(spec, var_dir, source, release_id)
    if refusal:
        return refusal
    if dst.approval and approval_of(var_dir, target, release_id) is None:
        return (f"{target} needs an approval for release {release_id}: "
                f"`wtx approve {target} {release_id} --by NAME`")
    return None


def was_promoted(var_dir: Path, env: str, release_id: str) -> bool:
    return any(r.get("event") == PROMOTE and r.get("release") == release_id for r in ledger.read(var_dir, env))


def promoted_release(var_dir: Path, env: str) -> str | None:
    """The release most recently promoted into `env`."""
    for record in reversed(ledger.read(var_dir, env)):
        if record.get("event") == PROMOTE and record.get("release"):
            return str(record["release"])
    return None


def deploy_refusal(spec: Spec, var_dir: Path, env_name: str, release_id: str, *,
                   recheck: bool = True) -> str | None:
    """Why `env_name` must not run `release_id` (None: it may). Environments without
    `promote_from` (dev) take any build; the others only a release promoted into them and,
    with `recheck` (every deploy), whose promotion still holds: its source's newest gate run
    passed, its approval is recorded, the ledger is intact. `wtx up` restarting what an
    environment already ran asks only that it was promoted: a later flaky gate run in stg
    must not keep prd down after a reboot."""
    env = spec.env(env_name)
    if not env.promoted_only:
        return None
    assert env.promote_from is not None
    if not was_promoted(var_dir, env_name, release_id):
        return (f"{env_name} accepts releases only through promotion: release {release_id} was never promoted "
                f"to {env_name} (`wtx promote {env.promote_from} {env_name} {release_id}`)")
    if not recheck:
        return None
    refusal = promotion_refusal(spec, var_dir, env.promote_from, env_name, release_id)
    return f"{env_name}: the promotion of {release_id} no longer holds: {refusal}" if refusal else None


def _release(release_id: str, var_dir: Path) -> releases.Release:
    try:
        return releases.get(release_id, var_dir)
    except releases.ReleaseError as exc:
        raise PipelineError(str(exc)) from None


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


@dataclass
class Promotion:
    source: str
    target: str
    release: str
    action: str          # "deploy", "up" (first start of the target) or "unchanged"
    seconds: float


def promote(spec: Spec, backend: Backend, source: str, target: str, release_id: str | None = None, *,
            progress: Progress | None = None, ready_timeout: float | None = None) -> Promotion:
    """`wtx promote FROM TO [RELEASE]`: the release FROM runs (or RELEASE), unchanged, into TO."""
    started = time.monotonic()
    var_dir = backend.var_dir
    spec.env(source)
    spec.env(target)
    if release_id:
        rid = _release(release_id, var_dir).id
    else:
        running = backend.active_release(source)
        if not running:
            raise PipelineError(f"{source} runs no release; name the release to promote")
        rid = running
    refusal = promotion_refusal(spec, var_dir, source, target, rid)
    if refusal:
        ledger.append(var_dir, PROMOTE_REFUSED, env=target, release=rid, source=source, reason=refusal)
        raise PipelineError(f"refusing to promote {rid} from {source} to {target}: {refusal}")
    gates_run = last_gate_run(var_dir, source, rid)[0].get("run")
    approval = approval_of(var_dir, target, rid)
    detail = f"from {source} (gate run {gates_run})" + (f", approved by {approval['by']}" if approval else "")
    ledger.append(var_dir, PROMOTE, env=target, release=rid, source=source, gate_run=gates_run,
                  approved_by=approval["by"] if approval else None, detail=detail)
    dst = spec.env(target)
    if backend.active_release(target) is None:
        # Never brought up: start it on the promoted release (with its backup, if any).
        names = [target] + ([dst.failover.backup] if dst.failover.mode == "backup" else [])
        _say(progress, f"{target} was never brought up: starting it on {rid}")
        backend.up(names, progress=progress)
        if backend.active_release(target) != rid:
            raise PipelineError(f"{target} did not start on release {rid}")
        action = "up"
    else:
        options = {} if ready_timeout is None else {"ready_timeout": ready_timeout}
        result = backend.deploy(target, rid, progress=progress, **options)
        action = getattr(result, "action", "deploy") if result is not None else "deploy"
    return Promotion(source=source, target=target, release=rid, action=action,
                     seconds=round(time.monotonic() - started, 2))


# --------------------------------------------------------------------------------------------
# Running gates


@dataclass
class GateRun:
    env: str
    release: str
    run: str
    results: list[GateResult]
    not_run: list[str]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results) and not self.not_run

    @property
    def failed(self) -> GateResult | None:
        return next((r for r in self.results if not r.passed), None)


def run_gates(spec: Spec, backend: Backend, root: Path, env_name: str, release_id: str, *,
              progress: Progress | None = None,
              on_result: Callable[[GateResult], None] | None = None) -> GateRun:
    """`wtx gate ENV RELEASE`: ENV's gates in the spec's order against the release as installed
    in ENV, each result appended to the ledger; the first failure stops the run (the checks
    go from specific to general: a later one would only repeat the news)."""
    from wtx import gates

    env = spec.env(env_name)
    if env.is_backup:
        raise PipelineError(f"{env_name} is {env.backup_of}'s backup and has no gates of its own")
    if not env.gates:
        raise PipelineError(f"{env_name} declares no gates (deploy/environments.toml)")
    rel = _release(release_id, backend.var_dir)
    running = backend.active_release(env_name)
    if running != rel.id:
        now = f"it runs {running}" if running else "it runs nothing"
        raise PipelineError(f"{env_name} does not run release {rel.id} ({now}): gates check the release as installed "
                            f"in {env_name}; deploy or promote it there first")
    run = new_run_id()
    results: list[GateResult] = []
    with gates.Workspace(spec, backend, root, env, rel, run) as work:
        for i, gate in enumerate(env.gates):
            _say(progress, f"{env_name}: gate {gate.check}")
            result = gates.run_check(work, gate)
            # The release must still be the one installed: a deploy in between voids the run.
            if backend.active_release(env_name) != rel.id:
                result = GateResult(gate.check, False, f"{env_name} stopped running {rel.id} during the check",
                                    result.figures, result.seconds, result.log)
            record_gate(backend.var_dir, env_name, rel.id, result, run=run)
            results.append(result)
            if on_result is not None:
                on_result(result)
            if not result.passed:
                return GateRun(env_name, rel.id, run, results, [g.check for g in env.gates[i + 1:]])
    return GateRun(env_name, rel.id, run, results, [])


# --------------------------------------------------------------------------------------------
# The whole pipeline


def chain(spec: Spec) -> list[Environment]:
    """The environments a release travels through, in order (dev, stg, prd)."""
    roots = [e for e in spec.environments.values() if e.promote_from is None and not e.is_backup]
    if len(roots) != 1:
        raise PipelineError(f"the pipeline needs exactly one environment without promote_from; "
                            f"the spec has {', '.join(e.name for e in roots) or 'none'}")
    order = [roots[0]]
    while True:
        nxt = [e for e in spec.environments.values() if e.promote_from == order[-1].name and not e.is_backup]
        if not nxt:
            return order
        if len(nxt) > 1:
            raise PipelineError(f"{order[-1].name} is promoted into several environments "
                                f"({', '.join(e.name for e in nxt)}); the pipeline follows one line")
        order.append(nxt[0])


@dataclass
class Outcome:
    release: str = ""
    code: int = DONE
    stopped_at: str = ""
    reason: str = ""
    stages: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


Event = Callable[[str, dict[str, Any]], None]


def run_pipeline(spec: Spec, backend: Backend, root: Path, *, release_id: str | None = None,
                 allow_dirty: bool = False, progress: Progress | None = None,
                 on_event: Event | None = None) -> Outcome:
    """build → deploy to the first environment → its gates → promote → gates → … → the last
    environment's gates (its post-deploy verification; a failure there rolls it back).
    Before an environment that needs an approval it stops and says so."""
    started = time.monotonic()
    outcome = Outcome()
    def emit(kind: str, data: dict[str, Any]) -> None:
        if on_event is not None:
            on_event(kind, data)

    var_dir = backend.var_dir

    def stop(code: int, where: str, reason: str) -> Outcome:
        outcome.code, outcome.stopped_at, outcome.reason = code, where, reason
        outcome.seconds = round(time.monotonic() - started, 1)
        emit("stop", {"code": code, "stopped_at": where, "reason": reason})
        return outcome

    envs = chain(spec)
    try:
        if release_id:
            rel = _release(release_id, var_dir)
            emit("stage", {"stage": "build", "detail": f"release {rel.id} (already built)"})
        else:
            rel = releases.build(root, var_dir, allow_dirty=allow_dirty, progress=progress)
            emit("stage", {"stage": "build", "detail": f"release {rel.id} from commit {rel.commit[:12]}"})
    except (releases.ReleaseError, PipelineError) as exc:
        return stop(ERROR, "build", str(exc))
    outcome.release = rel.id

    previous: Environment | None = None
    for env in envs:
        name = env.name
        try:
            if previous is None:
                if backend.active_release(name) is None:
                    # First run: `wtx up` — every environment's database (stg's migrations
                    # gate rehearses on a copy of prd's), and the apps of those that may start
                    # (dev; stg and prd only on a release promoted there).
                    backend.up(progress=progress)
                result = backend.deploy(name, rel.id, progress=progress)
                emit("stage", {"stage": f"deploy {name}", "detail": getattr(result, "action", "deploy")})
            elif backend.active_release(name) == rel.id and was_promoted(var_dir, name, rel.id):
                emit("stage", {"stage": f"promote {previous.name} → {name}", "detail": "already there"})
            else:
                if env.approval and approval_of(var_dir, name, rel.id) is None:
                    return stop(WAITING, name, f"waiting for approval: `wtx approve {name} {rel.id} --by NAME`, "
                                f"then `wtx pipeline run --release {rel.id}`")
                done = promote(spec, backend, previous.name, name, rel.id, progress=progress)
                emit("stage", {"stage": f"promote {previous.name} → {name}", "detail": done.action})
        except (DeployError, PipelineError) as exc:
            return stop(ERROR, name, str(exc))

        earlier = last_gate_run(var_dir, name, rel.id)
        if earlier and gates_refusal(spec, var_dir, name, rel.id) is None:
            emit("stage", {"stage": f"gates {name}", "detail": f"passed already (gate run {earlier[0].get('run')})"})
            outcome.stages.append({"env": name, "gates": "passed earlier"})
            previous = env
            continue
        def on_result(result: GateResult, env_name: str = name) -> None:
            emit("gate", {"env": env_name, "result": result})

        try:
            gate_run = run_gates(spec, backend, root, name, rel.id, progress=progress, on_result=on_result)
        except (DeployError, PipelineError) as exc:
            return stop(ERROR, name, str(exc))
        outcome.stages.append({"env": name, "gates": "passed" if gate_run.passed else "failed",
                               "run": gate_run.run})
        failed = gate_run.failed
        if failed is not None:
            reason = f"gate {failed.check} failed in {name}: {failed.summary}"
            last = env is envs[-1] and previous is not None
            if last:
                try:
                    back = backend.rollback(name, progress=progress)
                    ledger.append(var_dir, VERIFICATION_ROLLBACK, env=name, release=rel.id,
                                  reason=reason, detail=f"rolled back to {getattr(back, 'release', '?')}")
                    return stop(ROLLED_BACK, name, f"{reason}; {name} was rolled back to {getattr(back, 'release', '?')}")
                except DeployError as exc:
                    return stop(ROLLED_BACK, name, f"{reason}; the rollback failed too: {exc}")
            return stop(GATE_FAILED, name, reason)
        previous = env
    outcome.seconds = round(time.monotonic() - started, 1)
    emit("done", {"release": rel.id, "envs": [e.name for e in envs]})
    return outcome
