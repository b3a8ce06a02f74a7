"""Processes a test started and must not leave behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def pids_naming(path: Path) -> list[int]:
    """Processes (other than this one) whose command line names `path` (a throwaway var dir)."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def kill_processes_naming(path: Path) -> list[int]:
    """SIGKILL every process whose command line names `path` (a throwaway var dir): what a
    dying supervisor or Patroni may leave running. Returns the pids killed."""
    killed = []
    for pid in pids_naming(path):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    return killed
