"""The email outbox and `wondertix run_jobs` on PostgreSQL: concurrent senders send every
email exactly once (claims + SKIP LOCKED), and the scheduler sends by itself and stops
cleanly on SIGTERM, as supervisord stops it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.utils import timezone
from tests.support.liveserver import ROOT, app_env


def _gifts(live_db: str, n: int, tag: str) -> list:
    from wondertix.ops.models import OutboxEmail
    from wondertix.sales.models import Order

    orders = [
        Order.objects.using(live_db).create(
            status=Order.PAID, buyer_name=f"Giver {i}", buyer_email=f"{tag}-{i}@example.org",
            donation_cents=500, total_cents=500, paid_at=timezone.now(),
        )
        for i in range(n)
    ]
    OutboxEmail.objects.using(live_db).bulk_create(
        OutboxEmail(kind=OutboxEmail.ORDER_CONFIRMATION, order=o, recipient=o.buyer_email, next_attempt_at=timezone.now())
        for o in orders
    )
    return orders


def _jobs(database_url: str, mail_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = app_env(database_url, EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
                  EMAIL_FILE_PATH=str(mail_dir), LOG_LEVEL="INFO")
    return subprocess.Popen(
        [sys.executable, "-m", "django", "run_jobs", *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_sent(rows: Any) -> None:
    from wondertix.ops.models import OutboxEmail

    for _ in range(600):  # bounded: at most ~60 s
        if all(r.status == OutboxEmail.SENT for r in rows.all()):
            return
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, as supervisord stops a program; the exit status and the process's log."""
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err


def _delivered(mail_dir: Path, tag: str) -> list[str]:
    return sorted(
        line.removeprefix("To: ")
        for f in mail_dir.glob("*.log") for line in f.read_text().splitlines()
        if line.startswith("To: ") and tag in line
    )


def test_three_senders_at_once_send_every_email_exactly_once(database_url, live_db, tmp_path):
    """Three schedulers, small batches, passes overlapping: no email twice, none left."""
    from wondertix.ops.models import OutboxEmail

    mail_dir = tmp_path / "mail"
    senders = [_jobs(database_url, mail_dir, "--outbox-every", "1", "--outbox-batch", "7") for _ in range(3)]
    try:
        orders = _gifts(live_db, 60, "race")
        rows = OutboxEmail.objects.using(live_db).filter(order__in=orders)
        _wait_sent(rows)
    finally:
        stopped = [_stop(p) for p in senders]
    assert [code for code, _ in stopped] == [0, 0, 0], [log[-2000:] for _, log in stopped]
    print("emails sent per sender:", [log.count('"email sent"') for _, log in stopped])

    assert _delivered(mail_dir, "race") == sorted(o.buyer_email for o in orders)  # each once
    assert {(r.status, r.attempts) for r in rows} == {(OutboxEmail.SENT, 1)}


def test_run_jobs_once_sends_what_is_due_and_reports_it(database_url, live_db, tmp_path):
    from wondertix.ops.models import OutboxEmail

    orders = _gifts(live_db, 3, "once")
    mail_dir = tmp_path / "mail"
    proc = _jobs(database_url, mail_dir, "--once")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["outbox"]["sent"] >= 3 and result["outbox"]["failed"] == 0
    assert result["reconcile_payments"] == {"skipped": "STRIPE_SECRET_KEY is not set"}
    assert _delivered(mail_dir, "once") == sorted(o.buyer_email for o in orders)
    assert all(r.status == OutboxEmail.SENT for r in OutboxEmail.objects.using(live_db).filter(order__in=orders))
