"""After `wtx up`, every environment runs its recovery jobs (`<env>-jobs`) on the release on
traffic, and they do their work: an email queued in prd's database is sent without anyone
running a command."""

from __future__ import annotations

import uuid

import pytest
from deploy_support import poll

pytestmark = pytest.mark.slow

QUEUE_EMAIL = """
from django.utils import timezone
from wondertix.ops.models import OutboxEmail
from wondertix.sales.models import Order
order = Order.objects.create(status=Order.PAID, buyer_name="Jobs Test", buyer_email="{email}", paid_at=timezone.now())
OutboxEmail.objects.create(kind=OutboxEmail.ORDER_CONFIRMATION, order=order, recipient=order.buyer_email, next_attempt_at=timezone.now())
"""


def test_every_environment_runs_its_jobs_program_on_the_release_on_traffic(stack):
    sup = stack.backend.supervisor
    for name in stack.spec.names():
        program = stack.backend.jobs_program(name)
        assert poll(lambda program=program: sup.state(program) == "RUNNING", timeout=30), (program, sup.state(program))
        release = stack.backend.current_release(stack.spec.env(name))
        conf = stack.backend.layout.program_file(name).read_text()
        section = conf.split(f"[program:{program}]", 1)[1].split("[program:", 1)[0]
        assert f"venvs/{release.id}/bin/wondertix run_jobs" in section
        jobs = stack.spec.defaults.jobs
        assert f"--outbox-every {jobs.outbox_every_s}" in section
        assert f"--reconcile-payments-every {jobs.reconcile_payments_every_s}" in section


def test_an_email_queued_in_prd_is_sent_by_the_jobs_program(stack):
    email = f"jobs-{uuid.uuid4().hex[:12]}@example.org"
    stack.manage("prd", "shell", "-c", QUEUE_EMAIL.format(email=email))
    mail_dirs = [stack.var_dir / "envs" / env / "mail" for env in ("prd", "bak")]  # either may send it

    def delivered() -> int:
        return sum(f.read_text(errors="replace").count(f"To: {email}") for d in mail_dirs if d.is_dir() for f in d.iterdir())

    jobs = stack.spec.defaults.jobs
    assert poll(lambda: delivered() > 0, timeout=jobs.outbox_every_s * 6 + 10)
    # prd's and bak's jobs share the database: no second copy in the next passes either.
    assert not poll(lambda: delivered() > 1, timeout=jobs.outbox_every_s * 2 + 1)
