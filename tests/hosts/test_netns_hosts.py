"""prd, bak and the front door as three machines (network namespaces): losing prd's machine,
or its network, sends patrons to bak's app on bak's machine; powering it on or healing the
link brings prd back. bak still runs on prd's one database (database failover is separate
work), so what is proven here is the front door's routing across machines: patrons reach
bak's app, on bak's host, while prd's host is dead or cut off.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import uuid

import pytest
from tests.hosts.conftest import HostsStack

from wtx import ledger
from wtx.backends.local.hosts import NetnsHost

WAIT_S = 60.0  # every wait below is bounded by this


def _get(stack: HostsStack, path: str) -> tuple[int, str]:
    """GET `path` of prd as a patron: through the front door on the edge host (the address,
    port, TLS and certificate wtx says it has); (status, request id)."""
    door = stack.backend.front_door("prd")
    assert door.address == stack.spec.front_door_host.address
    rid = uuid.uuid4().hex
    conn: http.client.HTTPConnection
    if door.tls:
        ctx = ssl.create_default_context(cafile=str(door.cafile) if door.cafile else None)
        conn = _Https(door.address, door.port, door.host, ctx)
    else:
        conn = http.client.HTTPConnection(door.address, door.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": door.host, "X-Request-Id": rid, "Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, rid
    except (OSError, http.client.HTTPException):
        return 0, rid
    finally:
        conn.close()


class _Https(http.client.HTTPSConnection):
    """TLS to an address, with SNI and the certificate checked for the environment's name."""

    def __init__(self, address: str, port: int, server_name: str, ctx: ssl.SSLContext) -> None:
        super().__init__(address, port, timeout=10, context=ctx)
        self._server_name, self._ctx = server_name, ctx

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


def _served_by(stack: HostsStack, rid: str) -> str | None:
    """The environment whose app server logged request `rid` (its access log)."""
    for env in ("prd", "bak"):
        logs = stack.var_dir / "envs" / env / "logs"
        for path in logs.glob("access-*.log"):
            if f"rid={rid}" in path.read_text(errors="replace"):
                return env
    return None


def _wait_served_by(stack: HostsStack, env: str, path: str = "/healthz") -> float:
    """Seconds until a patron's request through the front door is answered 200 by `env`."""
    started = time.monotonic()
    seen: list[int] = []
    while time.monotonic() - started < WAIT_S:
        status, rid = _get(stack, path)
        seen = [*seen[-4:], status]
        if status == 200:
            time.sleep(0.2)  # the access line is written as the answer leaves
            if _served_by(stack, rid) == env:
                return round(time.monotonic() - started, 1)
        time.sleep(0.2)
    pytest.fail(f"no request through the front door was answered by {env} within {WAIT_S:.0f}s (last statuses {seen})")


def _netns(stack: HostsStack, host: str) -> NetnsHost:
    runner = stack.backend.hosts[host]
    assert isinstance(runner, NetnsHost)
    return runner


def _pid(stack: HostsStack, program: str) -> int:
    info = stack.backend.supervisor.info(program)
    assert info is not None and info["statename"] == "RUNNING", (program, info)
    return int(info["pid"])


def test_prd_serves_through_the_front_door_on_the_edge_host(hosts_stack):
    stack = hosts_stack
    assert _wait_served_by(stack, "prd", "/") is not None
    # Each piece runs on its own machine: HAProxy on edge, prd's app and database on prd,
    # bak's app on bak; nothing of theirs on this machine's shared supervisord.
    edge, prd, bak = (_netns(stack, h) for h in ("edge", "prd", "bak"))
    assert _pid(stack, "haproxy") in edge.pids()
    assert {_pid(stack, "prd-blue"), _pid(stack, "prd-postgres")} <= set(prd.pids())
    assert _pid(stack, "bak-blue") in bak.pids()
    assert not list(stack.backend.supervisor.shared.include_dir.glob("*.conf"))


def test_killing_prds_host_sends_patrons_to_bak_until_it_is_powered_on(hosts_stack):
    stack = hosts_stack
    prd = _netns(stack, "prd")
    _wait_served_by(stack, "prd")
    stack.backend.kill_host("prd")
    assert prd.pids() == []  # everything at once, its supervisord with it
    stack.figures["kill_to_bak_s"] = _wait_served_by(stack, "bak")
    # A dead machine stays dead: nothing restarted its processes meanwhile.
    assert prd.pids() == []
    row = {r.env: r for r in stack.backend.status()}["prd"]
    assert "host prd is down" in row.health
    assert [r["host"] for r in ledger.read(stack.var_dir) if r.get("event") == "host-killed"] == ["prd"]

    stack.backend.power_on_host("prd")
    stack.figures["power_on_to_prd_s"] = _wait_served_by(stack, "prd", "/")
    assert _pid(stack, "prd-blue") in prd.pids()


def test_cutting_prds_link_sends_patrons_to_bak_until_it_heals(hosts_stack):
    stack = hosts_stack
    prd = _netns(stack, "prd")
    _wait_served_by(stack, "prd", "/")
    pids = set(prd.pids())
    stack.backend.partition_host("prd")
    try:
        stack.figures["partition_to_bak_s"] = _wait_served_by(stack, "bak")
        # Cut off, not dead: prd's processes still run on its host.
        assert pids <= set(prd.pids())
    finally:
        stack.backend.heal_host("prd")
    stack.figures["heal_to_prd_s"] = _wait_served_by(stack, "prd", "/")


def test_this_machine_is_never_killed(hosts_stack):
    from wtx.backends import DeployError

    with pytest.raises(DeployError, match="this machine"):
        hosts_stack.backend.kill_host("local")
    assert hosts_stack.backend.supervisor.shared.running()
