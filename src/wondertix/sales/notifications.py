"""Emails to patrons. Sent after the order's transaction commits, never inside it."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from wondertix.sales.models import Order

log = logging.getLogger(__name__)


def send_order_confirmation(order_id: int) -> bool:
    order = (
        Order.objects.select_related("patron")
        .prefetch_related("tickets__performance__event", "tickets__price_type")
        .get(pk=order_id)
    )
    if not order.buyer_email:
        return False
    context = {
        "order": order,
        "tickets": list(order.tickets.all()),
        "order_url": f"{settings.SITE_URL.rstrip('/')}/orders/{order.token}/",
        "THEATER_NAME": settings.THEATER_NAME,
    }
    subject = f"Your tickets — {settings.THEATER_NAME} order {order.reference}"
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
