"""Every supervisord of one var dir, addressed as one: a program goes to its host's.

This-machine hosts share one supervisord (what a single-machine stack always had); each
netns host has its own, started inside its namespace. `write_programs` splits a file's
programs by `Program.host`; every other call finds the supervisord that holds the program
(by the program files each one includes), so callers name programs, never supervisords.
"""

from __future__ import annotations

import re
import xmlrpc.client  # nosec B411 # only supervisord's own sockets (0700, this user's) answer it
from typing import Any

from wtx.backends.local.hosts import LocalHosts
from wtx.backends.local.layout import Layout
from wtx.backends.local.supervisor import Program, Supervisor, SupervisorError

_SECTION = re.compile(r"^\[program:([^\]]+)\]", re.MULTILINE)
# A program whose host's supervisord does not answer (the host is down or cut off).
UNREACHABLE = "UNREACHABLE"


class Supervisors:
    def __init__(self, layout: Layout, hosts: LocalHosts) -> None:
        self.layout = layout
        self.hosts = hosts
        self.shared = Supervisor(layout)
        self.separate = {r.name: Supervisor(layout, host=r.name, argv=r.argv) for r in hosts.separate()}

    def all(self) -> list[Supervisor]:
        return [self.shared, *self.separate.values()]

    def of_host(self, host: str | None) -> Supervisor:
        """The supervisord that runs `host`'s programs (None: this machine's shared one)."""
        if host is None:
            return self.shared
        self.hosts[host]  # an unknown host is an error, not the shared supervisord
        return self.separate.get(host, self.shared)

    def of_program(self, name: str) -> Supervisor:
        """The supervisord whose program files define `name` (the shared one if none does)."""
        for sup in self.separate.values():
            if sup.include_dir.is_dir():
                for path in sup.include_dir.glob("*.conf"):
                    if name in _SECTION.findall(path.read_text()):
                        return sup
        return self.shared

    # -- lifecycle ---------------------------------------------------------------------------
    def write_main_conf(self) -> None:
        for sup in self.all():
            sup.write_main_conf()

    def start(self, hosts: list[str] | None = None) -> None:
        """The shared supervisord and (each prepared first) every separate host's, or those of
        `hosts`; one already running is left alone."""
        self.shared.start()
        for name, sup in self.separate.items():
            if hosts is None or name in hosts:
                self.hosts[name].prepare()
                sup.start()

    def power_on(self, host: str) -> None:
        """A killed host back: its namespace prepared, its supervisord started, which starts
        every program of it that is set to autostart (the slot on traffic, its database…)."""
        runner = self.hosts[host]
        runner.prepare()
        self.of_host(host).start()

    def running(self) -> bool:
        """Every supervisord that has programs answers."""
        return all(sup.running() for sup in self.all()
                   if sup is self.shared or any(sup.include_dir.glob("*.conf")))

    def shutdown(self, timeout: float = 60.0) -> None:
        for sup in reversed(self.all()):
            sup.shutdown(timeout)

    # -- programs ----------------------------------------------------------------------------
    def write_programs(self, key: str, programs: list[Program]) -> None:
        """File `key` of each supervisord holds exactly the programs placed on its hosts."""
        by_sup: dict[int, list[Program]] = {id(s): [] for s in self.all()}
        for program in programs:
            by_sup[id(self.of_host(program.host))].append(program)
        for sup in self.all():
            sup.write_programs(key, by_sup[id(sup)])

    def update(self, only: set[str] | None = None) -> None:
        """`supervisorctl update` on every supervisord that answers (a dead host's programs
        are applied when it is powered on: it reads its files then)."""
        for sup in self.all():
            if sup is self.shared or sup.running():
                sup.update(only=only)

    def info(self, name: str) -> dict[str, Any] | None:
        return self.of_program(name).info(name)

    def all_info(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for sup in self.all():
            if sup is self.shared or sup.running():
                out.update(sup.all_info())
        return out

    def start_program(self, name: str, wait: bool = False) -> None:
        self.of_program(name).start_program(name, wait)

    def stop_program(self, name: str) -> None:
        sup = self.of_program(name)
        if sup is not self.shared and not sup.running():
            return  # its host is down: nothing of it runs
        sup.stop_program(name)

    def signal_program(self, name: str, sig: str) -> None:
        self.of_program(name).signal_program(name, sig)

    def state(self, name: str) -> str:
        sup = self.of_program(name)
        try:
            return sup.state(name)
        except (OSError, xmlrpc.client.ProtocolError):
            if sup is self.shared:
                raise
            return UNREACHABLE

    def wait_running(self, name: str, timeout: float) -> None:
        self.of_program(name).wait_running(name, timeout)


__all__ = ["UNREACHABLE", "Supervisors", "SupervisorError"]
