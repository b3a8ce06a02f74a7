"""A stack whose prd, bak and front door are three machines: network namespaces wtx creates.

Run as root (ip netns), under `flock /tmp/wtx-ha.lock` and the deploy lock (it starts wtx
environments on the spec's ports, on the namespaces' addresses). Everything it creates — the
namespaces, their veths, wtx's bridge, every process — is removed at the end, on failure too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from tests.support.netns_spec import netns_ha_variant, netns_variant
from tests.support.processes import kill_processes_naming

from wtx import release as releases
from wtx.backends.local import LocalBackend
from wtx.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, Any] = {}


@dataclass
class HostsStack:
    spec: Spec
    backend: LocalBackend
    var_dir: Path
    figures: dict[str, Any] = field(default_factory=lambda: FIGURES)


def _stack(variant: Callable[[dict[str, Any]], dict[str, Any]], prefix: str) -> Iterator[HostsStack]:
    """A built release, `wtx up` of the variant's environments in a throwaway var dir; at the
    end (a failure too) `wtx down`, every namespace, veth and the bridge removed, every
    process left of the var dir killed, the var dir removed."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        # Not a skip: `make test` (and CI, as root, with .ci/install-deps) must run these.
        pytest.fail("the hosts tests create network namespaces: run them as root with iproute2 installed "
                    "(.ci/install-deps installs it)")
    # Patroni's virtualenv, installed once per lock and shared by every run (WTX_TOOLS_DIR).
    os.environ.setdefault("WTX_TOOLS_DIR", str(Path(tempfile.gettempdir()) / "wtx-tools"))
    var_dir = Path(tempfile.mkdtemp(prefix=f"wtx-{prefix}-", dir="/tmp"))
    var_dir.chmod(0o755)
    spec_file = var_dir.parent / f"{var_dir.name}-spec" / "deploy" / "environments.toml"
    spec_file.parent.mkdir(parents=True)
    raw = tomllib.loads((ROOT / "deploy" / "environments.toml").read_text())
    spec_file.write_text(tomli_w.dumps(variant(raw)))
    spec = load_spec(spec_file)
    clone = Path(tempfile.mkdtemp(prefix=f"wtx-{prefix}-clone-"))
    backend = LocalBackend(spec, ROOT, var_dir)
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone / "repo")], check=True)
        started = time.monotonic()
        releases.build(clone / "repo", var_dir)
        FIGURES[f"{prefix}_build_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        not_started = backend.up()
        assert not_started == [], not_started
        FIGURES[f"{prefix}_up_seconds"] = round(time.monotonic() - started, 1)
        yield HostsStack(spec=spec, backend=backend, var_dir=var_dir)
    finally:
        try:
            backend.down()
        finally:
            backend.teardown_hosts()
            if os.environ.get("WTX_KEEP_HOST_LOGS"):
                # Every log of the run, for the reader of a failure (the var dir goes below).
                kept = Path(tempfile.mkdtemp(prefix=f"wtx-{prefix}-logs-"))
                for logs in var_dir.glob("envs/*/logs"):
                    shutil.copytree(logs, kept / logs.parent.name, dirs_exist_ok=True)
                if backend.layout.haproxy_log.exists():
                    shutil.copy(backend.layout.haproxy_log, kept / "haproxy.log")
                print(f"\nlogs kept in {kept}")
            kill_processes_naming(var_dir)
            shutil.rmtree(var_dir, ignore_errors=True)
            shutil.rmtree(spec_file.parents[1], ignore_errors=True)
            shutil.rmtree(clone, ignore_errors=True)


@pytest.fixture(scope="module")
def hosts_stack() -> Iterator[HostsStack]:
    """prd (one plain cluster), bak and the front door on three namespace hosts."""
    yield from _stack(netns_variant, "hosts")


@pytest.fixture(scope="module")
def ha_hosts_stack() -> Iterator[HostsStack]:
    """prd's HA database on the namespace hosts: Patroni + etcd on prd and bak, etcd on witness."""
    yield from _stack(netns_ha_variant, "hahosts")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("wtx hosts figures")
        terminalreporter.write_line(json.dumps(FIGURES, indent=2))
