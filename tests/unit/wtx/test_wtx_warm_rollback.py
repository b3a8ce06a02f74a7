"""The previous release kept warm after a deploy: the window's bookkeeping, the spec field,
what `wtx status` says, and what the warm timer stops (no stack started here; the real
rollback within the window is measured in tests/deploy/test_d_rollback_warm.py)."""

from __future__ import annotations

import shlex

import pytest
from tests.unit.wtx.test_wtx_local_backend import _fake_release

from wtx import ledger
from wtx.backends.local import LocalBackend
from wtx.backends.local.backend import Slots, warm_text
from wtx.spec import SpecError, load_spec

NOW = 1_800_000_000.0


def _deployed(window_s: int) -> tuple[Slots, bool]:
    """blue ran R1; a deploy put R2 in green on traffic; blue leaves traffic."""
    slots = Slots(active="green", releases={"blue": "R1", "green": "R2"},
                  running={"blue": True, "green": True})
    return slots, slots.keep_warm("blue", NOW, window_s)


def test_the_slot_leaving_traffic_stays_warm_until_the_end_of_the_window():
    slots, kept = _deployed(900)
    assert kept
    assert slots.warm(NOW) == ("blue", "R1", NOW + 900)
    assert slots.warm(NOW + 899.9) == ("blue", "R1", NOW + 900)
    assert slots.expired(NOW + 899.9) == []
    assert slots.next_expiry() == NOW + 900


def test_after_the_window_the_warm_slot_is_due_to_be_stopped_and_no_longer_called_warm():
    slots, _ = _deployed(900)
    assert slots.warm(NOW + 900) is None
    assert slots.expired(NOW + 900) == ["blue"]


def test_a_zero_window_keeps_nothing_warm_and_asks_the_caller_to_stop_the_slot():
    slots, kept = _deployed(0)
    assert not kept
    assert slots.warm(NOW) is None and slots.next_expiry() is None and slots.expired(NOW + 1) == []


def test_the_slot_on_traffic_or_a_stopped_slot_is_never_warm_or_expired():
    slots, _ = _deployed(900)
    assert not slots.keep_warm("green", NOW, 900), "the active slot is not 'kept warm'"
    # A rollback puts blue back on traffic: it is no longer warm, nothing is stopped.
    slots.active = "blue"
    slots.forget_warm("blue")
    assert slots.expired(NOW + 10_000) == [] and slots.next_expiry() is None
    # A slot already stopped is not stopped again at the end of its window.
    stopped, _ = _deployed(900)
    stopped.running["blue"] = False
    assert stopped.expired(NOW + 10_000) == [] and stopped.next_expiry() is None and stopped.warm(NOW) is None


def test_the_window_survives_the_slots_file(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    slots, _ = _deployed(600)
    backend.save_slots("prd", slots)
    again = backend.slots("prd")
    assert again.warm_until == {"blue": NOW + 600}
    assert again.warm(NOW + 1) == ("blue", "R1", NOW + 600)


def test_status_says_which_previous_release_is_warm_and_until_when():
    slots, _ = _deployed(900)
    text = warm_text(slots, NOW)
    assert text.startswith("previous R1 warm in slot blue until 2027-01-15 08:15:00 UTC"), text
    assert warm_text(slots, NOW + 901) == ""


def test_rollback_warm_s_comes_from_defaults_or_the_environment_and_is_bounded(raw_spec, write_spec):
    raw_spec["defaults"]["rollback_warm_s"] = 300
    raw_spec["environments"]["stg"]["rollback_warm_s"] = 60
    raw_spec["environments"]["dev"].pop("rollback_warm_s", None)
    spec = load_spec(write_spec(raw_spec))
    assert spec.rollback_warm_s(spec.env("stg")) == 60
    assert spec.rollback_warm_s(spec.env("prd")) == 300 == spec.rollback_warm_s(spec.env("dev"))
    for where, bad in (("defaults", -1), ("prd", 86_401)):
        data = {**raw_spec}
        table = data["defaults"] if where == "defaults" else data["environments"][where]
        table["rollback_warm_s"] = bad
        with pytest.raises(SpecError, match="rollback_warm_s"):
            load_spec(write_spec(data))
        table["rollback_warm_s"] = 0


def test_the_checked_in_spec_keeps_prd_warm_and_not_dev(spec):
    assert spec.rollback_warm_s(spec.env("prd")) > 0
    assert spec.rollback_warm_s(spec.env("dev")) == 0


def test_a_warm_slot_comes_with_a_one_shot_timer_program_that_stops_it(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    for rid in ("0123456789ab", "ba9876543210"):
        _fake_release(backend.var_dir, rid)
    slots = Slots(active="green", releases={"blue": "0123456789ab", "green": "ba9876543210"},
                  running={"blue": True, "green": True})
    backend.save_slots("stg", slots)
    names = [p.name for p in backend.env_programs(spec.env("stg"))]
    assert "stg-warm-timer" not in names
    slots.keep_warm("blue", NOW, 900)
    backend.save_slots("stg", slots)
    timer = {p.name: p for p in backend.env_programs(spec.env("stg"))}["stg-warm-timer"]
    assert timer.autorestart == "false" and "autorestart=false" in timer.render()
    argv = shlex.split(timer.command)
    assert argv[-3:] == ["expire-warm", "stg", "--wait"]
    assert argv[argv.index("--var-dir") + 1] == str(backend.var_dir)


def test_the_warm_timer_stops_only_idle_slots_whose_window_passed_and_records_it(spec, tmp_path, monkeypatch):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    stopped: list[tuple[str, str]] = []

    def stop_slot(env, slot):  # noqa: ANN001 - the backend's signature
        stopped.append((env.name, slot))
        s = backend.slots(env.name)
        s.running[slot] = False
        s.forget_warm(slot)
        backend.save_slots(env.name, s)

    monkeypatch.setattr(backend, "stop_slot", stop_slot)
    prd, _ = _deployed(10)
    prd.warm_until["blue"] = 1.0              # a window that ended (1970)
    stg, _ = _deployed(10)
    stg.warm_until["blue"] = 4_000_000_000.0  # a window still open (year 2096)
    backend.save_slots("prd", prd)
    backend.save_slots("stg", stg)

    assert backend.expire_warm() == ["prd-blue"]
    assert stopped == [("prd", "blue")]
    assert backend.slots("stg").running["blue"] and backend.slots("stg").next_expiry() == 4_000_000_000.0
    record = ledger.read(backend.var_dir, "prd")[-1]
    assert record["event"] == "warm-expired" and record["slot"] == "blue" and record["release"] == "R1"
    # The timer's loop ends once nothing of the environment is warm any more.
    assert backend.wait_and_expire_warm("prd") == []
