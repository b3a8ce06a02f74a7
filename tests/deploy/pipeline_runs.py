"""`wtx pipeline run` as the deploy tests drive it: one line per stage and gate, printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtx import pipeline
from wtx.backends.local import LocalBackend
from wtx.spec import Spec


def run_logged(spec: Spec, root: Path, var_dir: Path, repo: Path, release: str) -> tuple[pipeline.Outcome, list[str]]:
    """The pipeline for `release` (built from `repo`) with a fresh backend on `var_dir`; the
    outcome, and one line per stage and gate as an operator reads them on screen."""
    backend = LocalBackend(spec, root, var_dir)
    lines: list[str] = []

    def event(kind: str, data: dict[str, Any]) -> None:
        if kind == "gate":
            r = data["result"]
            lines.append(f"{data['env']} {r.check} {'passed' if r.passed else 'FAILED'}: {r.summary} ({r.seconds:.1f} s)")
        elif kind == "stage":
            lines.append(f"{data['stage']}: {data['detail']}")

    outcome = pipeline.run_pipeline(spec, backend, repo, release_id=release, on_event=event)
    return outcome, lines


def last_gates(var_dir: Path, env: str, release: str) -> dict[str, dict[str, Any]]:
    """The newest gate run of `release` in `env`, by check."""
    return {r["check"]: r for r in pipeline.last_gate_run(var_dir, env, release)}
