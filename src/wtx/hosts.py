"""Hosts: the machines a spec places environments, databases and the front door on.

A backend runs commands on a host through a `HostRunner`; the same deploy code then drives one
machine or several. Runners: this machine (`this-machine`: processes here), a network
namespace wtx creates (`netns`: a separate machine for networking and failure, used by the
failover tests), SSH for real machines (docs/operations.md#hosts-and-runners says how it maps
onto the same five verbs). Orchestration imports only this protocol.
"""

from __future__ import annotations

from typing import Protocol


class HostError(RuntimeError):
    """A host operation is impossible (e.g. killing this machine) or failed."""


class HostRunner(Protocol):
    name: str
    address: str
    # True when the host is its own machine: it has its own supervisord, and can be killed
    # or cut off without taking wtx with it.
    separate: bool

    def prepare(self) -> None:
        """Make the host exist and reachable (idempotent)."""
        ...

    def argv(self, cmd: list[str]) -> list[str]:
        """`cmd` wrapped to run on the host."""
        ...

    def kill(self) -> None:
        """Every process on the host dies at once (SIGKILL): a machine losing power."""
        ...

    def partition(self) -> None:
        """Cut the host off from every other host (its processes keep running)."""
        ...

    def heal(self) -> None:
        """Undo `partition`."""
        ...

    def teardown(self) -> None:
        """Remove the host (kills what still runs in it); idempotent."""
        ...
