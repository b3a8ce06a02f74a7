"""Processes a test started and must not leave behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_processes_naming(path: Path) -> list[int]:
    """SIGKILL every process whose command line names `path` (a throwaway var dir): what a
    dying supervisor or Patroni may leave running. Returns the pids killed."""
    needle = str(path).encode()
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
    return killed
