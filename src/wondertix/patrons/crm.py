"""Contacts (CRM): search, history, edits and merging duplicates. Every write is audited."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.deletion import ProtectedError
from django.utils import timezone

from wondertix.ops import audit
from wondertix.patrons.models import Donation, Patron, Subscription
from wondertix.sales import errors
from wondertix.sales.models import Order, Ticket

EDITABLE = (
    "first_name", "last_name", "email", "phone", "address_line1", "address_line2", "city", "region",
    "postal_code", "country", "accommodation", "newsletter",
)
MAX_RESULTS = 50


def search(query: str, *, limit: int = MAX_RESULTS) -> QuerySet[Patron]:
    """Contacts matching every word of `query` in their name or email, or a phone number
    matching its digits whatever the punctuation ("555 010 2000" finds "(555) 010-2000")."""
    query = (query or "").strip()
    qs = Patron.objects.all()
    if not query:
        return qs.none()
    digits = re.sub(r"\D", "", query)
    cond = Q()
    for word in query.split():
        cond &= Q(first_name__icontains=word) | Q(last_name__icontains=word) | Q(email__icontains=word)
    if len(digits) >= 4 and not re.search(r"[A-Za-z@]", query):
        cond |= Q(phone__regex=r"\D*".join(digits))
    return qs.filter(cond).annotate(order_count=Count("orders", distinct=True)).order_by("last_name", "first_name", "pk")[:limit]


@dataclass
class History:
    patron: Patron
    orders: list[Order]
    tickets: list[Ticket]
    donations: list[Donation]
    subscriptions: list[Subscription]
    totals: dict[str, int] = field(default_factory=dict)
    possible_duplicates: list[Patron] = field(default_factory=list)


def history(patron_id: int) -> History:
    patron = Patron.objects.filter(pk=patron_id).first()
    if patron is None:
        raise errors.not_found("unknown_contact", "That contact does not exist.")
    orders: list[Order] = list(patron.orders.annotate(ticket_count=Count("tickets")).order_by("-created_at", "-id"))
    tickets = list(
        Ticket.objects.filter(order__patron=patron).select_related("performance__event", "price_type", "order").order_by("-performance__starts_at", "id")
    )
    donations = list(patron.donations.select_related("order").order_by("-created_at"))
    subs = list(patron.subscriptions.select_related("subscription_type__season").order_by("-created_at"))
    spent = patron.orders.filter(status__in=(Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED)).aggregate(t=Sum("total_cents"), r=Sum("refunded_cents"))
    given = patron.donations.aggregate(a=Sum("amount_cents"), r=Sum("refunded_cents"))
    dupes = Patron.objects.filter(
        Q(email__iexact=patron.email) | (Q(first_name__iexact=patron.first_name) & Q(last_name__iexact=patron.last_name))
    ).exclude(pk=patron.pk)[:10]
    return History(
        patron=patron, orders=orders, tickets=tickets, donations=donations, subscriptions=subs,
        totals={
            "spent_cents": (spent["t"] or 0) - (spent["r"] or 0),
            "donated_cents": (given["a"] or 0) - (given["r"] or 0),
            "tickets": sum(1 for t in tickets if t.status == Ticket.VALID),
            "attended": sum(1 for t in tickets if t.status == Ticket.VALID and t.checked_in_at),
        },
        possible_duplicates=list(dupes),
    )


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in EDITABLE:
        if name not in data:
            continue
        value = data[name]
        if name == "newsletter":
            out[name] = bool(value)
            continue
        value = (value or "").strip() if isinstance(value, str) or value is None else str(value)
        model_field: Any = Patron._meta.get_field(name)
        max_length = model_field.max_length
        if max_length and len(value) > max_length:
            raise errors.invalid("too_long", f"{str(model_field.verbose_name).capitalize()} can be at most {max_length} characters.", field=name)
        out[name] = value
    if "first_name" in out and not out["first_name"] or "last_name" in out and not out["last_name"]:
        raise errors.invalid("invalid_name", "A contact needs a first and a last name.", field="first_name")
    if "email" in out:
        try:
            validate_email(out["email"])
        except ValidationError:
            raise errors.invalid("invalid_email", f"“{out['email']}” is not a valid email address.", field="email") from None
        out["email"] = out["email"].lower()
    if out.get("phone") and sum(ch.isdigit() for ch in out["phone"]) < 7:
        raise errors.invalid("invalid_phone", "Please enter a phone number with at least 7 digits.", field="phone")
    if "country" in out and out["country"] and not re.fullmatch(r"[A-Za-z]{2}", out["country"]):
        raise errors.invalid("invalid_country", "Use a two-letter country code, e.g. US.", field="country")
    if out.get("country"):
        out["country"] = out["country"].upper()
    return out


def create_contact(data: dict[str, Any], *, actor: User | None) -> Patron:
    values = _clean({"first_name": "", "last_name": "", "email": ""} | data)
    with transaction.atomic():
        patron = Patron.objects.create(**values)
        audit.record("patron.created", actor=actor, obj=patron, after=values)
    return patron


def update_contact(patron_id: int, data: dict[str, Any], *, actor: User | None) -> Patron:
    """Edit a contact; the audit entry holds only the fields that changed, before and after."""
    values = _clean(data)
    with transaction.atomic():
        patron = Patron.objects.select_for_update().filter(pk=patron_id).first()
        if patron is None:
            raise errors.not_found("unknown_contact", "That contact does not exist.")
        before = {k: getattr(patron, k) for k, v in values.items() if getattr(patron, k) != v}
        if not before:
            return patron
        for k in before:
            setattr(patron, k, values[k])
        patron.save()
        audit.record("patron.updated", actor=actor, obj=patron, before=before, after={k: values[k] for k in before})
    return patron


def add_note(patron_id: int, text: str, *, actor: User | None) -> Patron:
    text = (text or "").strip()
    if not text:
        raise errors.invalid("empty_note", "Write something in the note.", field="note")
    if len(text) > 2000:
        raise errors.invalid("too_long", "Please keep a note under 2,000 characters.", field="note")
    with transaction.atomic():
        patron = Patron.objects.select_for_update().filter(pk=patron_id).first()
        if patron is None:
            raise errors.not_found("unknown_contact", "That contact does not exist.")
        who = actor.get_username() if actor else "system"
        stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M")
        before = patron.notes
        patron.notes = (f"{stamp} {who}: {text}\n" + patron.notes).strip() + "\n"
        patron.save(update_fields=["notes", "updated_at"])
        audit.record("patron.note_added", actor=actor, obj=patron, before={"notes": before}, after={"notes": patron.notes})
    return patron


FILL_IF_BLANK = ("phone", "address_line1", "address_line2", "city", "region", "postal_code", "accommodation")


@dataclass
class MergeResult:
    kept: Patron
    moved: dict[str, int]


def merge(keep_id: int, duplicate_id: int, *, actor: User | None) -> MergeResult:
    """Move everything that points at `duplicate` (orders, donations, subscriptions, …) to
    `keep`, fill the kept contact's blank fields from the duplicate, join their notes, and
    delete the duplicate — in one transaction, audited with both records as they were."""
    if keep_id == duplicate_id:
        raise errors.invalid("same_contact", "Choose two different contacts to merge.")
    with transaction.atomic():
        locked = {p.pk: p for p in Patron.objects.select_for_update().filter(pk__in=[keep_id, duplicate_id]).order_by("pk")}
        if len(locked) != 2:
            raise errors.not_found("unknown_contact", "One of those contacts does not exist.")
        keep, dup = locked[keep_id], locked[duplicate_id]
        snapshot = lambda p: {f: getattr(p, f) for f in (*EDITABLE, "notes")}  # noqa: E731
        before = {"kept": {"id": keep.pk, **snapshot(keep)}, "duplicate": {"id": dup.pk, **snapshot(dup)}}
        moved: dict[str, int] = {}
        # Every relation to Patron, including ones other apps add later, follows the merge.
        for rel in Patron._meta.related_objects:
            if rel.many_to_many or not (rel.one_to_many or rel.one_to_one):
                continue
            model = rel.related_model
            n = model._default_manager.filter(**{rel.field.name: dup}).update(**{rel.field.name: keep})  # type: ignore[union-attr]
            if n:
                moved[model._meta.label_lower] = n  # type: ignore[union-attr]
        for f in FILL_IF_BLANK:
            if not getattr(keep, f) and getattr(dup, f):
                setattr(keep, f, getattr(dup, f))
        keep.newsletter = keep.newsletter or dup.newsletter
        if dup.notes.strip():
            keep.notes = (keep.notes.rstrip() + f"\n[merged from contact {dup.pk}, {dup.email}]\n" + dup.notes.strip() + "\n").lstrip()
        keep.save()
        dup_pk = dup.pk
        try:
            dup.delete()
        except ProtectedError:
            # Something new pointed at the duplicate while we merged (a sale that just
            # committed): roll back and let staff try again, which then moves it too.
            raise errors.conflict("contact_busy", "The duplicate contact just got new activity; please try the merge again.") from None
        audit.record("patron.merged", actor=actor, obj=keep, before=before, after={"kept": {"id": keep.pk, **snapshot(keep)}, "deleted": dup_pk, "moved": moved})
    return MergeResult(keep, moved)
