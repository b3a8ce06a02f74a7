"""The door list: who is coming to a performance, grouped by contact, with what they hold."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Q

from wondertix.catalog.models import Performance
from wondertix.sales.models import Ticket

# Walk-up sales at the window share one placeholder contact; their parties are kept per order.
WALK_UP_EMAIL = "walk-up@box-office.invalid"


@dataclass
class DoorTicket:
    code: str
    price_type: str
    checked_in: bool
    checked_in_at: object
    checked_in_by: str
    seat: str = ""  # "Orchestra row A seat 5"; "" for general admission


@dataclass
class Party:
    key: str
    name: str
    email: str
    phone: str
    patron_id: int | None
    order_ids: list[int] = field(default_factory=list)
    accommodations: list[str] = field(default_factory=list)
    tickets: list[DoorTicket] = field(default_factory=list)

    @property
    def counts(self) -> list[str]:
        """'3 x Adult', '1 x Student' — in the order the types were first sold."""
        counter = Counter(t.price_type for t in self.tickets)
        return [f"{n} x {name}" for name, n in counter.items()]

    @property
    def seats(self) -> list[str]:
        return [t.seat for t in self.tickets if t.seat]

    @property
    def checked_in(self) -> int:
        return sum(1 for t in self.tickets if t.checked_in)

    @property
    def total(self) -> int:
        return len(self.tickets)

    @property
    def codes_to_admit(self) -> list[str]:
        return [t.code for t in self.tickets if not t.checked_in]


def door_list(performance: Performance, query: str = "") -> list[Party]:
    """Valid tickets for the performance, grouped by contact (walk-ups by order), sorted by
    last name. `query` narrows by buyer name, email, phone or ticket code."""
    qs = (
        Ticket.objects.filter(performance=performance, status=Ticket.VALID)
        .select_related("order", "order__patron", "price_type", "checked_in_by", "seat__section")
        .order_by("price_type__sort_order", "price_type_id", "id")
    )
    query = (query or "").strip()
    if query:
        words = query.split()
        cond = Q()
        for word in words[:5]:
            cond &= (
                Q(order__buyer_name__icontains=word)
                | Q(order__patron__first_name__icontains=word)
                | Q(order__patron__last_name__icontains=word)
                | Q(order__buyer_email__icontains=word)
                | Q(order__patron__email__icontains=word)
                | Q(order__buyer_phone__icontains=word)
                | Q(code__iexact=word.replace("-", ""))
            )
        qs = qs.filter(cond)
    parties: dict[str, Party] = {}
    for t in qs:
        order = t.order
        patron = order.patron
        walk_up = patron is None or patron.email == WALK_UP_EMAIL
        key = f"order-{order.pk}" if walk_up else f"patron-{patron.pk}"  # type: ignore[union-attr]
        party = parties.get(key)
        if party is None:
            party = Party(
                key=key,
                name=(order.buyer_name if walk_up else patron.full_name) or "Walk-up",  # type: ignore[union-attr]
                email="" if walk_up else patron.email,  # type: ignore[union-attr]
                phone=(order.buyer_phone if walk_up else patron.phone or order.buyer_phone),  # type: ignore[union-attr]
                patron_id=None if walk_up else patron.pk,  # type: ignore[union-attr]
            )
            if not walk_up and patron.accommodation:  # type: ignore[union-attr]
                party.accommodations.append(patron.accommodation)  # type: ignore[union-attr]
            parties[key] = party
        if order.pk not in party.order_ids:
            party.order_ids.append(order.pk)
            if order.buyer_accommodation and order.buyer_accommodation not in party.accommodations:
                party.accommodations.append(order.buyer_accommodation)
        party.tickets.append(
            DoorTicket(
                code=t.code,
                price_type=t.price_type.name,
                checked_in=t.checked_in_at is not None,
                checked_in_at=t.checked_in_at,
                checked_in_by=t.checked_in_by.get_username() if t.checked_in_by else "",
                seat=t.place,
            )
        )
    return sorted(parties.values(), key=lambda p: (_sort_name(p.name), p.key))


def _sort_name(name: str) -> str:
    parts = name.split()
    return (parts[-1] + " " + " ".join(parts[:-1])).lower() if parts else ""


def door_csv(performance: Performance) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "Phone", "Tickets", "Ticket count", "Checked in", "Accommodations", "Orders", "Seats"])
    for party in door_list(performance):
        writer.writerow([
            _safe(party.name), _safe(party.email), _safe(party.phone), "; ".join(party.counts), party.total,
            party.checked_in, _safe("; ".join(party.accommodations)), " ".join(f"WT-{pk:06d}" for pk in party.order_ids),
            "; ".join(party.seats),
        ])
    return out.getvalue()


def _safe(value: str) -> str:
    """Keep spreadsheet programs from running a patron-typed value as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
