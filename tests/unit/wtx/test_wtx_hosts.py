"""Hosts: which supervisord runs what, and at which address every piece listens and is reached.

Rendering only (no namespace is created here): the deploy test in tests/hosts/ runs the stack.
"""

from __future__ import annotations

import configparser
import hashlib
import ipaddress
import json
from pathlib import Path

import pytest
from tests.support.netns_spec import netns_variant

from wtx import ledger
from wtx.backends.local import LocalBackend
from wtx.backends.local.backend import Slots
from wtx.backends.local.hosts import Bridge, LocalHosts, NetnsHost, ThisMachine
from wtx.hosts import HostError
from wtx.spec import load_spec

RID = "0123456789ab"


def _release(var_dir: Path, rid: str = RID) -> None:
    path = var_dir / "releases" / rid
    (path / "static").mkdir(parents=True)
    (path / "requirements.lock").write_text("django==5.2\n")
    files = {"requirements.lock": hashlib.sha256(b"django==5.2\n").hexdigest()}
    (path / "manifest.json").write_text(json.dumps({"id": rid, "files": files}))


def _programs(path: Path) -> set[str]:
    parser = configparser.RawConfigParser()
    parser.read_string(path.read_text())
    return {s.removeprefix("program:") for s in parser.sections()}


@pytest.fixture
def netns_backend(raw_spec, write_spec, tmp_path) -> LocalBackend:
    spec = load_spec(write_spec(netns_variant(raw_spec)))
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    _release(backend.var_dir)
    for env in ("prd", "bak"):
        backend.save_slots(env, Slots(active="blue", releases={"blue": RID}, running={"blue": True}))
    return backend


def _write_all(backend: LocalBackend) -> None:
    for env in backend.spec.environments.values():
        backend.supervisor.write_programs(env.name, backend.env_programs(env))
    backend.supervisor.write_programs("_frontdoor", [backend.haproxy_program()])


def test_each_netns_host_has_its_own_supervisord_running_exactly_its_programs(netns_backend):
    backend, spec = netns_backend, netns_backend.spec
    _write_all(backend)
    prd, bak, edge = (backend.supervisor.of_host(h) for h in ("prd", "bak", "edge"))
    assert len({id(prd), id(bak), id(edge), id(backend.supervisor.shared)}) == 4
    assert _programs(prd.program_file("prd")) == {"prd-postgres", "prd-blue", "prd-jobs"}
    assert _programs(bak.program_file("bak")) == {"bak-blue", "bak-jobs"}  # bak runs on prd's database
    assert _programs(edge.program_file("_frontdoor")) == {"haproxy"}
    # Nothing of theirs is left to the shared supervisord of this machine.
    assert not list(backend.supervisor.shared.include_dir.glob("*.conf"))
    for name, sup in (("prd-blue", prd), ("prd-postgres", prd), ("bak-blue", bak), ("haproxy", edge)):
        assert backend.supervisor.of_program(name) is sup
    # Each separate supervisord is started on its host: inside the host's namespace.
    runner = backend.hosts["prd"]
    assert isinstance(runner, NetnsHost)
    assert prd.argv(["supervisord"]) == ["ip", "netns", "exec", runner.netns, "supervisord"]
    assert spec.front_door_host_name == "edge"


def test_moving_an_environment_to_another_host_moves_its_program_file(netns_backend):
    backend = netns_backend
    _write_all(backend)
    prd_sup = backend.supervisor.of_host("prd")
    programs = backend.env_programs(backend.spec.env("prd"))
    for p in programs:
        p.host = "bak"
    backend.supervisor.write_programs("prd", programs)
    assert not prd_sup.program_file("prd").exists()
    assert "prd-blue" in _programs(backend.supervisor.of_host("bak").program_file("prd"))
    assert backend.supervisor.of_program("prd-blue") is backend.supervisor.of_host("bak")


def test_every_listener_and_every_connection_uses_the_host_address(netns_backend):
    backend, spec = netns_backend, netns_backend.spec
    prd, bak = spec.env("prd"), spec.env("bak")
    prd_addr, bak_addr, edge_addr = (spec.hosts[h].address for h in ("prd", "bak", "edge"))

    backend.slot_command(prd, "blue", backend.release(RID))
    gunicorn = backend.layout.gunicorn_conf("prd", "blue").read_text()
    assert f"bind = ['{prd_addr}:{prd.app_port(0)}']" in gunicorn

    cluster = backend.cluster(prd)
    assert cluster.address == prd_addr
    # bak's app (on its host) and wtx (on the bridge) may reach prd's database; nobody else.
    assert set(cluster.clients) == {h.address for h in spec.hosts.values()} | {backend.hosts.bridge.address}
    url = backend.app_values(bak, backend.release(RID), "blue")["DATABASE_URL"]
    assert f"@{prd_addr}:{prd.database.port}/" in url

    door = backend.front_door("prd")
    assert door.address == edge_addr
    values = backend.app_values(prd, backend.release(RID), "blue")
    assert f"{edge_addr}/32" in values["TRUSTED_PROXY_NETWORKS"].split(",")
    assert bak_addr != prd_addr


