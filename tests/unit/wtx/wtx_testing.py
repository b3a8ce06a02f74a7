"""Helpers shared by wtx's tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SPEC_FILE = ROOT / "deploy" / "environments.toml"
GIT_IDENTITY = ["-c", "user.name=wtx tests", "-c", "user.email=wtx-tests@wondertix.localhost"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, "-C", str(repo), *args], check=True,
                          capture_output=True, text=True).stdout


def clone_repo(dest: Path) -> Path:
    """A clone of this checkout's HEAD: a clean work tree to build from and to edit."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True, capture_output=True)
    return dest


def commit_change(repo: Path, rel: str, text: str, message: str = "test change") -> str:
    """Append `text` to `rel` in `repo` and commit it; returns the new commit."""
    path = repo / rel
    path.write_text(path.read_text() + text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def use_the_real_processor(raw_spec: dict) -> dict:
    """prd (and bak, which takes the same orders) on Stripe instead of the checked-in local demo."""
    for name in ("prd", "bak"):
        app = raw_spec["environments"][name]["app"]
        app["payments"] = "stripe"
        app.pop("simulated_payments_on_real_data", None)
    return raw_spec
