"""Deploys of prd: zero failed requests under load, broken releases refused, rollback.

prd takes a release only through promotion: each deploy here is `wtx promote stg prd` of a
release whose stg gate results the setup recorded (conftest.py `Stack.promote_to`).

Order matters within this module (one stack, one prd): the deploy under load moves prd from
the base release to the next one; the aborted deploys must leave that release serving; the
rollback then goes back to the base release.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from deploy_support import GOOD_CARD, Load, LoadResult, buyer, direct, served_by

from wtx import ledger, pipeline
from wtx.backends import DeployError
from wtx.backends.local.layout import SLOTS

pytestmark = pytest.mark.slow

LOAD_RATE = 60.0     # requests/s offered (the acceptance asks for >= 50)
LOAD_SECONDS = 30.0     # at least this long
LOAD_MAX_SECONDS = 120.0


def _catalog(stack) -> tuple[list[tuple[int, int]], list[str]]:
    """prd's demo catalog: (performance, Adult price type) pairs with seats to spare, and
    storefront URLs a visitor's browser fetches (pages, API reads, the page's assets)."""
    stack.manage("prd", "seed_demo")
    site = stack.site("prd")
    perfs = []
    for event in site.get("/api/v1/events").json():
        for perf in event["performances"]:
            if perf["available"] >= 100 and perf["status"] == "on_sale":
                detail = site.get(f"/api/v1/performances/{perf['id']}").json()
                adult = next(pt for pt in detail["price_types"] if pt["name"] == "Adult")
                perfs.append((perf["id"], adult["id"]))
    assert len(perfs) >= 4, "the demo catalog should have several performances on sale"
    home = site.get("/")
    assert home.status == 200
    assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)))
    gets = ["/", "/api/v1/events", f"/api/v1/performances/{perfs[0][0]}", *assets[:3]]
    return perfs, gets


def _poller(stack, env: str = "prd") -> Load:
    """Reads prd (no writes) 20 times a second for up to two minutes; stopped by the test."""
    return Load(stack.site(env), rate=20, seconds=120, threads=4,
                gets=["/healthz", "/api/v1/events"], max_requests=2400)


def _ids_on_traffic(stack) -> str | None:
    return {s.env: s.release for s in stack.backend.status()}.get("prd")


def _order_tokens_in_prd(stack, tokens: list[str]) -> int:
    db = stack.spec.env("prd").database
    with psycopg.connect(host="127.0.0.1", port=db.port, user=db.role, dbname=db.name,
                         password=stack.secrets("prd")["DB_PASSWORD"], connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM sales_order WHERE token = ANY(%s)", (tokens,)).fetchone()
    assert row is not None
    return int(row[0])


def _ensure_prd_runs(stack, name: str) -> None:
    want = stack.builds.wait(name)
    if _ids_on_traffic(stack) != want:
        stack.promote_to("prd", want)


def test_deploy_under_load_fails_no_request_and_loses_no_order(stack):
    new = stack.builds.wait("next")
    base = stack.builds.ids["base"]
    assert _ids_on_traffic(stack) == base
    perfs, gets = _catalog(stack)

    def purchase(n: int) -> dict[str, Any]:
        perf, price_type = perfs[n % len(perfs)]
        return {"lines": [{"performance_id": perf, "price_type_id": price_type, "quantity": 1}],
                "buyer": buyer(n), "card": GOOD_CARD}

    # Bounded: at most LOAD_MAX_SECONDS; stopped once it ran LOAD_SECONDS and the new release
    # has served for a few seconds.
    load = Load(stack.site("prd"), rate=LOAD_RATE, seconds=LOAD_MAX_SECONDS, threads=16, gets=gets,
                purchase=purchase, purchase_every=5, max_requests=int(LOAD_RATE * LOAD_MAX_SECONDS),
                clients=250)
    load.start()
    load_started = time.monotonic()
    time.sleep(5)  # steady load first
    deploy_started = time.monotonic()
    result = stack.promote_to("prd", new)
    deploy_ended = time.monotonic()
    time.sleep(max(5.0, LOAD_SECONDS - (time.monotonic() - load_started)))
    load.stop()
    outcome: LoadResult = load.join()

    during = [r for r in outcome.requests if deploy_started <= r.start <= deploy_ended]
    stack.figures.update({
        "deploy_seconds": round(deploy_ended - deploy_started, 1),
        "load_requests": outcome.sent,
        "load_requests_per_second": round(outcome.rate, 1),
        "load_requests_during_deploy": len(during),
        "load_statuses": dict(outcome.statuses),
        "failed_requests_in_load_run": len(outcome.failures),  # the deploy ran inside it
        "orders_created": len(outcome.orders),
    })
    print(f"\ndeploy under load: {stack.figures}")

    assert result.release == new and result.action == "deploy"
    deployed = [r for r in ledger.read(stack.var_dir, "prd") if r["event"] == ledger.DEPLOY][-1]
    assert deployed["release"] == new and deployed["previous"] == base
    promoted = [r for r in ledger.read(stack.var_dir, "prd") if r["event"] == pipeline.PROMOTE][-1]
    assert promoted["release"] == new and promoted["source"] == "stg"
    assert _ids_on_traffic(stack) == new
    assert {s.env: s.release for s in stack.backend.status()}["bak"] == new
    assert outcome.failures == [], outcome.failures[:10]
    assert len(during) > 0 and outcome.orders
    # The new release served requests while the load ran (traffic really moved under load).
    new_slot = stack.backend.slots("prd").active
    answered = served_by(stack.logs("prd"))
    assert any(answered.get(r.rid) == f"prd/{new_slot}" for r in outcome.requests)
    # Every order the clients were told about (201 + token) exists in prd's database.
    tokens = list(outcome.orders.values())
    lost = len(tokens) - _order_tokens_in_prd(stack, tokens)
    stack.figures["lost_orders"] = lost
    assert lost == 0


def _deploy_while_polling(stack, fn) -> tuple[BaseException | None, LoadResult]:
    poller = _poller(stack).start()
    error: BaseException | None = None
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - returned to the test
        error = exc
    finally:
        poller.stop()
    return error, poller.join()


def test_a_release_that_never_becomes_ready_is_aborted_and_the_old_release_keeps_serving(stack):
    _ensure_prd_runs(stack, "next")
    serving = _ids_on_traffic(stack)
    before = stack.backend.slots("prd")
    broken = stack.builds.wait("never_ready")
    error, polled = _deploy_while_polling(
        stack, lambda: stack.promote_to("prd", broken, ready_timeout=10))

    assert isinstance(error, DeployError), error
    assert "not ready" in str(error)
    assert polled.sent > 0 and polled.failures == [], polled.failures[:10]
    assert _ids_on_traffic(stack) == serving
    last = ledger.read(stack.var_dir, "prd")[-1]
    assert last["event"] == ledger.ABORT and last["release"] == broken
    assert "not ready" in last["reason"]
    # The broken release is not left running next to the good one, and the idle slot still
    # holds the release it held before (the rollback target is not lost).
    after = stack.backend.slots("prd")
    idle = after.idle()
    assert stack.backend.supervisor.state(f"prd-{idle}") != "RUNNING"
    assert after.releases.get(idle) == before.releases.get(idle)
    stack.figures["failed_requests_during_aborted_deploy_never_ready"] = len(polled.failures)


def test_a_release_whose_migration_fails_is_aborted_by_the_cli_and_the_old_release_keeps_serving(stack):
    _ensure_prd_runs(stack, "next")
    serving = _ids_on_traffic(stack)
    broken = stack.builds.wait("bad_migration")
    stack.ready_to_promote("prd", broken)
    box: dict[str, Any] = {}
    error, polled = _deploy_while_polling(
        stack, lambda: box.setdefault("cli", stack.wtx("promote", "stg", "prd", broken)))

    assert error is None
    cli = box["cli"]
    assert cli.returncode != 0
    assert "migrations" in cli.stderr and "failed" in cli.stderr
    assert polled.sent > 0 and polled.failures == [], polled.failures[:10]
    assert _ids_on_traffic(stack) == serving
    last = ledger.read(stack.var_dir, "prd")[-1]
    assert last["event"] == ledger.ABORT and last["release"] == broken
    assert "migrations" in last["reason"]
    # PostgreSQL rolled the failed migration back: the schema is the one prd's release expects.
    db = stack.spec.env("prd").database
    with psycopg.connect(host="127.0.0.1", port=db.port, user=db.role, dbname=db.name,
                         password=stack.secrets("prd")["DB_PASSWORD"], connect_timeout=5) as conn:
        applied = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE name = '9999_fails_on_purpose'").fetchone()
    assert applied == (0,)
    stack.figures["failed_requests_during_aborted_deploy_bad_migration"] = len(polled.failures)


def test_rollback_puts_the_previous_release_back_on_traffic(stack):
    _ensure_prd_runs(stack, "next")
    current = _ids_on_traffic(stack)
    slots = stack.backend.slots("prd")
    previous, target_slot = slots.releases[slots.idle()], slots.idle()
    assert previous and previous != current

    poller = _poller(stack).start()
    started = time.monotonic()
    result = stack.backend.rollback("prd")
    returned = time.monotonic()
    time.sleep(1)
    poller.stop()
    polled = poller.join()

    # When did the previous release answer its first request through HAProxy?
    answered = served_by(stack.logs("prd"))
    first = min((r.end for r in polled.requests
                 if r.start >= started and answered.get(r.rid) == f"prd/{target_slot}"), default=None)
    assert first is not None, "no request reached the previous release after the rollback"
    stack.figures.update({
        "rollback_seconds_to_traffic": round(first - started, 2),
        "rollback_seconds_reported": result.seconds,
        "rollback_seconds_whole_command": round(returned - started, 2),
        "failed_requests_during_rollback": len(polled.failures),
    })
    print(f"\nrollback: previous release on traffic after {first - started:.2f}s "
          f"(wtx reports {result.seconds:.2f}s)")

    assert result.release == previous and result.previous == current
    assert _ids_on_traffic(stack) == previous
    assert polled.failures == [], polled.failures[:10]
    assert ledger.read(stack.var_dir, "prd")[-1]["event"] == ledger.ROLLBACK


def test_release_directories_stay_byte_identical_to_their_manifests_after_deploys(stack):
    """Deploys, aborts and a rollback have run: every release directory still holds exactly
    the files its manifest lists, byte for byte, and nothing in it is writable. The installs
    (virtualenvs) live under var/venvs/<id>/, outside the releases."""
    from wtx import release as releases

    built = releases.list_releases(stack.var_dir)
    assert {stack.builds.wait(n) for n in ("base", "next", "never_ready", "bad_migration")} <= {r.id for r in built}
    for rel in built:
        on_disk = {p.relative_to(rel.path).as_posix() for p in rel.path.rglob("*") if not p.is_dir()}
        assert on_disk == set(rel.manifest["files"]) | {"manifest.json"}, rel.id
        assert releases.verify(rel) == [], rel.id
        writable = [str(p) for p in (rel.path, *rel.path.rglob("*")) if p.stat().st_mode & 0o222]
        assert writable == [], writable[:5]
    for env in ("prd", "bak"):
        for rid in stack.backend.slots(env).releases.values():
            assert (stack.var_dir / "venvs" / rid / "bin" / "python").exists()


def test_each_prd_slot_has_its_own_metrics_directory_holding_only_its_live_processes(stack):
    """/metrics of a slot never mixes releases or counts processes that are gone: the
    directory is the slot's own and is emptied when the slot starts."""
    backend = stack.backend
    slots = backend.slots("prd")
    active = slots.active
    info = backend.supervisor.info(backend.program("prd", active))
    assert info is not None and info["statename"] == "RUNNING"
    live = set(_process_tree(int(info["pid"])))
    prd = stack.spec.env("prd")
    app = direct(prd.app_port(SLOTS.index(active)), prd.hostnames[0])
    for _ in range(6):  # reach both workers: each writes its own files
        assert app.get("/metrics").status == 200
    metrics = backend.layout.metrics_dir("prd", active)
    assert metrics != backend.layout.metrics_dir("prd", slots.idle())
    files = list(metrics.iterdir())
    assert files
    # Emptied when the slot started: every file was written by this run of the slot.
    assert [p.name for p in files if p.stat().st_mtime < info["start"] - 1] == []
    # Live gauges only of processes that are alive in this slot (child_exit drops the rest).
    gauge_pids = {int(p.stem.rsplit("_", 1)[1]) for p in files if p.name.startswith("gauge_live")}
    assert gauge_pids, "/metrics sets wondertix_holds_active in each worker that answers it"
    assert gauge_pids <= live, f"live gauges of processes not in prd-{active}: {sorted(gauge_pids - live)}"
    body = app.get("/metrics").text
    assert "wondertix_http_requests_total" in body


