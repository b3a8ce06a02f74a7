"""Staff pages for orders: find an order, refund, exchange, refund a canceled performance.

Thin: parse the form, call one service (sales.refunds / sales.exchanges), render. A refusal
re-renders the page with the service's message and its 4xx status; nothing was written.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, require_role
from wondertix.boxoffice.views.pos_card import reader_choice
from wondertix.catalog.models import Performance, PriceType
from wondertix.money import format_cents, parse_amount, parse_count, parse_id
from wondertix.ops import audit
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import errors, notifications, ticket_files
from wondertix.sales import staff_exchange_seats as exchange_seats
from wondertix.sales.cancellation import refund_performance_buyers
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets, quote_exchange
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange, Refund
from wondertix.sales.refunds import (
    DonationRefund,
    RefundRequest,
    TicketRefund,
    charges_left,
    refund_order,
    refundable_cents,
    ticket_refundable,
)
from wondertix.storefront import seatmap

staff_only = require_role(BOX_OFFICE, ADMIN)


def find_orders(query: str, limit: int = 50) -> list[Order]:
    """By reference (WT-000123 or 123), ticket code, or buyer name / email / phone."""
    query = (query or "").strip()
    qs = Order.objects.select_related("patron").order_by("-created_at", "-id")
    if not query:
        return list(qs.filter(status__in=(Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED))[:25])
    ref = re.fullmatch(r"(?i)(?:WT-?)?0*(\d{1,9})", query)
    cond = Q(buyer_name__icontains=query) | Q(buyer_email__icontains=query) | Q(buyer_phone__icontains=query)
    cond |= Q(patron__first_name__icontains=query) | Q(patron__last_name__icontains=query) | Q(patron__email__icontains=query)
    if ref:
        cond |= Q(pk=int(ref.group(1)))
    if re.fullmatch(r"[A-Za-z0-9]{8,24}", query):
        cond |= Q(tickets__code=query.upper())
    return list(qs.filter(cond).distinct()[:limit])


@staff_only
def order_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    return render(request, "sales/staff/orders.html", {"q": query, "orders": find_orders(query)})


def _order_context(order: Order) -> dict[str, Any]:
    tickets = list(order.tickets.select_related("performance__event", "price_type").order_by("performance__starts_at", "id"))
    left = ticket_refundable(tickets)
    for t in tickets:
        t.left_face = left[t.pk].face_cents  # type: ignore[attr-defined]
        t.left_fee = left[t.pk].fee_cents  # type: ignore[attr-defined]
    donations = list(order.donations.all())
    for d in donations:
        d.left = d.amount_cents - d.refunded_cents  # type: ignore[attr-defined]
    upcoming = (
        Performance.objects.filter(status=Performance.ON_SALE, starts_at__gt=timezone.now())
        .select_related("event").order_by("starts_at")[:200]
    )
    price_types = PriceType.objects.filter(active=True, event__performances__in=upcoming).select_related("event").distinct().order_by("event__title", "sort_order", "id")
    return {
        "order": order,
        "tickets": tickets,
        "donations": donations,
        "subscriptions": list(order.subscriptions.select_related("subscription_type")),
        "payments": list(order.payments.order_by("created_at", "id")),
        "charges": charges_left(order),
        "refunds": list(order.refunds.prefetch_related("items").select_related("created_by")),
        "exchanges": list(order.exchanges.select_related("to_performance__event", "created_by")),
        "refundable": refundable_cents(order),
        "emails": list(order.emails.order_by("created_at", "id")),  # type: ignore[attr-defined]
        "printable": len([t for t in tickets if t.status == Ticket.VALID]) if order.status in ticket_files.KEEPABLE_ORDER_STATUSES else 0,
        "can_resend": bool(order.buyer_email) and not order.buyer_email.endswith(".invalid") and order.status in (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED),
        "can_refund": order.status in (Order.PAID, Order.PARTIALLY_REFUNDED),
        "valid_tickets": [t for t in tickets if t.status == Ticket.VALID],
        "performances": upcoming,
        "price_types": price_types,
        "key": uuid.uuid4().hex,
        "Payment": Payment,
    }


def _render_order(request: HttpRequest, order: Order, *, status: int = 200, **extra: Any) -> HttpResponse:
    return render(request, "sales/staff/order.html", {**_order_context(order), **extra}, status=status)


@staff_only
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("patron"), pk=order_id)
    return _render_order(request, order)


def _cents(text: str, what: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise errors.invalid("invalid_amount", f"{what}: {exc}", field="amount_cents") from None


def _ids(values: list[str]) -> list[int]:
    ids = [parse_id(v) for v in values]
    if None in ids:
        raise errors.invalid("invalid_request", "The form was not sent correctly; reload the page and try again.")
    return [i for i in ids if i is not None]


def refund_request_from_post(post: Any) -> RefundRequest:
    ticket_ids = _ids(post.getlist("ticket"))
    donation_ids = _ids(post.getlist("donation"))
    return RefundRequest(
        tickets=[TicketRefund(t, _cents(post.get(f"amount_{t}", ""), "Ticket amount")) for t in ticket_ids],
        donations=[DonationRefund(d, _cents(post.get(f"donation_amount_{d}", ""), "Donation amount")) for d in donation_ids],
        subscriptions=_ids(post.getlist("subscription")),
        include_fees=post.get("include_fees") == "on",
        method=post.get("method", "original"),
        reason=post.get("reason", "").strip(),
    )


def _seat_ids(raw: str) -> list[int]:
    """A reserved target's seats: seat ids, comma- or space-separated, one per ticket."""
    ids = [parse_id(part) for part in raw.replace(",", " ").split()]
    if any(i is None for i in ids) or len(ids) > 500:
        raise errors.invalid("invalid_seats", "Seats are seat numbers from the seat map (ids), one per ticket, separated by commas.", field="seats")
    return [i for i in ids if i is not None]


