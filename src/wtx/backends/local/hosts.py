"""The local runners of hosts: this machine, or a network namespace wtx creates.

A netns host is `ip netns` namespace `wtx-<tag>-<host>` (tag: a hash of the var dir, so two
stacks on one machine never share a namespace) with its loopback up and one veth pair whose
outer end sits on wtx's bridge `wtxbr-<tag>`, the inner end holding the host's address. The
bridge has an address in the hosts' /24 too, so wtx (and tests) in the root namespace reach
every host. Killing the host SIGKILLs every process in the namespace; partitioning it takes
its veth down (it reaches nothing, nothing reaches it) until `heal`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

from wtx.hosts import HostError, HostRunner
from wtx.spec import Spec

NETNS_DIR = Path("/run/netns")


def stack_tag(var_dir: Path) -> str:
    """Six hex digits naming one var dir's namespaces, bridge and veths."""
    return hashlib.sha256(str(Path(var_dir).resolve()).encode()).hexdigest()[:6]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {(res.stderr or res.stdout).strip()}")
    return res


def _link_exists(name: str, netns: str | None = None) -> bool:
    args = ["-n", netns] if netns else []
    return _ip(*args, "link", "show", name, check=False).returncode == 0


class ThisMachine:
    """Processes run here; the host is wtx's own machine, so it is never killed or cut off."""

    separate = False

    def __init__(self, name: str, address: str) -> None:
        self.name, self.address = name, address

    def prepare(self) -> None:
        return None

    def argv(self, cmd: list[str]) -> list[str]:
        return list(cmd)

    def _refuse(self, what: str) -> HostError:
        return HostError(f"host {self.name!r} is this machine (runner this-machine): {what} it would take "
                         "wtx down with it; give the host runner = \"netns\" to rehearse a machine failure")

    def kill(self) -> None:
        raise self._refuse("killing")

    def partition(self) -> None:
        raise self._refuse("cutting the network of")

    def heal(self) -> None:
        return None

    def teardown(self) -> None:
        return None


class Bridge:
    """wtx's bridge for one var dir's netns hosts, with an address of the root namespace."""

    def __init__(self, tag: str, addresses: list[str]) -> None:
        self.name = f"wtxbr-{tag}"
        nets = {ipaddress.IPv4Interface(f"{a}/24").network for a in addresses}
        if len(nets) != 1:
            raise HostError(f"the netns hosts' addresses {sorted(addresses)} must share one /24 (wtx's bridge joins them)")
        self.network = nets.pop()
        taken = {ipaddress.IPv4Address(a) for a in addresses}
        free = [h for h in reversed(list(self.network.hosts())) if h not in taken]
        self.address = str(free[0])

    def prepare(self) -> None:
        if not _link_exists(self.name):
            _ip("link", "add", self.name, "type", "bridge")
        _ip("addr", "replace", f"{self.address}/{self.network.prefixlen}", "dev", self.name)
        _ip("link", "set", self.name, "up")

    def teardown(self) -> None:
        if _link_exists(self.name):
            _ip("link", "del", self.name)


class NetnsHost:
    """A host that is a network namespace on wtx's bridge."""

    separate = True

    def __init__(self, name: str, address: str, tag: str, bridge: Bridge) -> None:
        self.name, self.address, self.bridge = name, address, bridge
        self.netns = f"wtx-{tag}-{name}"
        # Interface names are at most 15 characters: a hash of the namespace names the pair.
        short = hashlib.sha256(self.netns.encode()).hexdigest()[:8]
        self.veth, self.peer = f"wv{short}", f"wp{short}"

    def exists(self) -> bool:
        return (NETNS_DIR / self.netns).exists()

    def prepare(self) -> None:
        if os.geteuid() != 0:
            raise HostError(f"host {self.name!r}: a netns host needs root (ip netns)")
        self.bridge.prepare()
        if not self.exists():
            _ip("netns", "add", self.netns)
        _ip("-n", self.netns, "link", "set", "lo", "up")
        if not _link_exists(self.veth):
            if _link_exists(self.peer, self.netns):
                _ip("-n", self.netns, "link", "del", self.peer)
            _ip("link", "add", self.veth, "type", "veth", "peer", "name", self.peer, "netns", self.netns)
        _ip("link", "set", self.veth, "master", self.bridge.name)
        _ip("-n", self.netns, "addr", "replace", f"{self.address}/{self.bridge.network.prefixlen}", "dev", self.peer)
        _ip("-n", self.netns, "link", "set", self.peer, "up")
        _ip("link", "set", self.veth, "up")

    def argv(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *cmd]

    def pids(self) -> list[int]:
        if not self.exists():
            return []
        res = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in res.stdout.split() if p.strip().isdigit()]

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the namespace, again until none is left (a process
        forked between listing and killing is caught by the next round)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        raise HostError(f"host {self.name!r}: processes {self.pids()} survived SIGKILL for {timeout:.0f}s")

    def partition(self) -> None:
        _ip("link", "set", self.veth, "down")

    def heal(self) -> None:
        _ip("link", "set", self.veth, "up")

    def teardown(self) -> None:
        self.kill()
        if _link_exists(self.veth):
            _ip("link", "del", self.veth)
        if self.exists():
            _ip("netns", "del", self.netns)


class LocalHosts:
    """Every host of a spec, each with its runner, for one var dir."""

    def __init__(self, spec: Spec, var_dir: Path) -> None:
        tag = stack_tag(var_dir)
        netns = {n: h.address for n, h in spec.hosts.items() if h.runner == "netns"}
        self.bridge = Bridge(tag, list(netns.values())) if netns else None
        self.runners: dict[str, HostRunner] = {}
        for name, host in spec.hosts.items():
            if host.runner == "netns":
                assert self.bridge is not None
                self.runners[name] = NetnsHost(name, host.address, tag, self.bridge)
            else:
                self.runners[name] = ThisMachine(name, host.address)

    def __getitem__(self, name: str) -> HostRunner:
        try:
            return self.runners[name]
        except KeyError:
            raise HostError(f"unknown host {name!r} (known: {', '.join(self.runners)})") from None

    def separate(self) -> list[HostRunner]:
        return [r for r in self.runners.values() if r.separate]

    def teardown(self) -> None:
        """Every namespace, veth and the bridge gone (what still runs in them is killed)."""
        errors = []
        for runner in self.separate():
            try:
                runner.teardown()
            except HostError as exc:
                errors.append(str(exc))
        if self.bridge is not None:
            self.bridge.teardown()
        if errors:
            raise HostError("; ".join(errors))
