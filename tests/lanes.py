"""Run test layers in parallel lanes: `python tests/lanes.py deploy-tests integration,hosts-tests,e2e`.

Each argument is a lane: make targets run one after another (a lane stops at its first
failure); the lanes run side by side. The deploy tests hold the spec's own ports, the other
layers throwaway clusters, ports moved off the spec's (tests/support/moved_spec.py) or network
namespaces of their own, so they do not meet. Each target's output goes to
var/test-logs/TARGET.log; a line is printed as each starts and ends, then every log in full,
in the order given, then a summary. Exits 1 when any target failed or ran out of time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "var" / "test-logs"
TARGET_TIMEOUT_S = 60 * 60  # one layer; CI's own limit is 90 minutes for everything
# Targets that drive Chromium take the machine's browser lock, as every browser run does
# (stg's journeys gate, in the deploy tests, waits for it: docs/pipeline.md).
BROWSER_LOCK = "/tmp/wtx-e2e.lock"  # noqa: S108 - the machine-wide lock of browser runs
BROWSER_TARGETS = {"e2e"}


@dataclass
class Result:
    target: str
    lane: int
    code: int | None = None  # None: not run (an earlier target of its lane failed)
    seconds: float = 0.0
    timed_out: bool = False

    @property
    def log(self) -> Path:
        return LOGS / f"{self.target}.log"


RUNNING: dict[str, subprocess.Popen[bytes]] = {}


def _stop_all(signum: int, _frame: object) -> None:
    """Interrupted (Ctrl-C, CI's own timeout): every layer still running stops with us."""
    for proc in list(RUNNING.values()):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    sys.exit(128 + signum)


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _run(result: Result) -> None:
    cmd = [os.environ.get("MAKE", "make"), "--no-print-directory", result.target]
    if result.target in BROWSER_TARGETS:
        cmd = ["flock", BROWSER_LOCK, *cmd]
    started = time.monotonic()
    _say(f"lane {result.lane}: {result.target} started (log: {result.log.relative_to(ROOT)})")
    with open(result.log, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING[result.target] = proc
        try:
            result.code = proc.wait(TARGET_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            result.timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                result.code = proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                result.code = proc.wait(60)
        finally:
            RUNNING.pop(result.target, None)
    result.seconds = round(time.monotonic() - started, 1)
    verdict = "passed" if result.code == 0 else ("ran out of time" if result.timed_out else f"FAILED (exit {result.code})")
    _say(f"lane {result.lane}: {result.target} {verdict} in {result.seconds:.0f} s")


def _lane(results: list[Result]) -> None:
    for result in results:
        _run(result)
        if result.code != 0:
            return


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    LOGS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, _stop_all)
    signal.signal(signal.SIGTERM, _stop_all)
    lanes = [[Result(t, n) for t in arg.split(",") if t] for n, arg in enumerate(argv, 1)]
    started = time.monotonic()
    threads = [threading.Thread(target=_lane, args=(lane,), daemon=True) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TARGET_TIMEOUT_S * len(lanes) + 300)
    results = [r for lane in lanes for r in lane]
    for r in results:
        if r.code is None:
            continue
        print(f"\n{'=' * 30} {r.target} (lane {r.lane}) {'=' * 30}", flush=True)
        sys.stdout.buffer.write(r.log.read_bytes())
        sys.stdout.flush()
    print(f"\n{'=' * 30} lanes: {round(time.monotonic() - started)} s in all {'=' * 30}")
    for r in results:
        state = "not run" if r.code is None else ("passed" if r.code == 0 else
                                                   "ran out of time" if r.timed_out else f"FAILED (exit {r.code})")
        print(f"  lane {r.lane}  {r.target:<14} {state:<18} {r.seconds:7.0f} s")
    return 0 if all(r.code == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
