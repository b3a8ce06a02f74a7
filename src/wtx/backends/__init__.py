"""Backends turn the one environment spec into running environments.

`local` runs everything on this machine (supervisord, HAProxy, PostgreSQL, gunicorn); a later
`k8s` backend renders the same spec for Kubernetes. The CLI and a promotion pipeline talk to a
backend only through the methods of `LocalBackend` and the types below.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wtx.release import Release
    from wtx.spec import Environment, Spec

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
    # The previous release kept running out of traffic for an instant rollback, and until when.
    warm: str = ""
    # With backups declared: last backup, its age, the WAL archive's age, stale (see backups.status).
    backups: dict[str, Any] | None = None
    # With an HA database of its own: leader, members (role, state, lag), in_sync, problem
    # (see backends/local/hastatus.py).
    database_ha: dict[str, Any] | None = None

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


@dataclass(frozen=True)
class FrontDoor:
    """How a client reaches an environment: the load balancer's address, the Host it sends,
    TLS (and the certificate to trust), basic-auth credentials when the spec asks for them."""

    host: str
    port: int
    address: str = "127.0.0.1"
    tls: bool = False
    cafile: Path | None = None
    basic_auth: tuple[str, str] | None = None


class Backend(Protocol):
    """What orchestration (the promotion pipeline, its gates) may ask of a backend."""

    spec: Spec
    var_dir: Path

    def up(self, envs: list[str] | None = None, progress: Progress | None = None) -> Any: ...

    def deploy(self, env: str, release_id: str | None = None, progress: Progress | None = None,
               *, ready_timeout: float = 60.0) -> DeployResult: ...

    def rollback(self, env: str, progress: Progress | None = None) -> DeployResult: ...

    def db_seed(self, env: str, progress: Progress | None = None) -> None: ...

    def active_release(self, env: str) -> str | None:
        """The release on traffic in `env` (None: never brought up)."""
        ...

    def release_python(self, release: Release) -> Path:
        """The interpreter of `release` as installed (its code and locked dependencies)."""
        ...

    def manage(self, env: Environment, rel: Release, *args: str, timeout: float = 600.0,
               overrides: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The release's own `wondertix <args>` with the environment's variables (and
        `overrides`, e.g. another DATABASE_URL)."""
        ...

    def scratch_copy(self, env: str, source: str,
                     progress: Progress | None = None) -> AbstractContextManager[str]:
        """A fresh copy of `source`'s data in a scratch database beside `env`'s own (never
        `env`'s database itself), dropped when the block ends; yields its DATABASE_URL."""
        ...

    def scratch_database(self, env: str, progress: Progress | None = None) -> AbstractContextManager[str]:
        """An empty scratch database beside `env`'s own (never `env`'s database itself),
        dropped when the block ends; yields its DATABASE_URL."""
        ...

    def front_door(self, env: str) -> FrontDoor: ...

    def app_door(self, env: str) -> FrontDoor:
        """The app server on traffic in `env`, straight (no load balancer, no access rules)."""
        ...


__all__ = ["Backend", "DeployError", "DeployResult", "EnvStatus", "FrontDoor", "Progress"]
