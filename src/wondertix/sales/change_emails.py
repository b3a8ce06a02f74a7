"""The emails a patron gets when something changes after a sale, and the receipts of a
subscription or a gift: every one plain text + HTML from templates (sales/email/), queued in
the transaction that makes the change (ops.outbox: retried until the mail server takes it).

- a refund, when it has gone out (refund_settlement._complete): `refund`;
- the cancellation of a performance, instead of the refund email when the refund is part of
  canceling it (Refund.canceled_performance): `performance_canceled`;
- an exchange, when it is done (sales.exchanges): `exchange`;
- a subscription sale and a gift: the order's confirmation, rendered with `subscription_sale`
  or `donation_receipt` (sales.notifications) — a ticket order with a gift carries the receipt.

Contexts are plain values (strings, lists of dicts), so staff can preview every template with
sample data (`PREVIEWS`) without writing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import dateformat, timezone

from wondertix.money import format_cents
from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.payments import simulated
from wondertix.sales.models import Order
from wondertix.sales.refund_models import Exchange, Refund

WHEN = "l, F j, Y · g:i A"


@dataclass
class Email:
    template: str  # sales/email/<template>.txt and .html
    subject: str
    context: dict[str, Any]

    def render(self) -> tuple[str, str]:
        return (render_to_string(f"sales/email/{self.template}.txt", self.context),
                render_to_string(f"sales/email/{self.template}.html", self.context))

    def message(self, to: str) -> EmailMultiAlternatives:
        text, html = self.render()
        message = EmailMultiAlternatives(self.subject, text, settings.DEFAULT_FROM_EMAIL, [to])
        message.attach_alternative(html, "text/html")
        return message


def when(moment: datetime | None) -> str:
    return dateformat.format(timezone.localtime(moment), WHEN) if moment else ""


def _common(order: Order, *, sample: bool = False) -> dict[str, Any]:
    first = (order.patron.first_name if order.patron_id and order.patron else "") or (order.buyer_name.split(" ")[0] if order.buyer_name else "")
    mark = simulated.TEST_MARK if simulated.payments_are_simulated() else ""
    return {
        "THEATER_NAME": settings.THEATER_NAME,
        "TEST_MARK": mark,
        "first_name": first or "there",
        "reference": order.reference,
        "order_url": f"{settings.SITE_URL.rstrip('/')}/orders/{order.token}/",
        "site_url": settings.SITE_URL.rstrip("/") + "/",
        "sample": sample,
    }


def _subject(text: str, context: dict[str, Any]) -> str:
    return f"[{context['TEST_MARK']}] {text}" if context["TEST_MARK"] else text


def _how(refund: Refund) -> str:
    """Where the money went, in the patron's words."""
    if refund.amount_cents == 0:
        return "No payment was taken for these tickets, so no money moves."
    providers = set(refund.sources.values_list("payment__provider", flat=True))
    if refund.method == Refund.CASH or providers <= {"cash"}:
        return "It is paid back in cash at the box office."
    return "It goes back to the card you paid with; your bank may take 5–10 business days to show it."


def _refund_lines(refund: Refund) -> list[str]:
    lines = []
    for item in refund.items.select_related("ticket__performance__event", "ticket__price_type", "ticket__seat__section", "subscription__subscription_type"):
        if item.ticket is not None:
            t = item.ticket
            fee = f" + {format_cents(item.fee_cents)} fee" if item.fee_cents else ""
            seat = f"{t.place}, " if t.seat_id else ""
            lines.append(f"{t.performance.event.title}, {when(t.performance.starts_at)} — {seat}{t.price_type.name}, ticket {t.code}: "
                         f"{format_cents(item.amount_cents)}{fee}")
        elif item.donation_id is not None:
            lines.append(f"Your gift: {format_cents(item.amount_cents)}")
        elif item.subscription is not None:
            lines.append(f"Subscription “{item.subscription.subscription_type.name}”: {format_cents(item.amount_cents)}")
    return lines


# ---------------------------------------------------------------------------- queueing


def queue_refund_email(refund: Refund, order: Order) -> OutboxEmail | None:
    """In the transaction that completes the refund: one email per refund, exactly once."""
    kind = OutboxEmail.PERFORMANCE_CANCELED if refund.canceled_performance_id else OutboxEmail.REFUND
    return outbox.queue(kind, order=order, refund=refund)


def queue_exchange_email(exchange: Exchange, order: Order) -> OutboxEmail | None:
    """In the transaction that completes the exchange."""
    return outbox.queue(OutboxEmail.EXCHANGE, order=order, exchange=exchange)


# ---------------------------------------------------------------------------- what each says


def refund_email(refund: Refund) -> Email:
    order = refund.order
    context = _common(order) | {
        "amount": format_cents(refund.amount_cents), "how": _how(refund), "lines": _refund_lines(refund),
    }
    return Email("refund", _subject(f"Your refund of {context['amount']} — {settings.THEATER_NAME} order {order.reference}", context), context)


