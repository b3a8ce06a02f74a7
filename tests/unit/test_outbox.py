"""Emails go through the outbox: written with the order, retried until the mail server takes
them, a failure visible to staff, a confirmation staff can send again, and `run_jobs` that
runs the outbox and the payment reconciliation."""

from __future__ import annotations

import io
import json
import socket
import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.support import flaky_mail

from wondertix.ops.models import AuditEntry, OutboxEmail
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import errors
from wondertix.sales.models import Order
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(settings):
    """The mail server refuses the next N sends (`flaky(N)`), then accepts."""
    settings.EMAIL_BACKEND = "tests.support.flaky_mail.FlakyEmailBackend"
    settings.OUTBOX_RETRY_BASE_S = 60
    flaky_mail.fail_next(0)
    return flaky_mail.fail_next


@pytest.fixture
def buy(make_performance, buyer, good_card, django_capture_on_commit_callbacks):
    """Sell two tickets, running what the commit triggers (the first try of the email)."""
    perf = make_performance(capacity=10)

    def buy() -> Order:
        with django_capture_on_commit_callbacks(execute=True):
            return sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card))

    return buy


def later() -> None:
    """Time passes: every waiting email is due now."""
    OutboxEmail.objects.filter(status=OutboxEmail.PENDING).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def send_due() -> dict[str, int]:
    from wondertix.ops import outbox

    return outbox.send_due()


def test_confirmation_refused_by_the_mail_server_is_delivered_by_a_later_pass(flaky, buy):
    flaky(2)
    order = buy()
    assert mail.outbox == []  # the first try, right after the commit, failed
    email = order.emails.get()  # type: ignore[attr-defined]
    assert (email.status, email.attempts, email.recipient) == (OutboxEmail.PENDING, 1, "ada@example.org")
    assert "SMTPServerDisconnected" in email.last_error
    assert email.next_attempt_at >= timezone.now() + timedelta(seconds=55)  # backoff: not retried at once
    assert send_due() == {"sent": 0, "retrying": 0, "failed": 0}

    later()
    assert send_due() == {"sent": 0, "retrying": 1, "failed": 0}
    email.refresh_from_db()
    assert email.attempts == 2
    assert email.next_attempt_at >= timezone.now() + timedelta(seconds=115)  # twice as long

    later()
    assert send_due() == {"sent": 1, "retrying": 0, "failed": 0}
    email.refresh_from_db()
    order.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == (OutboxEmail.SENT, 3, "")
    assert order.email_sent_at is not None
    assert [m.to for m in mail.outbox] == [["ada@example.org"]]
    assert order.reference in mail.outbox[0].subject

    later()
    assert send_due()["sent"] == 0 and len(mail.outbox) == 1  # sent once
    print(f"mail server tries: {flaky_mail.tries()}")


def test_email_is_written_with_the_order_and_a_declined_sale_queues_nothing(make_performance, buyer, settings):
    settings.OUTBOX_SEND_ON_COMMIT = False  # as with a worker-only setup: nothing sent inline
    perf = make_performance(capacity=10)
    with pytest.raises(errors.SaleError):
        sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=PaymentDetails(card_number="4000 0000 0000 0002")))
    assert OutboxEmail.objects.count() == 0
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=PaymentDetails(card_number="4242 4242 4242 4242")))
    assert order.emails.get().status == OutboxEmail.PENDING  # type: ignore[attr-defined]
    assert mail.outbox == []
    assert send_due()["sent"] == 1 and len(mail.outbox) == 1


def test_email_that_keeps_failing_is_shown_as_failed_on_the_staff_order_page(flaky, buy, staff, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    flaky(99)
    order = buy()
    later()
    assert send_due() == {"sent": 0, "retrying": 0, "failed": 1}
    later()
    assert send_due() == {"sent": 0, "retrying": 0, "failed": 0}  # given up: not tried again
    assert order.emails.get().attempts == 2  # type: ignore[attr-defined]

    page = staff.get(reverse("staff-sales:order", args=[order.pk])).content.decode()
    assert "Failed — not sent" in page
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in page
    assert "Resend confirmation" in page


def test_resend_button_queues_and_sends_a_second_copy_and_is_audited(buy, staff, clerk, django_capture_on_commit_callbacks):
    order = buy()
    assert len(mail.outbox) == 1
    url = reverse("staff-sales:order-resend-confirmation", args=[order.pk])
    assert url in staff.get(reverse("staff-sales:order", args=[order.pk])).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url, follow=True)
    assert response.status_code == 200
    assert "onfirmation" in response.content.decode() and "to ada@example.org" in response.content.decode()
    assert [m.to for m in mail.outbox] == [["ada@example.org"], ["ada@example.org"]]
    assert mail.outbox[0].subject == mail.outbox[1].subject
    assert list(order.emails.values_list("status", flat=True)) == [OutboxEmail.SENT, OutboxEmail.SENT]  # type: ignore[attr-defined]
    entry = AuditEntry.objects.get(action="order.confirmation_resent")
    assert entry.actor == clerk and entry.object_id == str(order.pk)


