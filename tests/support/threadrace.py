"""Races between threads of one process, for the child-process SQLite race tests.

The naive bug these tests hunt is "check, then write": every request sees "not done yet"
before any of them writes. `gate_first_call` forces exactly that interleaving — each thread's
first call of the check runs for real, then waits until every thread has passed it — so the
test exercises the guard that must still hold (a unique key, a lock), not luck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULT_MARK = "RACE-RESULT "


def gate_first_call(owner: Any, name: str, parties: int, *, passed: Callable[[Any], bool]) -> list[bool]:
    """Patch `owner.name`; returns the list that records, per thread, whether its first check
    passed (`passed(result)`)."""
    together = threading.Barrier(parties, timeout=90)
    seen = threading.local()
    outcomes: list[bool] = []
    real = getattr(owner, name)

    def check_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not getattr(seen, "done", False):
            seen.done = True
            outcomes.append(passed(result))
            together.wait()
        return result

    setattr(owner, name, check_then_wait)
    return outcomes


def run_together(count: int, work: Callable[[], None], *, join_timeout: float = 150) -> list[str]:
    """Run `work` in `count` threads (each closing its database connections); returns failures."""
    from django.db import connections

    failures: list[str] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=join_timeout)
    if any(t.is_alive() for t in threads):
        failures.append("thread still running")
    return failures


def run_in_child(tmp_path: Path, code: str, **env: str) -> dict[str, Any]:
    """Run `code` (it imports a test module of tests/unit and calls its race) in a fresh Python
    on a file SQLite database, and return what it `report`ed.

    A child process, because the in-memory test database is shared-cache, whose table locks
    fail at once instead of waiting as BEGIN IMMEDIATE does.
    """
    child_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), str(ROOT / "tests" / "unit")]),
        "DJANGO_SETTINGS_MODULE": "wondertix.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "WONDERTIX_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "race-test-" + "x" * 40,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        **env,
    }
    child = subprocess.run(
        [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, timeout=300, check=False
    )
    lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT_MARK)]
    assert child.returncode == 0 and lines, child.stdout + child.stderr
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARK):])
    return result


def report(result: dict[str, Any]) -> None:
    """The child's answer to `run_in_child`."""
    print(RESULT_MARK + json.dumps(result), flush=True)
