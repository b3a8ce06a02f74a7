"""`wondertix run_jobs`: the recovery jobs, each at its own interval, in one long-lived process.

wtx runs it as a supervisord program in every environment (`<env>-jobs`), with the
intervals from deploy/environments.toml (`[defaults.jobs]`), so no environment depends on
somebody's crontab. Jobs:

- `outbox`: send the emails that are due (ops.outbox), at most --outbox-batch per pass;
- `reconcile_payments`: settle card payments whose confirmation never arrived
  (payments/management/commands/reconcile_payments.py), at most --reconcile-limit per pass.

Every job is safe to run in two processes at once (prd and its backup both run this):
each claims its rows before acting. A failing job is logged and tried again at its next
interval; SIGTERM (supervisord stopping or restarting it) ends the loop after the job in
progress. `--once` runs each job once and prints what it did (tests, operators).
"""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from wondertix.ops import outbox

log = logging.getLogger("wondertix.jobs")


class Command(BaseCommand):
    help = "Run the recovery jobs (email outbox, payment reconciliation) on a schedule; --once for a single pass."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run every job once, print the results, exit.")
        parser.add_argument("--outbox-every", type=_positive, default=5, metavar="SECONDS", help="Seconds between outbox passes (default 5).")
        parser.add_argument("--reconcile-payments-every", type=_positive, default=60, metavar="SECONDS",
                            help="Seconds between payment reconciliations (default 60).")
        parser.add_argument("--outbox-batch", type=_positive, default=50, help="At most this many emails per pass (default 50).")
        parser.add_argument("--reconcile-limit", type=_positive, default=200, help="At most this many orders per reconciliation (default 200).")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs: dict[str, tuple[int, Callable[[], Any]]] = {
            "outbox": (options["outbox_every"], lambda: outbox.send_due(limit=options["outbox_batch"])),
            "reconcile_payments": (options["reconcile_payments_every"], lambda: _reconcile(options["reconcile_limit"])),
        }
        if options["once"]:
            results = {name: run(name, job) for name, (_, job) in jobs.items()}
            self.stdout.write(json.dumps(results, sort_keys=True, default=str))
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        log.info("jobs started", extra={"intervals": {name: every for name, (every, _) in jobs.items()}})
        next_run = dict.fromkeys(jobs, time.monotonic())
        while not stop.is_set():
            for name, (every, job) in jobs.items():
                if stop.is_set():
                    break
                if time.monotonic() >= next_run[name]:
                    close_old_connections()  # one the database dropped since the last pass is replaced
                    result = run(name, job)
                    next_run[name] = time.monotonic() + next_pass_in(name, result, every, options["outbox_batch"])
            stop.wait(max(0.0, min(next_run.values()) - time.monotonic()))
        log.info("jobs stopped")


def run(name: str, job: Callable[[], Any]) -> Any:
    """One pass of one job; a failure (database restarting, provider down) is logged, not fatal."""
    try:
        result = job()
    except Exception as exc:
        log.exception("job failed", extra={"job": name})
        return {"error": type(exc).__name__}
    # A pass that did nothing (every few seconds, most of the day) is not worth a log line.
    busy = any(isinstance(v, int) and v for v in result.values()) if isinstance(result, dict) else bool(result)
    if busy:
        log.info("job done", extra={"job": name, "result": result})
    return result


def next_pass_in(name: str, result: Any, every: int, outbox_batch: int) -> int:
    """Seconds until the job's next pass: `every`, except after a full batch of emails (an
    on-sale rush, where each confirmation carries its tickets as a PDF): then at once, so the
    queue drains at the speed of sending rather than one batch every few seconds."""
    if name == "outbox" and isinstance(result, dict):
        handled = sum(v for v in result.values() if isinstance(v, int))
        if handled >= outbox_batch:
            return 0
    return every


def _reconcile(limit: int) -> Any:
    out = io.StringIO()
    call_command("reconcile_payments", limit=limit, stdout=out)
    text = out.getvalue().strip()
    return json.loads(text) if text.startswith("{") else text


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value
