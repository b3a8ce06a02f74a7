"""Backends turn the one environment spec into running environments.

`local` runs everything on this machine (supervisord, HAProxy, PostgreSQL, gunicorn); a later
`k8s` backend renders the same spec for Kubernetes. The CLI and a promotion pipeline talk to a
backend only through the methods of `LocalBackend` and the types below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Progress = Callable[[str], None]
"""Called with a short description as each long step starts."""


class DeployError(Exception):
    """A deploy, rollback or environment operation was refused or aborted.

    The message is one line for the operator; the ledger records the same reason.
    """


@dataclass
class EnvStatus:
    env: str
    url: str
    release: str
    health: str
    database: str
    last_deploy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DeployResult:
    env: str
    release: str
    previous: str | None
    slot: str
    seconds: float
    action: str = "deploy"
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["DeployError", "DeployResult", "EnvStatus", "Progress"]
