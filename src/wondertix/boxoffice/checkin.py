"""Admitting patrons at the door. One transaction per scan, with the ticket row locked, so two
scanners reading the same ticket at once admit it exactly once."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from wondertix.catalog.models import Performance
from wondertix.ops import audit
from wondertix.sales import errors
from wondertix.sales.models import Ticket

_NOT_ADMITTED = {
    Ticket.REFUNDED: "This ticket was refunded and is no longer valid.",
    Ticket.EXCHANGED: "This ticket was exchanged for another performance and is no longer valid.",
    Ticket.CANCELED: "This ticket was canceled and is no longer valid.",
}


# A phone that lost Wi-Fi keeps its scans and sends them later with the time each was scanned.
# Older than a performance day is not a door scan any more; a phone clock a little ahead is.
MAX_SCAN_AGE = timedelta(hours=12)
CLOCK_SKEW = timedelta(minutes=2)


def parse_scanned_at(text: str | None) -> datetime | None:
    """The `scanned_at` form field (ISO 8601 with a UTC offset) → an aware datetime, or None when
    empty. Malformed or without an offset → refused (a time in no zone could be hours off)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        when = parse_datetime(text)
    except ValueError:
        when = None
    if when is None or timezone.is_naive(when):
        raise errors.invalid("scanned_at_invalid", "The scan time must be a date and time with a UTC offset.", field="scanned_at")
    return when


def _check_scanned_at(scanned_at: datetime | None, now: datetime) -> datetime:
    if scanned_at is None:
        return now
    if timezone.is_naive(scanned_at):
        raise errors.invalid("scanned_at_invalid", "The scan time must carry a UTC offset.", field="scanned_at")
    if scanned_at > now + CLOCK_SKEW:
        raise errors.invalid("scanned_at_future", "The scan time is in the future: check the phone's clock.", field="scanned_at")
    if scanned_at < now - MAX_SCAN_AGE:
        hours = int(MAX_SCAN_AGE.total_seconds() // 3600)
        raise errors.invalid("scanned_at_too_old", f"This scan is more than {hours} hours old and was not recorded.", field="scanned_at")
    return min(scanned_at, now)


def normalize_code(code: str) -> str:
    """What a scanner or a hurried usher typed → the stored code (upper case, no spaces or dashes).
    A scanned QR may also carry a full URL ending in the code."""
    text = (code or "").strip()
    if "/" in text:
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[\s\-]", "", text).upper()


def _when(ticket: Ticket) -> str:
    at = timezone.localtime(ticket.checked_in_at) if ticket.checked_in_at else None
    who = ticket.checked_in_by.get_username() if ticket.checked_in_by else "someone"
    return f"by {who} at {at:%-I:%M:%S %p on %b %-d}" if at else f"by {who}"


def _locked_ticket(code: str) -> Ticket:
    normalized = normalize_code(code)
    if not normalized:
        raise errors.invalid("code_required", "Enter or scan a ticket code.", field="code")
    # Not select_related("checked_in_by"): a scan that waited for this lock gets the ticket row
    # as the winner committed it, but PostgreSQL does not redo the join for the unlocked user
    # row (still NULL from before the wait), so the refusal would say "by someone". The user is
    # read after the lock instead, from the fresh checked_in_by_id.
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("performance__event", "price_type", "order", "seat__section")
        .filter(code=normalized)
        .first()
    )
    if ticket is None:
        raise errors.not_found("unknown_ticket", f"No ticket has the code {normalized}. Check the code or search the buyer's name.")
    return ticket


def check_in(code: str, performance: Performance, actor: User | None, scanned_at: datetime | None = None) -> Ticket:
    """Admit the ticket with this code to this performance, or say clearly why not.

    `scanned_at` is when a phone that was offline read the ticket (it syncs later): recorded as
    the check-in time when it is within MAX_SCAN_AGE and not in the future."""
    now = timezone.now()
    admitted_at = _check_scanned_at(scanned_at, now)
    with transaction.atomic():
        ticket = _locked_ticket(code)
        if ticket.performance_id != performance.pk:
            raise errors.invalid(
                "wrong_performance",
                f"This ticket is for another performance: {ticket.performance}.",
                ticket_performance_id=ticket.performance_id,
            )
        if ticket.status != Ticket.VALID:
            raise errors.invalid("ticket_not_valid", _NOT_ADMITTED.get(ticket.status, "This ticket is not valid."), ticket_status=ticket.status)
        if ticket.checked_in_at is not None:
            raise errors.conflict(
                "already_checked_in",
                f"Already checked in {_when(ticket)}.",
                checked_in_at=ticket.checked_in_at.isoformat(),
                checked_in_by=ticket.checked_in_by.get_username() if ticket.checked_in_by else "",
            )
        ticket.checked_in_at = admitted_at
        ticket.checked_in_by = actor
        ticket.save(update_fields=["checked_in_at", "checked_in_by"])
        after = {"checked_in_at": admitted_at.isoformat(), "performance_id": performance.pk}
        if scanned_at is not None:
            after["synced_at"] = now.isoformat()  # scanned offline, sent later
        audit.record("ticket.checked_in", actor=actor, obj=ticket, before={"checked_in_at": None}, after=after)
    return ticket


def undo_check_in(code: str, performance: Performance, actor: User | None) -> Ticket:
    """Take back a check-in made by mistake (wrong person admitted, scanned the wrong ticket)."""
    with transaction.atomic():
        ticket = _locked_ticket(code)
        if ticket.performance_id != performance.pk:
            raise errors.invalid("wrong_performance", f"This ticket is for another performance: {ticket.performance}.")
        if ticket.checked_in_at is None:
            raise errors.conflict("not_checked_in", "This ticket has not been checked in.")
        before = {"checked_in_at": ticket.checked_in_at.isoformat(),
                  "checked_in_by": ticket.checked_in_by.get_username() if ticket.checked_in_by else ""}
        ticket.checked_in_at = None
        ticket.checked_in_by = None
        ticket.save(update_fields=["checked_in_at", "checked_in_by"])
        audit.record("ticket.check_in_undone", actor=actor, obj=ticket, before=before, after={"checked_in_at": None})
    return ticket


def check_in_many(codes: list[str], performance: Performance, actor: User | None) -> tuple[list[Ticket], list[tuple[str, str]]]:
    """Admit a party found by name: each ticket in its own transaction; returns (admitted, refused)."""
    admitted: list[Ticket] = []
    refused: list[tuple[str, str]] = []
    for code in codes[:200]:
        try:
            admitted.append(check_in(code, performance, actor))
        except errors.SaleError as exc:
            refused.append((code, exc.message))
    return admitted, refused