@staff_only
@require_POST
def order_refund(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=order_id)
    try:
        refund_req = refund_request_from_post(request.POST)
        refund = refund_order(order.pk, refund_req, idempotency_key=request.POST.get("key", ""), actor=request.user)  # type: ignore[arg-type]
    except errors.SaleError as exc:
        return _render_order(request, order, status=exc.status, refund_error=exc.message, key=_retry_key(request.POST.get("key", "")))
    messages.success(request, f"Refunded {format_cents(refund.amount_cents)} ({refund.get_method_display().lower()}) on order {order.reference}.")
    return redirect(f"/staff/sales/orders/{order.pk}/")


def _retry_key(key: str) -> str:
    """The key the refund form is shown again with after a refusal. Sending the form again
    must not refund twice: while nothing was written, or the refund with this key is still
    pending (the provider did not answer), the same key comes back, so a retry resumes that
    refund. Only a refund the provider refused (failed, undone) lets the next try be new."""
    key = key.strip()
    if not key or len(key) > 100 or Refund.objects.filter(idempotency_key=key, status=Refund.FAILED).exists():
        return uuid.uuid4().hex
    return key


@staff_only
@require_GET
def order_tickets_print(request: HttpRequest, order_id: int) -> HttpResponse:
    """The order's valid tickets as a PDF to print: `?layout=stock` (the default) one per page
    of ticket stock for the ticket printer, `?layout=page` the patron's full pages. Audited:
    a printed ticket is an admission handed over the counter."""
    order = get_object_or_404(Order.objects.select_related("patron"), pk=order_id)
    layout = request.GET.get("layout", "stock")
    if layout not in ("stock", "page"):
        layout = "stock"
    tickets = ticket_files.keepable_tickets(order)
    if not tickets:
        return _render_order(request, order, status=409, print_error="This order has no valid tickets to print.")
    content = ticket_files.ticket_pdf(order, tickets, layout=layout)
    audit.record("order.tickets_printed", actor=request.user, obj=order, after={"layout": layout, "tickets": [t.pk for t in tickets]})  # type: ignore[arg-type]
    response = HttpResponse(content, content_type="application/pdf")
    # inline: opens in the browser's PDF viewer, whose Print sends it to the ticket printer.
    response["Content-Disposition"] = f'inline; filename="{ticket_files.pdf_filename(order)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@staff_only
@require_POST
def order_resend_confirmation(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=order_id)
    try:
        email = notifications.resend_confirmation(order.pk, actor=request.user)  # type: ignore[arg-type]
    except errors.SaleError as exc:
        return _render_order(request, order, status=exc.status, email_error=exc.message)
    if email.status == email.SENT:
        messages.success(request, f"Confirmation sent again to {email.recipient}.")
    else:
        messages.warning(request, f"The confirmation to {email.recipient} is queued; it is sent as soon as the mail server answers.")
    return redirect("staff-sales:order", order_id=order.pk)


def _exchange_request(post: Any) -> ExchangeRequest:
    to_perf = parse_id(post.get("to_performance", ""))
    if to_perf is None:
        raise errors.invalid("choose_performance", "Choose the performance to move the tickets to.", field="to_performance")
    pt_raw = post.get("price_type", "")
    card = None
    if post.get("card_number", "").strip():
        try:
            if not post.get("card_number", "").isascii():
                raise ValueError("not a card number")
            card = PaymentDetails(card_number=post.get("card_number", ""), exp_month=parse_count(post.get("exp_month"), maximum=12) or None,
                                  exp_year=parse_count(post.get("exp_year"), maximum=2200) or None, cvc=post.get("cvc", ""))
        except ValueError:
            raise errors.invalid("invalid_card", "Enter the card number and its expiry month and year in the digits 0–9.", field="card_number") from None
    return ExchangeRequest(
        ticket_ids=_ids(post.getlist("ticket")),
        to_performance_id=to_perf,
        price_type_id=parse_id(pt_raw),
        method=post.get("method", ""),
        card=card,
        reader_id=post.get("reader", "").strip()[:120],
        reason=post.get("reason", "").strip(),
        seat_ids=_seat_ids(post.get("seats", "")),
    )