def test_haproxy_reaches_prd_and_its_backup_on_their_hosts(netns_backend, monkeypatch):
    backend, spec = netns_backend, netns_backend.spec
    monkeypatch.setattr("wtx.backends.local.haproxy.check_config", lambda binary, path: None)
    monkeypatch.setattr(LocalBackend, "haproxy_binary", lambda self: "/usr/sbin/haproxy")
    backend.render_haproxy()
    text = backend.layout.haproxy_cfg.read_text()
    prd, bak = spec.env("prd"), spec.env("bak")
    edge = spec.front_door_host.address
    assert f"bind {edge}:{spec.defaults.haproxy_http_port}" in text
    assert f"bind {edge}:{spec.defaults.haproxy_stats_port}" in text
    assert f"server prd_blue {spec.hosts['prd'].address}:{prd.app_port(0)}" in text
    assert f"server bak_blue {spec.hosts['bak'].address}:{bak.app_port(0)}" in text
    assert "127.0.0.1" not in "\n".join(ln for ln in text.splitlines() if " bind " in ln or " server " in ln)


def test_the_default_spec_keeps_one_supervisord_on_loopback(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    assert backend.supervisor.separate == {}
    assert backend.hosts.bridge is None
    for name in spec.environments:
        assert backend.supervisor.of_host(spec.host_name(spec.env(name))) is backend.supervisor.shared
        assert backend.address(spec.env(name)) == "127.0.0.1"
    # A plain cluster admits its clients from the spec's hosts only, all on this machine's loopback.
    clients = backend.cluster(spec.env("stg")).clients
    assert clients == tuple(dict.fromkeys(h.address for h in spec.hosts.values()))
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network("127.0.0.0/8") for a in clients)


def test_this_machine_cannot_be_killed_or_cut_off():
    host = ThisMachine("local", "127.0.0.1")
    assert host.argv(["true"]) == ["true"]
    host.prepare()
    host.heal()
    host.teardown()
    for verb in (host.kill, host.partition):
        with pytest.raises(HostError, match="this machine"):
            verb()


def test_killing_this_machine_through_the_backend_is_refused_and_not_recorded(spec, tmp_path):
    from wtx.backends import DeployError

    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    with pytest.raises(DeployError, match="this machine"):
        backend.kill_host("local")
    with pytest.raises(DeployError, match="unknown host"):
        backend.kill_host("nowhere")
    assert not [r for r in ledger.read(backend.var_dir) if r.get("event") == "host-killed"]


def test_two_var_dirs_never_share_a_namespace_bridge_or_veth(raw_spec, write_spec, tmp_path):
    spec = load_spec(write_spec(netns_variant(raw_spec)))
    one, two = LocalHosts(spec, tmp_path / "a"), LocalHosts(spec, tmp_path / "b")
    a, b = one["prd"], two["prd"]
    assert isinstance(a, NetnsHost) and isinstance(b, NetnsHost)
    assert a.netns != b.netns and a.veth != b.veth and one.bridge.name != two.bridge.name
    for runner in (a, b):
        assert len(runner.veth) <= 15 and len(runner.peer) <= 15  # the kernel's limit
    assert len(one.bridge.name) <= 15


def test_the_bridge_takes_a_free_address_of_the_hosts_subnet_and_refuses_two_subnets():
    bridge = Bridge("abc123", ["10.9.8.2", "10.9.8.254"])
    assert bridge.address == "10.9.8.253"
    with pytest.raises(HostError, match="one /24"):
        Bridge("abc123", ["10.9.8.2", "10.9.9.2"])


def test_wtx_host_kill_of_this_machine_is_one_line_and_exit_1(tmp_path):
    from typer.testing import CliRunner

    from wtx import cli

    root = Path(__file__).resolve().parents[3]
    result = CliRunner().invoke(cli.app, ["--root", str(root), "--var-dir", str(tmp_path / "var"),
                                          "host", "kill", "local", "--yes"])
    assert result.exit_code == 1
    assert "this machine" in result.output and "Traceback" not in result.output
    assert not ledger.read(tmp_path / "var")
