"""Staff API routes (token-authenticated; see wondertix.api.auth): for door scanners.

The same services as the staff pages: boxoffice.door.door_list and boxoffice.checkin.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Path, Router, Schema

from wondertix.api.auth import StaffToken
from wondertix.api.schemas import MAX_ID, answers
from wondertix.boxoffice import checkin
from wondertix.boxoffice.door import door_list
from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, USHER, roles_of
from wondertix.catalog.models import Performance

router = Router(tags=["staff"])
door_staff = StaffToken(USHER, BOX_OFFICE, ADMIN)


class WhoAmIOut(Schema):
    username: str
    roles: list[str]


@router.get("/whoami", response={200: WhoAmIOut, **answers(401, 503)}, auth=StaffToken(), summary="The staff user a token belongs to")
def whoami(request: HttpRequest) -> dict:
    return {"username": request.user.get_username(), "roles": sorted(roles_of(request.user))}


class DoorTicketOut(Schema):
    code: str
    price_type: str
    checked_in: bool
    checked_in_at: datetime | None
    checked_in_by: str
    seat: str = Field("", description="Reserved seating: \"Orchestra row A seat 5\"; empty for general admission")


class DoorPartyOut(Schema):
    name: str
    email: str
    phone: str
    patron_id: int | None
    counts: list[str]
    accommodations: list[str]
    tickets: list[DoorTicketOut]
    checked_in: int
    total: int


class DoorListOut(Schema):
    performance_id: int
    event: str
    starts_at: datetime
    sold: int
    checked_in: int
    parties: list[DoorPartyOut]


class CheckInIn(Schema):
    code: str = Field(..., max_length=64, pattern=r"^[^\x00]*$", description="The ticket's code (from its QR)")
    performance_id: int = Field(..., ge=1, le=MAX_ID, strict=True)


class CheckInScanIn(CheckInIn):
    scanned_at: datetime | None = Field(
        None, description="When the ticket was scanned, for a scanner that was offline and sends its queue later "
        f"(ISO 8601 with a UTC offset; at most {checkin.MAX_SCAN_AGE.total_seconds() / 3600:g} hours old, not in the future). "
        "Recorded as the check-in time.")


class CheckInOut(Schema):
    code: str
    performance_id: int
    price_type: str
    seat: str = Field("", description="Reserved seating: \"Orchestra row A seat 5\"; empty for general admission")
    buyer_name: str
    accommodation: str
    checked_in: bool
    checked_in_at: datetime | None
    checked_in_by: str


def _perf(performance_id: int) -> Performance:
    return get_object_or_404(Performance.objects.select_related("event"), pk=performance_id)


@router.get("/door/{performance_id}", response={200: DoorListOut, **answers(401, 404, 422, 503)}, auth=door_staff,
            summary="Door list: buyers grouped by contact, with ticket codes and check-in state")
def door(request: HttpRequest, performance_id: int = Path(..., ge=1, le=MAX_ID), q: str = "") -> dict:
    perf = _perf(performance_id)
    parties = door_list(perf, q)
    return {
        "performance_id": perf.pk, "event": perf.event.title, "starts_at": perf.starts_at,
        "sold": sum(p.total for p in parties), "checked_in": sum(p.checked_in for p in parties),
        "parties": [
            {"name": p.name, "email": p.email, "phone": p.phone, "patron_id": p.patron_id, "counts": p.counts,
             "accommodations": p.accommodations, "tickets": [t.__dict__ for t in p.tickets],
             "checked_in": p.checked_in, "total": p.total}
            for p in parties
        ],
    }


def _ticket_out(ticket, performance_id: int) -> dict:  # noqa: ANN001
    order = ticket.order
    return {
        "code": ticket.code, "performance_id": performance_id, "price_type": ticket.price_type.name,
        "seat": ticket.place, "buyer_name": order.buyer_name,
        "accommodation": order.buyer_accommodation or (order.patron.accommodation if order.patron else ""),
        "checked_in": ticket.checked_in_at is not None, "checked_in_at": ticket.checked_in_at,
        "checked_in_by": ticket.checked_in_by.get_username() if ticket.checked_in_by else "",
    }


@router.post("/checkin", response={200: CheckInOut, **answers(400, 401, 404, 409, 422, 503)}, auth=door_staff,
             summary="Check a ticket in (the code from its QR). 409 when already checked in (says by whom and when)")
def check_in(request: HttpRequest, payload: CheckInScanIn) -> dict:
    perf = _perf(payload.performance_id)
    ticket = checkin.check_in(payload.code, perf, request.user, scanned_at=payload.scanned_at)  # type: ignore[arg-type]
    return _ticket_out(ticket, perf.pk)


@router.post("/checkin/undo", response={200: CheckInOut, **answers(400, 401, 404, 409, 422, 503)}, auth=door_staff,
             summary="Undo a check-in")
def undo_check_in(request: HttpRequest, payload: CheckInIn) -> dict:
    perf = _perf(payload.performance_id)
    ticket = checkin.undo_check_in(payload.code, perf, request.user)  # type: ignore[arg-type]
    return _ticket_out(ticket, perf.pk)