def cancellation_email(refund: Refund) -> Email:
    order, perf = refund.order, refund.canceled_performance
    assert perf is not None
    context = _common(order) | {
        "show": perf.event.title, "when": when(perf.starts_at), "amount": format_cents(refund.amount_cents),
        "how": _how(refund), "lines": _refund_lines(refund),
    }
    return Email("performance_canceled", _subject(f"Canceled: {perf.event.title}, {when(perf.starts_at)} — your refund", context), context)


def exchange_email(exchange: Exchange) -> Email:
    order = exchange.order
    moved = [
        {"old": f"{i.old_ticket.performance.event.title}, {when(i.old_ticket.performance.starts_at)} — {i.old_ticket.place + ', ' if i.old_ticket.seat_id else ''}{i.old_ticket.price_type.name} ({i.old_ticket.code})",
         "new": f"{i.new_ticket.performance.event.title}, {when(i.new_ticket.performance.starts_at)} — {i.new_ticket.place + ', ' if i.new_ticket.seat_id else ''}{i.new_ticket.price_type.name}",
         "code": i.new_ticket.code}
        for i in exchange.items.select_related("old_ticket__performance__event", "old_ticket__price_type", "old_ticket__seat__section",
                                               "new_ticket__performance__event", "new_ticket__price_type", "new_ticket__seat__section")
    ]
    diff = exchange.difference_cents
    if diff > 0:
        money = f"You paid the difference of {format_cents(diff)}."
    elif diff < 0:
        money = f"The difference of {format_cents(-diff)} is refunded " + ("in cash." if exchange.method == "cash" else "to the card you paid with.")
    else:
        money = "There was no price difference to pay." if exchange.method != "waive" else "We waived the price difference."
    perf = exchange.to_performance
    failed = exchange.status == Exchange.FAILED
    if failed:  # paid on the processor's page after its seats were gone: refunded, nothing moved
        money = f"The {format_cents(diff)} you paid was refunded to your card."
    context = _common(order) | {"show": perf.event.title, "when": when(perf.starts_at), "moved": moved, "money": money, "failed": failed}
    if failed:
        return Email("exchange", _subject(f"Your exchange did not go through — order {order.reference}", context), context)
    return Email("exchange", _subject(f"Your new tickets: {perf.event.title}, {when(perf.starts_at)} — order {order.reference}", context), context)


def receipt(order: Order, gifts: list[Any]) -> dict[str, Any]:
    """The donation receipt's facts: what the tax authority wants on it, from settings."""
    return {
        "gifts": [{"amount": format_cents(g.amount_cents), "anonymous": g.anonymous} for g in gifts],
        "total": format_cents(sum(g.amount_cents for g in gifts)),
        "date": dateformat.format(timezone.localtime(order.paid_at or order.created_at or timezone.now()), "F j, Y"),
        "legal_name": settings.THEATER_LEGAL_NAME,
        "tax_id": settings.THEATER_TAX_ID,
        "statement": settings.DONATION_TAX_STATEMENT,
    }


def donation_email(order: Order, gifts: list[Any]) -> Email:
    context = _common(order) | {"receipt": receipt(order, gifts)}
    return Email("donation_receipt", _subject(f"Thank you for your gift — {settings.THEATER_NAME} receipt {order.reference}", context), context)


def subscription_email(order: Order, subscriptions: list[Any]) -> Email:
    subs = [{
        "name": s.subscription_type.name, "season": s.subscription_type.season.name,
        "dates": f"{dateformat.format(s.subscription_type.season.starts_on, 'F j, Y')} – {dateformat.format(s.subscription_type.season.ends_on, 'F j, Y')}",
        "tickets": s.tickets_included, "price": format_cents(s.price_cents),
    } for s in subscriptions]
    context = _common(order) | {"subscriptions": subs, "total": format_cents(order.total_cents)}
    name = subs[0]["name"] if subs else "subscription"
    return Email("subscription_sale", _subject(f"Your {name} — {settings.THEATER_NAME} order {order.reference}", context), context)


# ---------------------------------------------------------------------------- outbox renderers


def refund_message(row: OutboxEmail) -> EmailMultiAlternatives | None:
    refund = Refund.objects.select_related("order__patron").filter(pk=row.refund_id).first() if row.refund_id else None
    return refund_email(refund).message(row.recipient) if refund is not None else None


def cancellation_message(row: OutboxEmail) -> EmailMultiAlternatives | None:
    refund = (Refund.objects.select_related("order__patron", "canceled_performance__event").filter(pk=row.refund_id).first()
              if row.refund_id else None)
    if refund is None:
        return None
    return (cancellation_email(refund) if refund.canceled_performance_id else refund_email(refund)).message(row.recipient)


def exchange_message(row: OutboxEmail) -> EmailMultiAlternatives | None:
    exchange = (Exchange.objects.select_related("order__patron", "to_performance__event").filter(pk=row.exchange_id).first()
                if row.exchange_id else None)
    return exchange_email(exchange).message(row.recipient) if exchange is not None else None
