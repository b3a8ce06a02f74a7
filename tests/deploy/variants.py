"""Releases that differ from one the stack runs by one deliberate change: the broken release a
gate or a check must stop, built from the commit of the release it breaks."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from wtx import release as releases


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=wtx tests", "-c", "user.email=wtx-tests@localhost", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout


def append_to_urls(repo: Path, text: str) -> None:
    """`text` appended to the project's URL conf (a view inserted before the real ones)."""
    urls = repo / "src" / "wondertix" / "urls.py"
    urls.write_text(urls.read_text() + text)


def build_variant(clone: Path, var_dir: Path, base: releases.Release, change: Callable[[Path], None],
                  message: str) -> tuple[releases.Release, Path]:
    """`base`'s commit (from a fresh clone of `clone`) with `change` applied to the checkout
    and committed as `message`, built into `var_dir`; the release and its checkout."""
    work = Path(tempfile.mkdtemp(prefix="wtx-variant-"))
    git(work, "clone", "-q", str(clone), "repo")
    repo = work / "repo"
    git(repo, "-c", "advice.detachedHead=false", "checkout", "-q", base.commit)
    change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return releases.build(repo, var_dir), repo
