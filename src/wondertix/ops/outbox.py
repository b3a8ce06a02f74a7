"""The email outbox: every email is a row written with the change it reports, sent later.

`queue` runs inside the caller's transaction, so an order and its confirmation commit (or
roll back) together. Delivery is at least once and normally exactly once: a sender first
*claims* a due row with a conditional UPDATE (only one sender's UPDATE matches; on
PostgreSQL the batch is also read with `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent
senders take different rows instead of queueing on the same ones), then sends outside any
transaction, then records the outcome. A sender that dies mid-send leaves its claim to
lapse, and the row is sent again later — the one case where a patron may get two copies.

A failed send is retried with exponential backoff, up to OUTBOX_MAX_ATTEMPTS; then the row
is `failed` and the staff order page shows it with its last error (and a resend button).
Logs name the row, its order and the error's class — never the address, the message or
the order's link (its token lets anyone read the order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from wondertix.ops.models import OutboxEmail

if TYPE_CHECKING:
    from wondertix.sales.models import Order

log = logging.getLogger(__name__)

# kind → the function that renders the message (None: nothing to send any more). The
# confirmation is rendered from its order; a change email from its row (the refund or the
# exchange it reports).
RENDERERS: dict[str, str] = {
    OutboxEmail.ORDER_CONFIRMATION: "wondertix.sales.notifications.order_confirmation_message",
}
ROW_RENDERERS: dict[str, str] = {
    OutboxEmail.REFUND: "wondertix.sales.change_emails.refund_message",
    OutboxEmail.PERFORMANCE_CANCELED: "wondertix.sales.change_emails.cancellation_message",
    OutboxEmail.EXCHANGE: "wondertix.sales.change_emails.exchange_message",
    OutboxEmail.PATRON_SIGN_IN: "wondertix.storefront.account.sign_in_message",
}
# kind → the function that renders an email to an address rather than about one order (it
# is given the recipient; the row has no order).
ADDRESS_RENDERERS: dict[str, str] = {
    OutboxEmail.ORDER_LINKS: "wondertix.sales.notifications.order_links_message",
}


def queue(kind: str, *, order: Order, send_now: Order | None = None, **about: Any) -> OutboxEmail | None:
    """Write the email to send; call inside the transaction that makes the change.

    `send_now`: the in-memory order (with its tickets) to render from when the email is
    tried right after the commit (OUTBOX_SEND_ON_COMMIT) — the sale path passes the order it
    just wrote, so the email reads nothing back. `about`: what a change email reports
    (`refund=` or `exchange=`). None when the order has no address that can receive mail (a
    walk-up at the window is kept under a `.invalid` placeholder address, which never can).
    """
    if not order.buyer_email or order.buyer_email.lower().endswith(".invalid"):
        return None
    row = OutboxEmail.objects.create(kind=kind, order=order, recipient=order.buyer_email, next_attempt_at=timezone.now(), **about)
    if settings.OUTBOX_SEND_ON_COMMIT:
        # robust: whatever goes wrong with this try (even the database) is logged, never
        # turned into an error page for a sale that has committed; the jobs program retries.
        transaction.on_commit(lambda: deliver(row, order=send_now), robust=True)
    return row


def queue_to_address(kind: str, recipient: str) -> OutboxEmail:
    """Write an email to an address, about no one order; call inside the caller's transaction.

    Never tried on commit: the jobs program sends it. The request that asked for it then does
    the same work whatever the email will say — or whether there will be one at all (the
    renderer may find nothing to send) — so its answer and its timing tell nothing.
    """
    return OutboxEmail.objects.create(kind=kind, recipient=recipient, next_attempt_at=timezone.now())


def retry_now(row: OutboxEmail) -> None:
    """Make a waiting row due at once (staff asked to send it again); in a transaction."""
    OutboxEmail.objects.filter(pk=row.pk, status=OutboxEmail.PENDING).update(next_attempt_at=timezone.now())
    if settings.OUTBOX_SEND_ON_COMMIT:
        pk = row.pk
        transaction.on_commit(lambda: deliver(pk), robust=True)


def _due(now: datetime) -> Q:
    # Pending and due, or a claim that lapsed (its sender died or hung past the lease).
    return Q(status__in=(OutboxEmail.PENDING, OutboxEmail.SENDING), next_attempt_at__lte=now)


def _lease() -> timedelta:
    """How long a claim holds: longer than any one send can take (EMAIL_TIMEOUT bounds each
    socket operation of an SMTP conversation; a message needs a handful)."""
    return timedelta(seconds=max(60, 6 * settings.EMAIL_TIMEOUT))


def _claim(pk: int, now: datetime) -> bool:
    claimed = OutboxEmail.objects.filter(_due(now), pk=pk).update(
        status=OutboxEmail.SENDING, next_attempt_at=now + _lease(), attempts=F("attempts") + 1,
    )
    return claimed == 1


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: base, 2×base, 4×base … capped."""
    seconds = settings.OUTBOX_RETRY_BASE_S * 2 ** max(0, min(attempts - 1, 30))
    return timedelta(seconds=min(seconds, settings.OUTBOX_RETRY_MAX_S))