def _process_tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _process_tree(int(child))
    return found


def test_no_second_deploy_runs_while_one_is_running(stack):
    """Two deploys never interleave: the second waits for the first (one lock per var dir)."""
    order: list[str] = []
    gate = threading.Event()

    def first() -> None:
        with stack.backend.locked():
            order.append("first-in")
            gate.set()
            time.sleep(0.5)
            order.append("first-out")

    t = threading.Thread(target=first)
    t.start()
    gate.wait(5)
    with stack.backend.locked():
        order.append("second-in")
    t.join(5)
    assert order == ["first-in", "first-out", "second-in"]


def test_installs_no_environment_can_roll_back_to_are_removed(stack):
    backend = stack.backend
    held = {r for env in stack.spec.environments for r in backend.slots(env).releases.values()}
    unused = [stack.builds.wait(n) for n in ("never_ready", "bad_migration")]
    assert not held & set(unused)
    for rid in unused:
        backend.install(backend.release(rid))
        assert (stack.var_dir / "venvs" / rid / "bin" / "python").exists()

    removed = backend.prune_installs()

    assert set(unused) <= set(removed)
    for rid in unused:
        assert not (stack.var_dir / "venvs" / rid).exists()
        assert (stack.var_dir / "releases" / rid / "manifest.json").exists()  # the build stays
    for rid in held:
        assert (stack.var_dir / "venvs" / rid / "bin" / "python").exists()
    assert releases_intact(stack, held | set(unused))


def releases_intact(stack, ids: set[str]) -> bool:
    from wtx import release as releases

    return all(releases.verify(releases.get(rid, stack.var_dir)) == [] for rid in ids)