def test_resend_while_a_copy_waits_for_its_retry_sends_that_copy_now(flaky, buy, staff, django_capture_on_commit_callbacks):
    flaky(1)
    order = buy()
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("staff-sales:order-resend-confirmation", args=[order.pk]))
    email = order.emails.get()  # type: ignore[attr-defined]  # one row, not two
    assert (email.status, email.attempts) == (OutboxEmail.SENT, 2)
    assert len(mail.outbox) == 1


def test_resend_needs_csrf_and_the_box_office_role_and_an_address(buy, clerk, make_performance):
    order = buy()
    url = reverse("staff-sales:order-resend-confirmation", args=[order.pk])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(clerk)
    assert strict.post(url).status_code == 403
    usher = User.objects.create_user("door", is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    at_the_door = Client()
    at_the_door.force_login(usher)
    assert at_the_door.post(url).status_code == 403
    walk_up = Order.objects.create(status=Order.PAID, buyer_name="Walk-up", subtotal_cents=0, total_cents=0)
    box = Client()
    box.force_login(clerk)
    response = box.post(reverse("staff-sales:order-resend-confirmation", args=[walk_up.pk]))
    assert response.status_code == 409
    assert "This order has no email address" in response.content.decode()
    assert OutboxEmail.objects.count() == 1  # only the first order's confirmation
    assert not AuditEntry.objects.filter(action="order.confirmation_resent").exists()


def test_a_mail_server_that_never_answers_costs_one_timeout_not_a_stuck_sender(buy, settings):
    """EMAIL_TIMEOUT bounds a send: a server that accepts the connection and says nothing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    done = threading.Event()

    def silent() -> None:
        conn, _ = server.accept()
        done.wait(10)  # never greets; closes after 10 s so a missing timeout fails, not hangs
        conn.close()

    threading.Thread(target=silent, daemon=True).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.getsockname()[1]
    settings.EMAIL_TIMEOUT = 1
    try:
        order = buy()
    finally:
        done.set()
        server.close()
    email = order.emails.get()  # type: ignore[attr-defined]
    assert email.status == OutboxEmail.PENDING and email.attempts == 1
    assert "timed out" in email.last_error


def test_run_jobs_once_runs_the_outbox_and_the_payment_reconciliation(flaky, buy, settings, monkeypatch):
    settings.STRIPE_SECRET_KEY = "sk_test_placeholder"
    calls: list[int] = []

    def reconcile(limit: int) -> dict[str, int]:
        calls.append(limit)
        return {"checked": 0, "settled": 0}

    monkeypatch.setattr("wondertix.payments.management.commands.reconcile_payments.reconcile_stale_checkouts", reconcile)
    flaky(1)
    buy()
    later()
    out = io.StringIO()
    call_command("run_jobs", "--once", "--reconcile-limit", "7", stdout=out)
    result = json.loads(out.getvalue())
    assert result["outbox"] == {"sent": 1, "retrying": 0, "failed": 0}
    assert result["reconcile_payments"] == {"checked": 0, "settled": 0}
    assert calls == [7]
    assert len(mail.outbox) == 1


def test_a_database_error_on_the_first_try_does_not_turn_a_committed_sale_into_an_error(buy, monkeypatch):
    from django.db import OperationalError

    def broken(*args: object) -> bool:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("wondertix.ops.outbox._claim", broken)
    order = buy()  # no exception reaches the buyer
    assert order.status == Order.PAID
    assert order.emails.get().status == OutboxEmail.PENDING  # type: ignore[attr-defined]  # the jobs program sends it


def test_after_a_full_batch_the_outbox_runs_again_at_once_otherwise_it_waits():
    from wondertix.ops.management.commands.run_jobs import next_pass_in

    assert next_pass_in("outbox", {"sent": 48, "retrying": 1, "failed": 1}, 5, 50) == 0
    assert next_pass_in("outbox", {"sent": 3, "retrying": 0, "failed": 0}, 5, 50) == 5
    assert next_pass_in("outbox", {"error": "OperationalError"}, 5, 50) == 5
    assert next_pass_in("reconcile_payments", {"refunds": 500}, 60, 50) == 60
