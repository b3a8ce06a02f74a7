"""Deploy and rollback: the step a promotion pipeline calls (`wtx deploy ENV [RELEASE]`).

A deploy installs the release next to the running one, runs its migrations as a release
phase, starts it in the idle color slot, waits for readiness, moves traffic with HAProxy's
runtime API (new servers in, old servers drained, then out), and keeps the old slot running
out of traffic for the spec's `rollback_warm_s` (stopped then by the `<env>-warm-timer`
program; at once when the window is 0). Any failing step aborts: the old release keeps serving, the ledger
records why, and DeployError carries the same one-line reason.

A primary with a backup (prd → bak) moves both: bak always runs prd's release.

Rollback is a traffic switch back to the other slot, which still holds the previous release
(warm within the window; started again if it was stopped). Migrations are not reversed: a release's migrations must
leave the schema usable by the release before it (expand, then contract a release later).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from wtx import ledger
from wtx import release as releases
from wtx.backends import DeployError, DeployResult, Progress
from wtx.backends.local import haproxy as hap
from wtx.pipeline import deploy_refusal

if TYPE_CHECKING:
    from wtx.backends.local.backend import LocalBackend
    from wtx.spec import Environment

DRAIN_TIMEOUT = 30.0


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _members(backend: LocalBackend, env_name: str) -> list[Environment]:
    env = backend.env(env_name)
    if env.is_backup:
        raise DeployError(f"{env_name} is {env.backup_of}'s backup and always runs its release; deploy {env.backup_of}")
    bak = backend.backup(env)
    return [env] + ([bak] if bak is not None else [])


def _require_running(backend: LocalBackend, env: Environment) -> str:
    slots = backend.slots(env.name)
    if not slots.active or not slots.active_release():
        raise DeployError(f"{env.name} is not up (run `wtx up {env.name}` first)")
    if not backend.supervisor.running() or not backend.runtime.available():
        raise DeployError("supervisord or HAProxy is not running (run `wtx up`)")
    return slots.active


def _switch(backend: LocalBackend, moves: list[tuple[Environment, str, str]],
            progress: Progress | None, *, enable_timeout: float = 15.0,
            on_up: Callable[[Environment], None] | None = None) -> None:
    """Move traffic for each (env, old_slot, new_slot): all new servers in, then all old out.

    If a new server never comes UP, the ones already enabled go back to maintenance and the
    old servers (never touched yet) keep serving. `on_up(env)` is called the moment HAProxy
    has env's new server UP (it answers requests from then on).
    """
    enabled: list[tuple[Environment, str]] = []
    try:
        for env, _old, new in moves:
            _say(progress, f"{env.name}: HAProxy sends traffic to {hap.server_name(env.name, new)}")
            enabled.append((env, new))
            backend.enable_server(env, new, enable_timeout)
            if on_up is not None:
                on_up(env)
    except Exception:
        for env, new in enabled:
            be = hap.backend_name(backend.traffic_env(env).name)
            try:
                backend.runtime.set_state(be, hap.server_name(env.name, new), "maint")
            except (OSError, RuntimeError):
                pass
        raise
    for env, old, new in moves:
        _say(progress, f"{env.name}: draining {hap.server_name(env.name, old)}")
        backend.retire_server(env, old, DRAIN_TIMEOUT)
        backend.set_active(env, new)
    backend.render_haproxy()  # the file on disk agrees with the runtime state (no reload)


def stop_slots(backend: LocalBackend, pairs: list[tuple[Environment, str]],
               progress: Progress | None) -> None:
    """Stop drained slots side by side (gunicorn finishes anything still in flight)."""
    from wtx.backends.local.backend import run_parallel

    run_parallel({f"{env.name}-{slot}": partial(backend.stop_slot, env, slot) for env, slot in pairs})


def retire_slots(backend: LocalBackend, pairs: list[tuple[Environment, str]],
                 progress: Progress | None, step: Progress) -> None:
    """Slots just taken off traffic: kept warm for the spec's rollback_warm_s (a rollback
    within it is a traffic switch), else stopped now."""
    stop: list[tuple[Environment, str]] = []
    for env, slot in pairs:
        if not slot:
            continue
        until = backend.keep_warm(env, slot)
        if until is None:
            stop.append((env, slot))
        else:
            when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            step(f"{env.name}: slot {slot} stays warm (out of traffic) until {when} for an instant rollback")
    if stop:
        step(f"stopping the previous slot of {', '.join(e.name for e, _ in stop)}")
        stop_slots(backend, stop, progress)


def deploy(backend: LocalBackend, env_name: str, release_id: str | None = None, *,
           progress: Progress | None = None, ready_timeout: float = 60.0) -> DeployResult:
    started = time.monotonic()
    members = _members(backend, env_name)
    primary = members[0]
    previous = backend.slots(primary.name).active_release()
    steps: list[str] = []
    rid = release_id or "?"
    started_slots: list[tuple[Environment, str, str | None]] = []  # env, slot, release it held

    def step(message: str) -> None:
        steps.append(message)
        _say(progress, message)

    try:
        try:
            rel = backend.release(release_id) if release_id else releases.latest(backend.var_dir)
        except releases.ReleaseError as exc:
            raise DeployError(str(exc)) from None
        rid = rel.id
        # stg and prd take a release only through promotion: no flag, no other way in.
        refusal = deploy_refusal(backend.spec, backend.var_dir, primary.name, rel.id)
        if refusal:
            raise DeployError(refusal)
        for env in members:
            _require_running(backend, env)
        if previous == rel.id:
            step(f"{primary.name} already runs {rel.id}")
            return DeployResult(env=primary.name, release=rel.id, previous=previous,
                                slot=backend.slots(primary.name).active or "", action="unchanged",
                                seconds=round(time.monotonic() - started, 2), steps=steps)
        problems = releases.verify(rel)
        if problems:
            raise DeployError(f"release {rel.id} is damaged: {problems[0]}")

        step(f"installing release {rel.id}")
        backend.install(rel)
        step(f"{primary.name}: release phase (migrations of {rel.id})")
        backend.migrate(primary, rel)

        moves: list[tuple[Environment, str, str]] = []
        for env in members:
            slots = backend.slots(env.name)
            old, new = slots.active or "", slots.idle()
            step(f"{env.name}: starting {rel.id} in slot {new}")
            started_slots.append((env, new, slots.releases.get(new)))
            backend.start_slot(env, new, rel)
            moves.append((env, old, new))
        for env, _old, new in moves:
            step(f"{env.name}: waiting for {backend.spec.defaults.readiness_path} on slot {new}")
            backend.wait_ready(env, new, ready_timeout)

        _switch(backend, moves, progress)
        started_slots = []  # on traffic now: never stopped by the abort path below
        retire_slots(backend, [(env, old) for env, old, _new in moves], progress, step)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, DeployError) else f"{type(exc).__name__}: {exc}"
        for env, slot, held in started_slots:
            try:
                backend.restore_slot(env, slot, held)
            except Exception:  # noqa: BLE001, S110 - best effort; the reason below is what matters
                pass
        ledger.append(backend.var_dir, ledger.ABORT, env=primary.name, release=rid,
                      previous=previous, reason=reason, steps=steps,
                      seconds=round(time.monotonic() - started, 2))
        if isinstance(exc, DeployError):
            raise
        raise DeployError(reason) from exc

    seconds = round(time.monotonic() - started, 2)
    new_slot = backend.slots(primary.name).active or ""
    for env in members:
        ledger.append(backend.var_dir, ledger.DEPLOY, env=env.name, release=rel.id,
                      previous=previous, slot=backend.slots(env.name).active, seconds=seconds)
    pruned = backend.prune_installs()
    if pruned:
        step(f"removed the installs of releases no environment can roll back to: {', '.join(pruned)}")
    return DeployResult(env=primary.name, release=rel.id, previous=previous, slot=new_slot,
                        seconds=seconds, steps=steps)


def rollback(backend: LocalBackend, env_name: str, *, progress: Progress | None = None,
             ready_timeout: float = 30.0) -> DeployResult:
    """Back to the release in the idle slot. Within its warm window that slot still runs,
    so this is a traffic switch; after it, the slot is started first (slower).

    The figure reported (CLI and the ledger's `seconds`, the same number): seconds from the
    start until HAProxy has the primary's previous-release server UP, i.e. answering.
    """
    started = time.monotonic()
    members = _members(backend, env_name)
    primary = members[0]
    current = backend.slots(primary.name).active_release()
    target_id = "?"
    steps: list[str] = []
    started_slots: list[tuple[Environment, str]] = []
    warm: dict[str, bool] = {}
    on_traffic = 0.0

    def answering(env: Environment) -> None:
        nonlocal on_traffic
        if env is primary:
            on_traffic = round(time.monotonic() - started, 2)

    def step(message: str) -> None:
        steps.append(message)
        _say(progress, message)

    try:
        for env in members:
            _require_running(backend, env)
        pslots = backend.slots(primary.name)
        target_id = pslots.releases.get(pslots.idle()) or ""
        if not target_id:
            raise DeployError(f"{primary.name} has no previous release to roll back to")
        target = backend.release(target_id)
        _say(progress, f"making sure release {target.id} is installed")
        backend.install(target)
        moves: list[tuple[Environment, str, str]] = []
        # One environment at a time, the primary first: it alone decides when the previous
        # release is back on traffic, and it boots without its backup competing for the CPU.
        for env in members:
            slots = backend.slots(env.name)
            old, new = slots.active or "", slots.idle()
            running = backend.supervisor.state(backend.program(env.name, new)) == "RUNNING"
            warm[env.name] = slots.releases.get(new) == target.id and running
            if warm[env.name]:
                step(f"{env.name}: slot {new} is warm (running {target.id}): a traffic switch")
            else:
                step(f"{env.name}: starting {target.id} in slot {new} (not warm)")
                started_slots.append((env, new))
                backend.start_slot(env, new, target)
            _say(progress, f"{env.name}: waiting for {backend.spec.defaults.readiness_path} on slot {new}")
            backend.wait_ready(env, new, ready_timeout)
            _switch(backend, [(env, old, new)], progress, on_up=answering)
            started_slots = [(e, s) for e, s in started_slots if e.name != env.name]
            moves.append((env, old, new))
        # The release rolled back from stays warm too: undoing the rollback is a switch as well.
        retire_slots(backend, [(env, old) for env, old, _new in moves], progress, step)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, DeployError) else f"{type(exc).__name__}: {exc}"
        for env, slot in started_slots:
            try:
                backend.stop_slot(env, slot)
            except Exception:  # noqa: BLE001, S110
                pass
        ledger.append(backend.var_dir, ledger.ABORT, env=primary.name, release=target_id,
                      previous=current, reason=f"rollback: {reason}",
                      seconds=round(time.monotonic() - started, 2))
        if isinstance(exc, DeployError):
            raise
        raise DeployError(reason) from exc

    backend.prune_installs()
    whole = round(time.monotonic() - started, 2)
    for env in members:
        ledger.append(backend.var_dir, ledger.ROLLBACK, env=env.name, release=target.id,
                      previous=current, slot=backend.slots(env.name).active,
                      seconds=on_traffic, warm=warm.get(env.name, False), command_seconds=whole)
    return DeployResult(env=primary.name, release=target.id, previous=current,
                        slot=backend.slots(primary.name).active or "", seconds=on_traffic,
                        action="rollback", steps=steps)