def deliver(row: OutboxEmail | int, *, order: Order | None = None) -> bool:
    """Send one row now if it is due and nobody else has it; True when it was sent.

    Given the row this process just wrote (and the order to render), nothing is read back.
    """
    pk = row if isinstance(row, int) else row.pk
    if not _claim(pk, timezone.now()):
        return False
    if isinstance(row, int):
        row = OutboxEmail.objects.select_related("order").get(pk=pk)
    else:
        row.attempts += 1
        row.status = OutboxEmail.SENDING
    return _send(row, order=order)


def send_due(limit: int = 50) -> dict[str, int]:
    """Send up to `limit` due emails (the worker's pass); counts of what happened."""
    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            OutboxEmail.objects.select_for_update(skip_locked=True)
            .filter(_due(now)).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit]
        )
        claimed = [pk for pk in candidates if _claim(pk, now)]
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for row in OutboxEmail.objects.select_related("order").filter(pk__in=claimed).order_by("pk"):
        if _send(row):
            counts["sent"] += 1
        else:
            row.refresh_from_db(fields=["status"])
            counts["failed" if row.status == OutboxEmail.FAILED else "retrying"] += 1
    return counts


def _send(row: OutboxEmail, *, order: Order | None = None) -> bool:
    """Render and send a claimed row; record the outcome. Never raises for a mail failure."""
    try:
        render: Callable[..., EmailMessage | None]
        if row.kind in ROW_RENDERERS:
            render = import_string(ROW_RENDERERS[row.kind])
            message = render(row)
        elif row.kind in ADDRESS_RENDERERS:
            render = import_string(ADDRESS_RENDERERS[row.kind])
            message = render(row.recipient)
        else:
            render = import_string(RENDERERS[row.kind])
            message = render(order or row.order)
        if message is not None:
            message.send()
    except Exception as exc:  # any failure (SMTP, timeout, template) is the row's, not the caller's
        _failed(row, exc)
        return False
    now = timezone.now()
    OutboxEmail.objects.filter(pk=row.pk).update(status=OutboxEmail.SENT, sent_at=now, last_error="")
    if row.order_id is not None and message is not None and row.kind == OutboxEmail.ORDER_CONFIRMATION:
        from wondertix.sales.models import Order

        Order.objects.filter(pk=row.order_id).update(email_sent_at=now)
    log.info("email sent", extra={"outbox": row.pk, "order": row.order_id, "kind": row.kind, "attempts": row.attempts})
    return True


def _failed(row: OutboxEmail, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}".strip()[:500]
    given_up = row.attempts >= settings.OUTBOX_MAX_ATTEMPTS
    update: dict[str, Any] = {"last_error": error}
    if given_up:
        update["status"] = OutboxEmail.FAILED
    else:
        update.update(status=OutboxEmail.PENDING, next_attempt_at=timezone.now() + backoff(row.attempts))
    OutboxEmail.objects.filter(pk=row.pk).update(**update)
    log.warning(
        "email failed" + (", giving up" if given_up else ", will retry"),
        extra={"outbox": row.pk, "order": row.order_id, "kind": row.kind, "attempts": row.attempts, "error": type(exc).__name__},
    )
