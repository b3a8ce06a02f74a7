"""A host's failure and return — one code path for `wtx host …`, drills and tests.

What "kill host X" means depends on what X is:

* a separate host (runner `netns`): every process in it dies at once (its supervisord too),
  its link can be cut and healed. Powering it on starts its supervisord, which starts what
  is set to autostart there, then the HA database members placed on it (Patroni is started
  by wtx, never by supervisord alone: the first member must bootstrap before the others);
* a this-machine host that holds only members of an HA database (the checked-in spec's
  prd-db, bak-db, witness): its death is *simulated* — every etcd, Patroni and PostgreSQL
  process of it SIGKILLed at once, and a marker keeps supervisord from starting them again
  until it is powered on (dbha.kill_host / revive_host). It cannot be cut off: its address
  is this machine's loopback;
* any other this-machine host (where wtx, an app or the front door runs) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from wtx.backends.local import dbha
from wtx.backends.local.hosts import LocalHosts
from wtx.backends.local.patroni import HACluster
from wtx.backends.local.supervisors import Supervisors
from wtx.hosts import HostError
from wtx.spec import Spec


@dataclass
class HostFailures:
    spec: Spec
    hosts: LocalHosts
    supervisors: Supervisors
    clusters: list[HACluster]  # every HA database of the spec

    def _on(self, host: str) -> list[HACluster]:
        return [cl for cl in self.clusters if host in cl.hosts()]

    def _simulated(self, host: str) -> list[HACluster]:
        """The HA clusters whose members on this-machine host `host` a simulated failure
        acts on; HostError (the runner's refusal, and why) when the host runs more than
        database members, or none."""
        users = [n for n, e in self.spec.environments.items() if self.spec.host_name(e) == host]
        if self.spec.front_door_host_name == host:
            users.append("the front door")
        clusters = self._on(host)
        if users or not clusters:
            reason = f"it runs {', '.join(users)}" if users else "no HA database member runs there"
            try:
                self.hosts[host].kill()
            except HostError as exc:
                raise HostError(f"{exc} ({reason})") from None
            raise HostError(f"host {host!r}: its failure cannot be rehearsed ({reason})")
        return clusters

    def kill(self, host: str) -> list[int]:
        """Every process of `host` SIGKILLed at once; nothing of it starts until power_on.
        Returns the pids killed when simulated (a netns host: [])."""
        runner = self.hosts[host]
        if runner.separate:
            runner.kill()
            return []
        return [pid for cl in self._simulated(host) for pid in dbha.kill_host(cl, self.supervisors, host)]

    def power_on(self, host: str) -> None:
        """The host boots: its supervisord (a separate host), then its etcd and Patroni
        members (which rejoin, rewinding if needed)."""
        runner = self.hosts[host]
        if runner.separate:
            self.supervisors.power_on(host)
            clusters = self._on(host)
        else:
            clusters = self._simulated(host) if self._on(host) else []
            if not clusters:
                self.supervisors.power_on(host)
        for cl in clusters:
            dbha.revive_host(cl, self.supervisors, host)

    def partition(self, host: str) -> None:
        """`host` cut off from every other host; only a separate host can be."""
        self.hosts[host].partition()

    def heal(self, host: str) -> None:
        self.hosts[host].heal()
