"""Emails to patrons. Sent after the order's transaction commits, never inside it.

The confirmation carries each ticket's code in plain text and a link to the order page,
where the QR codes are: mail clients show inline SVG poorly, and a code can always be read
out at the door.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from wondertix.money import format_cents
from wondertix.payments import simulated
from wondertix.sales.models import Order

log = logging.getLogger(__name__)


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
    }


def send_order_confirmation(order_id: int, *, order: Order | None = None) -> bool:
    # `order`: the instance the sale path just wrote, its tickets and donations already in
    # memory (sales.services), so the email need not read them back.
    if order is None:
        order = (
            Order.objects.select_related("patron", "discount_code")
            .prefetch_related("tickets__performance__event", "tickets__price_type", "donations")
            .get(pk=order_id)
        )
    if not order.buyer_email:
        return False
    context = _context(order)
    if context["tickets"]:
        subject = f"Your tickets — {settings.THEATER_NAME} order {order.reference}"
    else:
        subject = f"Thank you for your gift — {settings.THEATER_NAME} receipt {order.reference}"
    if context["TEST_MARK"]:
        subject = f"[{context['TEST_MARK']}] {subject}"
    text = render_to_string("sales/email/order_confirmation.txt", context)
    html = render_to_string("sales/email/order_confirmation.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [order.buyer_email])
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except Exception:  # a mail outage must not undo a paid order; staff can resend
        log.exception("order confirmation email failed", extra={"order": order.pk})
        return False
    Order.objects.filter(pk=order.pk).update(email_sent_at=timezone.now())
    return True
