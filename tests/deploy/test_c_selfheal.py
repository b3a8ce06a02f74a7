"""Self-healing: prd's app processes killed hard; bak takes the traffic, supervisord brings prd back."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from deploy_support import Load, served_by

from wtx.backends.local import haproxy as hap

pytestmark = pytest.mark.slow


def _process_tree(pid: int) -> list[int]:
    """A process and all its descendants (gunicorn master and workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += _process_tree(int(child))
    return found


def test_killing_prd_app_processes_moves_traffic_to_bak_and_supervisord_brings_prd_back(stack):
    backend = stack.backend
    slot = backend.slots("prd").active
    bak_slot = backend.slots("bak").active
    program = backend.program("prd", slot)
    info = backend.supervisor.info(program)
    assert info is not None and info["statename"] == "RUNNING"
    victims = _process_tree(int(info["pid"]))
    assert len(victims) >= 2  # master and its workers

    load = Load(stack.site("prd"), rate=40, seconds=12, threads=8,
                gets=["/api/v1/events", "/", "/healthz"], max_requests=600).start()
    time.sleep(2)
    killed_at = time.monotonic()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)

    # supervisord restarts prd by itself; HAProxy sees it UP again.
    be, srv = hap.backend_name("prd"), hap.server_name("prd", slot)
    back = None
    deadline = killed_at + 60
    while time.monotonic() < deadline:
        now = backend.supervisor.info(program)
        if now and now["statename"] == "RUNNING" and now["pid"] != info["pid"] \
                and backend.runtime.status(be, srv).startswith("UP"):
            back = time.monotonic()
            break
        time.sleep(0.1)
    result = load.join()

    answered = {**served_by(stack.logs("prd")), **served_by(stack.logs("bak"))}
    after_kill = [r for r in result.requests if r.start >= killed_at]
    in_flight = [r for r in result.requests if r.start < killed_at < r.end]
    by_bak = [r for r in after_kill if answered.get(r.rid) == f"bak/{bak_slot}"]
    first_bak = min((r.end for r in by_bak), default=None)
    stack.figures.update({
        "failover_seconds_to_bak": round(first_bak - killed_at, 2) if first_bak else None,
        "prd_back_on_traffic_seconds": round(back - killed_at, 2) if back else None,
        "requests_after_kill": len(after_kill),
        "requests_after_kill_served_by_bak": len(by_bak),
        "failed_requests_after_kill": sum(1 for r in after_kill if not r.ok),
        "requests_in_flight_at_kill": len(in_flight),
        "failed_requests_in_flight_at_kill": sum(1 for r in in_flight if not r.ok),
    })
    print(f"\nself-healing: bak served prd {stack.figures['failover_seconds_to_bak']}s after the kill; "
          f"prd back after {stack.figures['prd_back_on_traffic_seconds']}s")

    assert first_bak is not None, "bak never answered for prd"
    assert back is not None, "supervisord did not bring prd back within 60s"
    # The restarted slot began with an empty metrics directory: nothing of the killed
    # processes is counted by /metrics any more.
    leftovers = [p.name for p in backend.layout.metrics_dir("prd", slot).iterdir()
                 if int(p.stem.rsplit("_", 1)[1]) in victims]
    assert leftovers == []
    assert [r.what for r in after_kill if not r.ok] == []
    # prd answers again itself once it is back (bak is a backup: idle while prd is up).
    rids = [f"after-heal-{uuid.uuid4().hex}" for _ in range(5)]
    for rid in rids:
        assert stack.site("prd").get("/healthz", headers={"X-Request-Id": rid}).status == 200
    time.sleep(0.5)
    answered = served_by(stack.logs("prd"))
    assert all(answered.get(rid) == f"prd/{slot}" for rid in rids)


def test_up_again_changes_nothing_and_drops_no_request(stack):
    before = {s.env: s.release for s in stack.backend.status()}
    poller = Load(stack.site("prd"), rate=20, seconds=120, threads=4,
                  gets=["/healthz", "/api/v1/events"], max_requests=2400).start()
    try:
        stack.backend.up()
    finally:
        poller.stop()
    polled = poller.join()
    after = stack.backend.status()
    assert {s.env: s.release for s in after} == before
    assert all(s.health == "healthy" for s in after), after
    assert polled.sent > 0 and polled.failures == [], polled.failures[:10]


def test_down_and_up_of_one_environment_leaves_the_others_serving(stack):
    poller = Load(stack.site("prd"), rate=20, seconds=120, threads=4,
                  gets=["/healthz", "/api/v1/events"], max_requests=2400).start()
    try:
        stack.backend.down(["stg"])
        stopped = {s.env: s.health for s in stack.backend.status()}
        assert stopped["stg"].startswith("down")
        assert stack.site("stg").get("/healthz").status == 503  # HAProxy: no stg server left
        stack.backend.up(["stg"])
    finally:
        poller.stop()
    polled = poller.join()
    assert {k: v for k, v in stopped.items() if k != "stg"} == dict.fromkeys(("dev", "prd", "bak"), "healthy")
    assert all(s.health == "healthy" for s in stack.backend.status())
    assert stack.site("stg").get("/healthz").status == 200
    assert polled.sent > 0 and polled.failures == [], polled.failures[:10]
