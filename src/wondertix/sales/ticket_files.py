"""The files a patron keeps: the tickets as a PDF and the performances as a calendar file.

Both are rendered from the order as it is now (never stored), by `ticket_pdf` and
`ticket_calendar`; this module decides *which* tickets they show and what every ticket says,
so the email, the order page and the box office's print all agree. Only the valid tickets of
a paid order are keepable: a refunded or exchanged ticket would be refused at the door, so it
is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from wondertix.catalog import access
from wondertix.money import format_cents
from wondertix.payments import simulated
from wondertix.sales.models import Order, Ticket

KEEPABLE_ORDER_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED)
PT_PER_IN = 72.0
PAGE_SIZES = {"letter": (612.0, 792.0), "a4": (595.28, 841.89)}


@dataclass(frozen=True)
class TicketFace:
    """Everything printed on one ticket, already in the theater's words and zone."""

    code: str
    show: str
    starts_at: datetime  # aware, in the theater's zone
    when: str  # "Saturday, November 28, 2026 · 7:30 PM PST"
    price_type: str
    price: str
    order_reference: str
    buyer_name: str
    venue: str
    address: str
    accessibility: list[str]
    performance_note: str
    seat: str  # "Orchestra row A seat 5"; "" for general admission
    number: int  # this ticket's place among the order's tickets for the same performance
    of: int
    test_mark: str


def keepable_tickets(order: Order, tickets: list[Ticket] | None = None) -> list[Ticket]:
    """The order's tickets a patron can keep, in performance order ([] for an unpaid order).

    `tickets`: the order's tickets already in memory (with performance, event and price
    type), as the sale path hands them to the confirmation email; else they are read.
    """
    if order.status not in KEEPABLE_ORDER_STATUSES:
        return []
    if tickets is None:
        tickets = list(order.tickets.filter(status=Ticket.VALID).select_related("performance__event", "price_type", "seat__section"))
    valid = [t for t in tickets if t.status == Ticket.VALID]
    valid.sort(key=lambda t: (t.performance.starts_at, t.performance_id, t.pk))
    return valid


def ticket_pdf(order: Order, tickets: list[Ticket], *, layout: str = "page") -> bytes:
    """The tickets as a PDF, one page each (see `ticket_pdf` for the layouts)."""
    from wondertix.sales import ticket_pdf  # the PDF writer is loaded only where a PDF is made

    return ticket_pdf.render(faces(order, tickets), title=f"{settings.THEATER_NAME} tickets, order {order.reference}", layout=layout)


def calendar_file(order: Order, tickets: list[Ticket], *, order_url: str) -> bytes:
    from wondertix.sales import ticket_calendar

    return ticket_calendar.render(order, tickets, order_url=order_url)


def attachments(order: Order, tickets: list[Ticket], *, order_url: str) -> list[tuple[str, bytes, str]]:
    """(filename, content, MIME type) of what the confirmation email carries: the tickets and
    the calendar file, or nothing when the order has no ticket to keep."""
    keep = keepable_tickets(order, tickets)
    if not keep:
        return []
    return [
        (pdf_filename(order), ticket_pdf(order, keep), "application/pdf"),
        (calendar_filename(order), calendar_file(order, keep, order_url=order_url), "text/calendar"),
    ]


def local_when(starts_at: datetime) -> str:
    local = timezone.localtime(starts_at)
    return f"{local:%A, %B} {local.day}, {local.year} · {local.hour % 12 or 12}:{local:%M %p %Z}"


def _accessibility(order: Order) -> list[str]:
    notes = []
    requested = order.buyer_accommodation or (order.patron.accommodation if order.patron_id and order.patron else "")
    if requested:
        notes.append(f"Seating accommodation: {requested}")
    if settings.THEATER_ACCESSIBILITY:
        notes.append(settings.THEATER_ACCESSIBILITY)
    return notes


def faces(order: Order, tickets: list[Ticket]) -> list[TicketFace]:
    """What each ticket says, numbered within its performance ("Ticket 1 of 2")."""
    per_performance: dict[int, int] = {}
    for t in tickets:
        per_performance[t.performance_id] = per_performance.get(t.performance_id, 0) + 1
    seen: dict[int, int] = {}
    accessibility = _accessibility(order)
    # The performance's own accessibility (ASL-interpreted, captioned…), first on its tickets.
    tags = access.tags_by_performance({t.performance_id for t in tickets})
    mark = simulated.TEST_MARK if simulated.payments_are_simulated() else ""
    result = []
    for t in tickets:
        seen[t.performance_id] = seen.get(t.performance_id, 0) + 1
        perf = t.performance
        paid = t.price_cents - t.discount_cents
        result.append(TicketFace(
            code=t.code,
            show=perf.event.title,
            starts_at=timezone.localtime(perf.starts_at),
            when=local_when(perf.starts_at),
            price_type=t.price_type.name,
            price=format_cents(paid + t.fee_cents) if paid or t.fee_cents else "Complimentary",
            order_reference=order.reference,
            buyer_name=order.buyer_name,
            venue=settings.THEATER_VENUE,
            address=settings.THEATER_ADDRESS,
            accessibility=[f"Accessibility: {access.label(code)}" for code in tags[t.performance_id]] + accessibility,
            performance_note=perf.note,
            seat=t.place,
            number=seen[t.performance_id],
            of=per_performance[t.performance_id],
            test_mark=mark,
        ))
    return result


def stock_size() -> tuple[float, float]:
    """TICKET_STOCK_SIZE_IN ("8x3.25") in points, landscape."""
    raw = settings.TICKET_STOCK_SIZE_IN
    try:
        width, height = (float(part) for part in raw.lower().split("x"))
    except ValueError:
        raise ImproperlyConfigured(f"TICKET_STOCK_SIZE_IN must be WIDTHxHEIGHT in inches, like 8x3.25 (got {raw!r})") from None
    if not (1 <= height <= width <= 17):
        raise ImproperlyConfigured(f"TICKET_STOCK_SIZE_IN must be landscape, 1 to 17 inches a side (got {raw!r})")
    return width * PT_PER_IN, height * PT_PER_IN


def page_size() -> tuple[float, float]:
    try:
        return PAGE_SIZES[settings.TICKET_PAGE_SIZE.lower()]
    except KeyError:
        raise ImproperlyConfigured(f"TICKET_PAGE_SIZE must be one of {', '.join(PAGE_SIZES)} (got {settings.TICKET_PAGE_SIZE!r})") from None


def pdf_filename(order: Order) -> str:
    return f"tickets-{order.reference}.pdf"


def calendar_filename(order: Order) -> str:
    return f"{order.reference}.ics"
