"""Installing a release: var/venvs/<id>/, created once, next to (never inside) the release.

The release directory, var/releases/<id>/, stays read-only and byte-identical to its
manifest forever: installing only reads from it (its wheelhouse and app wheel).

Dependencies come only from the release's own wheelhouse (no network), in pip's
hash-checking mode: each wheel must match the sha256 its release's requirements.lock lists
(and the app wheel the one its manifest lists). They are installed
once per distinct requirements.lock into a shared, content-addressed layer under var/deps/
(its directory is named by the lock's hash, so it never changes once built); each release's
venv links that layer with a .pth file and installs its own app wheel on top. Releases that
pin the same dependencies therefore install in a second or two instead of a quarter minute.

A layer holds the lock and nothing else: it is made without pip (a plain `python -m venv`
also drops the interpreter's bundled pip and setuptools into it, unlocked versions that then
came first on every path built from the release — the dev `unit` gate's release tests ran
that old pip and setuptools instead of the locked ones, built a different app wheel and
failed on Django's hash). wtx's own pip installs into it (`pip --python`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wtx.backends.local.layout import Layout
from wtx.release import Release

DONE = ".wtx-installed"


class InstallError(RuntimeError):
    pass


def _base_python() -> str:
    """The interpreter venvs are made from (not wtx's own venv)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _site_packages(venv: Path) -> Path:
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / ver / "site-packages"


def _run(args: list[str], what: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    res = subprocess.run(args, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        lines = [
            ln for ln in (res.stderr or res.stdout).strip().splitlines()
            if not ln.startswith("WARNING: Location")
        ]
        raise InstallError(f"{what} failed: {lines[-1] if lines else res.returncode}")


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Part of a layer's name: layers made before they were pip-free keep their own directory.
LAYER_FORMAT = b"wtx-deps-layer 2: the lock only, no bundled pip\0"


def _pip(target: Path) -> list[str]:
    """wtx's own pip, installing into the venv whose interpreter is `target`."""
    return [sys.executable, "-m", "pip", "--python", str(target)]


def _deps_layer(layout: Layout, release: Release) -> Path:
    digest = hashlib.sha256(LAYER_FORMAT + release.requirements.read_bytes()).hexdigest()[:16]
    layer = layout.deps_dir / digest
    if (layer / DONE).exists():
        return layer
    with _lock(layout.deps_dir / f".{digest}.lock"):
        if (layer / DONE).exists():
            return layer
        shutil.rmtree(layer, ignore_errors=True)  # a half-built layer from a crash
        _run([_base_python(), "-m", "venv", "--without-pip", str(layer)], "creating the dependency venv")
        _run(
            [
                *_pip(layer / "bin" / "python"), "install", "-q", "--no-index",
                "--require-hashes", "--find-links", str(release.wheelhouse), "-r", str(release.requirements),
            ],
            "installing the release's locked dependencies",
        )
        (layer / DONE).write_text(str(release.requirements) + "\n")
    return layer


def venv_path(layout: Layout, release: Release) -> Path:
    return layout.release_venv(release.id)


def install(layout: Layout, release: Release) -> Path:
    """The release's venv (created once); returns its path."""
    venv = venv_path(layout, release)
    if (venv / DONE).exists():
        return venv
    deps = _deps_layer(layout, release)
    with _lock(layout.venvs_dir / f".{release.id}.install.lock"):
        if (venv / DONE).exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a half-made venv from a crash
        _run([_base_python(), "-m", "venv", "--without-pip", str(venv)], "creating the release venv")
        site = _site_packages(venv)
        (site / "_wtx_deps.pth").write_text(str(_site_packages(deps)) + "\n")
        # The app wheel is checked against the sha256 its release's manifest recorded.
        wheel_rel = str(release.manifest["app"]["wheel"])
        wanted = venv / "app-requirement.txt"
        wanted.write_text(
            f"{release.manifest['app']['name']} @ {release.app_wheel.resolve().as_uri()}"
            f" --hash=sha256:{release.manifest['files'][wheel_rel]}\n"
        )
        _run([*_pip(venv / "bin" / "python"), "install", "-q", "--no-index", "--no-deps", "--require-hashes",
              "-r", str(wanted)], "installing the app wheel")
        (venv / DONE).write_text(release.id + "\n")
    return venv