def _exchange_preview(request: HttpRequest, order: Order, ex_req: ExchangeRequest) -> HttpResponse:
    """The price difference; for a reserved target first the seats, on the POS's seat picker
    (step `seats`: the ticked seats become one per ticket). A seat choice that does not fit is
    shown again on the seat page with the reason; other refusals go back to the order page."""
    on_seat_page = request.POST.get("step") == "seats"
    ticked: list[int] = []
    try:
        if on_seat_page:
            ticked = seatmap.parse_seat_ids(request.POST.getlist("seat"))
            ex_req.seat_ids = exchange_seats.assign(order, ex_req, ticked)
        quote = quote_exchange(order.pk, ex_req)
    except errors.SaleError as exc:
        first_visit = exc.code == "seats_required" and not ex_req.seat_ids
        context = exchange_seats.page(order, ex_req, ticked) if on_seat_page or first_visit else None
        if context is None:
            raise
        status = 200 if first_visit and not on_seat_page else exc.status
        return render(request, "sales/staff/exchange_seats.html", {**context, "seat_error": "" if status == 200 else exc.message}, status=status)
    return render(request, "sales/staff/exchange_confirm.html", {
        "order": order, "quote": quote, "request_data": ex_req, "difference": quote.difference_cents,
        "key": request.POST.get("key") or uuid.uuid4().hex,
        **(reader_choice(request) if quote.difference_cents > 0 else {}),
    })


@staff_only
@require_POST
def order_exchange(request: HttpRequest, order_id: int) -> HttpResponse:
    """Two steps: `preview` shows the price difference; `confirm` moves the tickets."""
    order = get_object_or_404(Order, pk=order_id)
    try:
        ex_req = _exchange_request(request.POST)
        if request.POST.get("step") != "confirm":
            return _exchange_preview(request, order, ex_req)
        exchange = exchange_tickets(order.pk, ex_req, idempotency_key=request.POST.get("key", ""), actor=request.user)  # type: ignore[arg-type]
        waiting = exchange.terminal_payments.exclude(status="canceled").first() if exchange.status == Exchange.PENDING else None
        if waiting is not None:  # the difference is being paid on the card reader
            return redirect("boxoffice:pos-card", payment_id=waiting.pk)
    except errors.SaleError as exc:
        # An exchange left pending (the provider did not answer) is finished by sending the
        # same exchange again with the same key: the page offers exactly that.
        key = request.POST.get("key", "").strip()
        pending = Exchange.objects.filter(order=order, idempotency_key=key, status=Exchange.PENDING).exists() if key else False
        retry = {"request": ex_req, "key": key} if pending and request.POST.get("step") == "confirm" else None
        return _render_order(request, order, status=exc.status, exchange_error=exc.message, exchange_retry=retry)
    diff = exchange.difference_cents
    money = "no price difference" if diff == 0 else (f"charged {format_cents(diff)}" if diff > 0 else f"refunded {format_cents(-diff)}")
    messages.success(request, f"Moved {exchange.items.count()} ticket(s) to {exchange.to_performance}; {money}.")
    return redirect(f"/staff/sales/orders/{order.pk}/")


@staff_only
@require_http_methods(["GET", "POST"])
def performance_refund_all(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)
    buyers = (
        Order.objects.filter(tickets__performance=perf, tickets__status=Ticket.VALID, status__in=(Order.PAID, Order.PARTIALLY_REFUNDED))
        .distinct().order_by("pk")
    )
    context: dict[str, Any] = {"performance": perf, "orders": list(buyers[:500]), "order_count": buyers.count(),
                               "tickets": Ticket.objects.filter(performance=perf, status=Ticket.VALID).count()}
    if request.method == "POST":
        try:
            result = refund_performance_buyers(perf.pk, method=request.POST.get("method", "original"), actor=request.user,  # type: ignore[arg-type]
                                               reason=request.POST.get("reason", ""))
        except errors.SaleError as exc:
            context["error"] = exc.message
            return render(request, "sales/staff/refund_all.html", context, status=exc.status)
        if result.failed:
            messages.warning(request, f"{len(result.failed)} order(s) could not be refunded: " + "; ".join(f"{Order(pk=k).reference}: {v}" for k, v in result.failed.items()))
        messages.success(request, f"Refunded {result.tickets} ticket(s) on {len(result.refunded_orders)} order(s), {format_cents(result.amount_cents)} in total.")
        return redirect(f"/staff/sales/performances/{perf.pk}/refund-all/")
    return render(request, "sales/staff/refund_all.html", context)

