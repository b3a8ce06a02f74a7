"""`wtx host kill|power-on|partition|heal`: one code path for every kind of host.

What each verb does to which host is decided here without starting anything: the runners'
and the database simulation's own effects are recorded instead (tests/hosts and
tests/integration/test_db_failover.py run them for real).
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.netns_spec import netns_ha_variant

from wtx import ledger
from wtx.backends import DeployError
from wtx.backends.local import LocalBackend, dbha
from wtx.backends.local.hosts import NetnsHost
from wtx.backends.local.supervisors import Supervisors
from wtx.spec import load_spec


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(what, host) of every effect a verb had: a simulated database host's death or
    return, a namespace killed or cut off, a host's supervisord started."""
    seen: list[tuple[str, str]] = []

    def record(what: str, result: Any = None) -> Any:
        def fake(*args: Any) -> Any:
            host = next(a for a in reversed(args) if isinstance(a, str))
            seen.append((what, host))
            return result
        return fake

    monkeypatch.setattr(dbha, "kill_host", record("simulated kill", [4242]))
    monkeypatch.setattr(dbha, "revive_host", record("simulated power-on"))
    monkeypatch.setattr(Supervisors, "power_on", lambda self, host: seen.append(("supervisord started", host)))
    for verb in ("kill", "partition", "heal"):
        monkeypatch.setattr(NetnsHost, verb, lambda self, _v=verb: seen.append((f"netns {_v}", self.name)))
    return seen


def test_a_database_host_of_this_machine_dies_and_returns_by_simulation(spec, tmp_path, calls):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    host = spec.env("prd").database.ha.members[0].host
    backend.kill_host(host)
    backend.power_on_host(host)
    assert calls == [("simulated kill", host), ("simulated power-on", host)]
    events = [(r["event"], r["host"]) for r in ledger.read(backend.var_dir) if "host" in r]
    assert events == [("host-killed", host), ("host-powered-on", host)]


def test_this_machine_where_environments_run_is_refused_with_the_reason(spec, tmp_path, calls):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    with pytest.raises(DeployError, match=r"this machine.*it runs dev, stg, prd, bak, the front door"):
        backend.kill_host(spec.defaults.host)
    assert calls == []


def test_a_this_machine_host_without_database_members_is_refused(spec, tmp_path, calls):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    vault = spec.env("prd").backups.host
    with pytest.raises(DeployError, match="no HA database member runs there"):
        backend.kill_host(vault)
    assert calls == []


def test_a_database_host_of_this_machine_cannot_be_cut_off(spec, tmp_path, calls):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    with pytest.raises(DeployError, match="this machine"):
        backend.partition_host(spec.env("prd").database.ha.members[0].host)
    assert not [r for r in ledger.read(backend.var_dir) if r.get("event") == "host-partitioned"]


def test_a_netns_host_dies_whole_and_powers_on_with_its_database_members(raw_spec, write_spec, tmp_path, calls):
    spec = load_spec(write_spec(netns_ha_variant(raw_spec)))
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    prd = spec.host_name(spec.env("prd"))
    backend.kill_host(prd)
    backend.power_on_host(prd)
    backend.partition_host(prd)
    backend.heal_host(prd)
    # Killed as a namespace (never the simulation); on power-on its supervisord first, then its
    # Patroni and etcd members (Patroni is never autostarted by supervisord alone).
    assert calls == [("netns kill", prd), ("supervisord started", prd), ("simulated power-on", prd),
                     ("netns partition", prd), ("netns heal", prd)]
    edge = spec.front_door_host_name
    calls.clear()
    backend.power_on_host(edge)  # no database member there: its supervisord only
    assert calls == [("supervisord started", edge)]
