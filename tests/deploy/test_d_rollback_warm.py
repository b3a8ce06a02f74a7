"""Rollback of prd within the warm window is a traffic switch; after it, a slower restart.

A deploy keeps the slot it takes off traffic running, out of traffic, for the spec's
`rollback_warm_s`. `wtx rollback prd` within that window only moves HAProxy's traffic back,
so the previous release answers within about a second (measured and printed, never asserted
on time). The CLI and the ledger report the same figure. When the window ends the
`prd-warm-timer` program stops the slot; a rollback then starts it first, and still works.
"""

from __future__ import annotations

import json
import time

import pytest
from deploy_support import Load, poll, served_by

from wtx import ledger

pytestmark = pytest.mark.slow


def _poller(stack) -> Load:
    """Reads prd (no writes) 20 times a second, bounded; stopped by the test."""
    return Load(stack.site("prd"), rate=20, seconds=60, threads=4,
                gets=["/healthz", "/api/v1/events"], max_requests=1200)


def _rollback_while_polling(stack) -> tuple[dict, float | None, float, list[str]]:
    """`wtx rollback prd --json` under a read load: its output, when the previous release
    answered its first request through HAProxy (seconds after the command was launched),
    the whole command's seconds and the failed requests."""
    slots = stack.backend.slots("prd")
    target = f"prd/{slots.idle()}"
    poller = _poller(stack).start()
    started = time.monotonic()
    cli = stack.wtx("rollback", "prd", "--json")
    returned = time.monotonic()
    time.sleep(1)
    poller.stop()
    polled = poller.join()
    assert cli.returncode == 0, cli.stderr
    answered = served_by(stack.logs("prd"))
    first = min((r.end for r in polled.requests if r.start >= started and answered.get(r.rid) == target),
                default=None)
    return json.loads(cli.stdout), (None if first is None else first - started), returned - started, \
        polled.failures


def test_rollback_within_the_window_is_a_traffic_switch_and_after_it_still_works(stack):
    backend, spec = stack.backend, stack.spec
    window = spec.rollback_warm_s(spec.env("prd"))
    assert window > 0, "the checked-in spec keeps prd's previous release warm"

    # A deploy (promotion) of a release other than the one prd runs.
    current = backend.active_release("prd")
    new = next(stack.builds.wait(n) for n in ("next", "base", "candidate") if stack.builds.wait(n) != current)
    deployed_at = time.time()
    stack.promote_to("prd", new)
    slots = backend.slots("prd")
    warm_slot = slots.idle()
    assert slots.active_release() == new and slots.releases[warm_slot] == current

    # The previous release still runs, out of traffic, until the window ends; status says so.
    assert backend.supervisor.state(f"prd-{warm_slot}") == "RUNNING"
    assert deployed_at + window - 5 <= slots.warm_until[warm_slot] <= time.time() + window
    status = {s.env: s.warm for s in backend.status()}
    assert status["prd"].startswith(f"previous {current} warm in slot {warm_slot} until "), status
    assert backend.supervisor.state("prd-warm-timer") == "RUNNING"

    # Rollback within the window: was RUNNING before the switch (above), is on traffic after.
    out, first, whole, failures = _rollback_while_polling(stack)
    record = ledger.read(stack.var_dir, "prd")[-1]
    stack.figures.update({
        "warm_rollback_seconds_cli": out["seconds"],
        "warm_rollback_seconds_ledger": record["seconds"],
        "warm_rollback_first_answer_after_launch": None if first is None else round(first, 2),
        "warm_rollback_whole_command": round(whole, 2),
    })
    print(f"\nwarm rollback: wtx says {out['seconds']:.2f} s, the ledger {record['seconds']:.2f} s; first "
          f"answer from the previous release {first if first is None else round(first, 2)} s after the "
          f"command was launched (Python start included); whole command {whole:.2f} s")
    assert out["release"] == current and backend.active_release("prd") == current
    assert record["event"] == ledger.ROLLBACK and record["release"] == current
    assert record["warm"] is True and record["seconds"] == out["seconds"]
    assert first is not None, "no request reached the previous release after the rollback"
    assert failures == [], failures[:10]
    # The release rolled back from stays warm in its turn.
    back = backend.slots("prd")
    assert back.idle() != warm_slot and backend.supervisor.state(f"prd-{back.idle()}") == "RUNNING"

    # The window ends (brought forward here instead of waiting): the timer stops the slot.
    ended = backend.slots("prd")
    ended.warm_until[ended.idle()] = time.time() + 1
    backend.save_slots("prd", ended)
    assert poll(lambda: backend.supervisor.state(f"prd-{ended.idle()}") == "STOPPED", timeout=30), \
        backend.supervisor.state(f"prd-{ended.idle()}")
    assert not backend.slots("prd").running[ended.idle()]
    # The timer writes its ledger record once the slot is stopped: a moment after the state above.
    assert poll(lambda: ledger.read(stack.var_dir, "prd")[-1]["event"] == "warm-expired", timeout=10), \
        ledger.read(stack.var_dir, "prd")[-1]
    assert {s.env: s.warm for s in backend.status()}["prd"] == ""

    # After the window a rollback starts the slot first: slower, and it still works.
    out, first, whole, failures = _rollback_while_polling(stack)
    record = ledger.read(stack.var_dir, "prd")[-1]
    stack.figures.update({"cold_rollback_seconds_cli": out["seconds"],
                          "cold_rollback_whole_command": round(whole, 2)})
    print(f"cold rollback (after the window): wtx says {out['seconds']:.2f} s; whole command {whole:.2f} s")
    assert out["release"] == new and backend.active_release("prd") == new
    assert record["event"] == ledger.ROLLBACK and record["warm"] is False and record["seconds"] == out["seconds"]
    assert failures == [], failures[:10]
