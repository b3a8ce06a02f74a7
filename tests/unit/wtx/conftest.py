"""Fixtures for wtx's fast tests: spec variants, throwaway var dirs, git clones, one build.

Building a release takes ~10 s, so the session builds one (shared by the xdist workers
through a lock) and only the tests that must build something different build again.
"""

from __future__ import annotations

import fcntl
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from wtx_testing import SPEC_FILE, clone_repo

from wtx import release as releases
from wtx.spec import Spec, load_spec


@pytest.fixture
def spec() -> Spec:
    return load_spec(SPEC_FILE)


@pytest.fixture
def raw_spec() -> dict[str, Any]:
    """The real spec as a plain dict, to be edited by a test and written back with `write_spec`."""
    return tomllib.loads(SPEC_FILE.read_text())


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / "deploy" / "environments.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tomli_w.dumps(data).encode())
        return path

    return write


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return clone_repo(tmp_path / "checkout")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    """One release of a clean clone of HEAD, built once for the whole session (all workers)."""
    base = tmp_path_factory.getbasetemp()
    # xdist workers each get <session>/popen-gwN: share the session's directory, never an
    # earlier session's.
    session_dir = base.parent if hasattr(request.config, "workerinput") else base
    shared = session_dir / "wtx-built-release"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = shared / "built.json"
        if not info.exists():
            repo = clone_repo(shared / "checkout")
            var = shared / "var"
            release = releases.build(repo, var)
            info.write_text(json.dumps({"repo": str(repo), "var": str(var), "id": release.id}))
        data = json.loads(info.read_text())
    repo, var = Path(data["repo"]), Path(data["var"])
    return {"repo": repo, "var": var, "release": releases.get(data["id"], var)}
