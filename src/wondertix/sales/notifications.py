"""Emails to patrons. Queued in the order's transaction (ops.outbox), sent after it commits.

The confirmation carries each ticket's code in plain text, a link to the order page (where
the QR codes are: mail clients show inline SVG poorly), and two attachments: the tickets as a
PDF, one page per ticket with its QR, and the performances as a calendar file
(sales.ticket_files).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from wondertix.money import format_cents
from wondertix.ops import audit, outbox
from wondertix.ops.models import OutboxEmail
from wondertix.payments import simulated
from wondertix.sales import change_emails, errors, ticket_files
from wondertix.sales.models import Order, Ticket


def order_url(order: Order) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/orders/{order.token}/"


def _context(order: Order) -> dict[str, Any]:
    tickets = list(order.tickets.all())
    tickets.sort(key=lambda t: (t.performance.starts_at, t.pk))
    groups: list[dict[str, Any]] = []
    for t in tickets:
        if not groups or groups[-1]["performance"].pk != t.performance_id:
            groups.append({"performance": t.performance, "tickets": []})
        groups[-1]["tickets"].append(t)
    gifts = list(order.donations.all())
    money = {
        name: format_cents(getattr(order, f"{name}_cents"))
        for name in ("subtotal", "fees", "discount", "donation", "total")
    }
    return {
        "order": order,
        "tickets": tickets,
        "groups": groups,
        "gifts": gifts,
        "money": money,
        "order_url": order_url(order),
        "THEATER_NAME": settings.THEATER_NAME,
        "TEST_MARK": simulated.TEST_MARK if simulated.payments_are_simulated() else "",
        "first_name": (order.patron.first_name if order.patron else "") or order.buyer_name.split(" ")[0],
        # A gift with tickets: the confirmation carries its donation receipt.
        "receipt": change_emails.receipt(order, gifts) if gifts else None,
    }


def _load(order_id: int) -> Order:
    return (
        Order.objects.select_related("patron", "discount_code")
        .prefetch_related("tickets__performance__event", "tickets__price_type", "tickets__seat__section", "donations")
        .get(pk=order_id)
    )


def order_confirmation_message(order: Order) -> EmailMultiAlternatives | None:
    """The confirmation (or gift receipt) for `order`, or None when it has no address.

    `order` may be the instance the sale path just wrote, its tickets and donations already
    in memory (sales.services), so the email need not read them back; an order without
    them loaded is read with everything the email shows.
    """
    if not getattr(order, "_prefetched_objects_cache", None):
        order = _load(order.pk)
    if not order.buyer_email:
        return None
    context = _context(order)
    if not context["tickets"]:  # a subscription sale or a gift: its own email (sales.change_emails)
        subscriptions = list(order.subscriptions.select_related("subscription_type__season"))  # type: ignore[attr-defined]
        if subscriptions:
            return change_emails.subscription_email(order, subscriptions).message(order.buyer_email)
        return change_emails.donation_email(order, context["gifts"]).message(order.buyer_email)
    if context["tickets"]:
        subject = f"Your tickets — {settings.THEATER_NAME} order {order.reference}"
    else:
        subject = f"Thank you for your gift — {settings.THEATER_NAME} receipt {order.reference}"
    if context["TEST_MARK"]:
        subject = f"[{context['TEST_MARK']}] {subject}"
    files = ticket_files.attachments(order, context["tickets"], order_url=context["order_url"])
    context["attached"] = [name for name, _, _ in files]
    text = render_to_string("sales/email/order_confirmation.txt", context)
    html = render_to_string("sales/email/order_confirmation.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [order.buyer_email])
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in files:
        message.attach(filename, content, mimetype)
    return message


LINKED_ORDER_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED)
MAX_LINKED_ORDERS = 50


def order_links_message(address: str) -> EmailMultiAlternatives | None:
    """"Find my tickets": a link to each order bought with this address (newest first), or
    None — nothing is sent — when there is none. Rendered by the jobs program, never in the
    request that asked (storefront.lookup)."""
    orders = list(
        Order.objects.filter(Q(buyer_email__iexact=address) | Q(patron__email__iexact=address), status__in=LINKED_ORDER_STATUSES)
        .prefetch_related("tickets__performance__event").distinct().order_by("-created_at", "-id")[:MAX_LINKED_ORDERS]
    )
    if not orders:
        return None
    rows = []
    for order in orders:
        tickets = [t for t in order.tickets.all() if t.status == Ticket.VALID]
        shows = sorted({t.performance for t in tickets}, key=lambda p: p.starts_at)
        rows.append({"order": order, "url": order_url(order), "tickets": len(tickets), "shows": shows})
    context = {"rows": rows, "THEATER_NAME": settings.THEATER_NAME,
               "TEST_MARK": simulated.TEST_MARK if simulated.payments_are_simulated() else ""}
    subject = f"Your orders at {settings.THEATER_NAME}"
    if context["TEST_MARK"]:
        subject = f"[{context['TEST_MARK']}] {subject}"
    message = EmailMultiAlternatives(subject, render_to_string("sales/email/order_links.txt", context), settings.DEFAULT_FROM_EMAIL, [address])
    message.attach_alternative(render_to_string("sales/email/order_links.html", context), "text/html")
    return message


def queue_order_confirmation(order: Order) -> OutboxEmail | None:
    """Queue the confirmation in the caller's transaction (ops.outbox delivers it)."""
    return outbox.queue(OutboxEmail.ORDER_CONFIRMATION, order=order, send_now=order)


def send_order_confirmation(order_id: int, *, order: Order | None = None) -> bool:
    """Send the confirmation at once, bypassing the outbox (previews and tests of the
    email's content; patrons' emails go through `queue_order_confirmation`)."""
    message = order_confirmation_message(order or _load(order_id))
    if message is None:
        return False
    message.send()
    Order.objects.filter(pk=order_id).update(email_sent_at=timezone.now())
    return True


def resend_confirmation(order_id: int, *, actor: User) -> OutboxEmail:
    """Staff: send the order's confirmation again (audited). An unsent copy still waiting
    for its next try is made due now instead of queueing a second one."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)  # two clicks queue one email
        if order.status not in (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED):
            raise errors.conflict("order_not_paid", "This order was never paid, so there is no confirmation to send.")
        if not order.buyer_email or order.buyer_email.lower().endswith(".invalid"):  # a walk-up's placeholder
            raise errors.conflict("no_email_address", "This order has no email address, so the confirmation cannot be sent. Print the tickets instead.")
        row = order.emails.filter(kind=OutboxEmail.ORDER_CONFIRMATION, status=OutboxEmail.PENDING).order_by("pk").first()  # type: ignore[attr-defined]
        if row is not None:
            outbox.retry_now(row)
        else:
            row = outbox.queue(OutboxEmail.ORDER_CONFIRMATION, order=order)
        assert row is not None
        audit.record("order.confirmation_resent", actor=actor, obj=order, after={"email": row.pk, "kind": row.kind})
    row.refresh_from_db()
    return row
