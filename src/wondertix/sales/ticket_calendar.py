"""The order's performances as an iCalendar file (RFC 5545), one VEVENT per performance.

Times carry the theater's zone (TZID = TIME_ZONE) with a VTIMEZONE that `icalendar` derives
from the zone database for the dates concerned, so a calendar in another zone still shows the
right moment and the patron sees the theater's wall-clock time. Each event's UID is stable
(the order reference and the performance), so importing the file again updates the entry
instead of adding a second one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, Timezone

from wondertix.catalog.models import Performance
from wondertix.sales.models import Order, Ticket

# A show whose running time staff have not entered is put in the calendar as two hours.
DEFAULT_DURATION = timedelta(minutes=120)


def _group(tickets: list[Ticket]) -> list[tuple[Performance, list[Ticket]]]:
    groups: list[tuple[Performance, list[Ticket]]] = []
    for t in tickets:
        if not groups or groups[-1][0].pk != t.performance_id:
            groups.append((t.performance, []))
        groups[-1][1].append(t)
    return groups


def _counted(tickets: list[Ticket]) -> str:
    counts: dict[str, int] = {}
    for t in tickets:
        counts[t.price_type.name] = counts.get(t.price_type.name, 0) + 1
    return ", ".join(f"{n} × {name}" for name, n in counts.items())


def render(order: Order, tickets: list[Ticket], *, order_url: str, now: datetime | None = None) -> bytes:
    """The calendar for these tickets (the order's keepable ones, in performance order)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    host = urlsplit(settings.SITE_URL).hostname or "wondertix.invalid"
    stamp = (now or timezone.now()).astimezone(ZoneInfo("UTC"))
    groups = _group(tickets)
    cal = Calendar()
    cal.add("prodid", "-//WonderTix//Tickets//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if groups:
        days = [p.starts_at.astimezone(zone).date() for p, _ in groups]
        cal.add_component(Timezone.from_tzinfo(zone, first_date=min(days) - timedelta(days=1), last_date=max(days) + timedelta(days=2)))
    location = ", ".join(p for p in (settings.THEATER_VENUE, settings.THEATER_ADDRESS) if p)
    for perf, its_tickets in groups:
        start = perf.starts_at.astimezone(zone)
        minutes = perf.event.duration_minutes
        event = Event()
        event.add("uid", f"{order.reference}-performance-{perf.pk}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", start)
        event.add("dtend", start + (timedelta(minutes=minutes) if minutes else DEFAULT_DURATION))
        event.add("summary", f"{perf.event.title} — {settings.THEATER_NAME}")
        event.add("location", location)
        lines = [f"{len(its_tickets)} ticket{'s' if len(its_tickets) != 1 else ''}: {_counted(its_tickets)}", f"Order {order.reference}", f"Your tickets: {order_url}"]
        if perf.note:
            lines.append(perf.note)
        event.add("description", "\n".join(lines))
        event.add("url", order_url)
        event.add("status", "CANCELLED" if perf.status == Performance.CANCELED else "CONFIRMED")
        event.add("transp", "OPAQUE")
        cal.add_component(event)
    return bytes(cal.to_ical())
