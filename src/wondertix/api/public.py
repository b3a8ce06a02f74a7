"""Public API v1: events, availability, holds and orders. Thin: parse, call a service, render."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Header, Path, Query, Router

from wondertix.api import schemas as s
from wondertix.catalog import access as access_tags
from wondertix.catalog import performance_prices
from wondertix.catalog import services as catalog
from wondertix.catalog.models import Event, Performance, Seat
from wondertix.ops.middleware import client_of
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, inventory, seats, services
from wondertix.sales.models import Hold, Order

router = Router(tags=["public"])

_TOKEN = re.compile(s.TOKEN)
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")
_KEY = re.compile(r"^[\x21-\x7e]{8,100}$")  # printable ASCII, no spaces
# django-ninja validates path ids before the view runs: keep them within the database range.
PerformanceId = Path(..., ge=1, le=s.MAX_ID, description="A performance id")


IdempotencyKey = Header(None, alias="Idempotency-Key", description="Makes retries safe (8–100 printable ASCII characters)")


def _checked_key(key: str | None) -> str | None:
    if key is not None and not _KEY.fullmatch(key):
        raise errors.invalid("invalid_idempotency_key", "Idempotency-Key must be 8 to 100 printable characters without spaces (a UUID is ideal).")
    return key


def _hold_not_found() -> errors.SaleError:
    return errors.not_found("hold_not_found", "No hold has that token. It may have been mistyped.")


def _perf_out(state: catalog.PerformanceState) -> dict:
    p = state.performance
    return {
        "id": p.pk,
        "event_id": p.event_id,
        "event_title": p.event.title,
        "starts_at": p.starts_at,
        "on_sale_from": p.on_sale_from,
        "on_sale_until": p.on_sale_until,
        "status": state.status,
        "capacity": p.capacity,
        "available": state.available,
        "access": [{"code": c, "label": label} for c, label in getattr(p, "access", [])],
    }


def _event_out(event: Event, states: dict[int, catalog.PerformanceState]) -> dict:
    return {
        "id": event.pk,
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "image_url": event.image_url,
        "image_alt": event.image_alt if event.image_url else "",
        "season": event.season.name if event.season else None,
        "performances": [_perf_out(states[p.pk]) for p in event.upcoming],  # type: ignore[attr-defined]
    }


def _events_out(events: list[Event], only_access: str | None = None) -> list[dict]:
    perfs = [p for e in events for p in e.upcoming]  # type: ignore[attr-defined]
    access_tags.annotate(perfs)
    if only_access:
        for e in events:
            e.upcoming = [p for p in e.upcoming if any(c == only_access for c, _ in p.access)]  # type: ignore[attr-defined]
        events = [e for e in events if e.upcoming]  # type: ignore[attr-defined]
        perfs = [p for e in events for p in e.upcoming]  # type: ignore[attr-defined]
    # One availability read for every listed performance, not one per event.
    states = {st.performance.pk: st for st in catalog.states_for(perfs)}
    return [_event_out(e, states) for e in events]


@router.get("/events", response={200: list[s.EventOut], **s.answers(422, 503)}, summary="Events on sale, with their upcoming performances")
def list_events(
    request: HttpRequest,
    access: str | None = Query(None, max_length=40, description="Only performances with this accessibility tag (asl, captioned, audio_described, relaxed)"),
) -> list[dict]:
    return _events_out(list(catalog.public_events()), access_tags.parse_filter(access))


@router.get("/events/{slug}", response={200: s.EventOut, **s.answers(404, 503)}, summary="One event by its slug")
def get_event(request: HttpRequest, slug: str) -> dict:
    event = Event.objects.select_related("season").filter(slug=slug, active=True).first() if _SLUG.fullmatch(slug) else None
    if event is None:
        raise errors.not_found("unknown_event", "There is no event at that address.")
    event.upcoming = list(  # type: ignore[attr-defined]
        event.performances.select_related("event").filter(starts_at__gt=timezone.now()).order_by("starts_at", "pk")
    )
    return _events_out([event])[0]


@router.get(
    "/performances/{performance_id}",
    response={200: s.PerformanceDetailOut, **s.answers(404, 422, 503)},
    summary="A performance, its availability and price types",
)
def get_performance(request: HttpRequest, performance_id: int = PerformanceId) -> dict:
    perf = catalog.get_public_performance(performance_id)
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    state = catalog.states_for([perf])[0]
    pts = catalog.public_price_types(perf)
    left = inventory.price_type_availability(perf, pts)
    own = performance_prices.overrides_for(((perf.pk, pt.pk) for pt in pts), {perf.pk: perf})
    access_tags.annotate([perf])
    out = _perf_out(state)
    out["price_types"] = [
        {
            "id": pt.pk,
            "name": pt.name,
            "description": pt.description,
            "price_cents": pt.price_cents,
            "fee_cents": pt.fee_cents,
            "pay_what_you_can": pt.pay_what_you_can,
            "min_price_cents": pt.min_price_cents,
            "max_price_cents": pt.max_price_cents,
            "limit_per_performance": pt.limit_per_performance,
            "available": None if left[pt.pk] is None else min(left[pt.pk] or 0, state.available),
            "performance_price": (perf.pk, pt.pk) in own,
        }
        for pt in pts
    ]
    return out


def _lines(lines: list[s.LineIn]) -> list[services.LineRequest]:
    return [services.LineRequest(x.performance_id, x.price_type_id, x.quantity, x.unit_price_cents, tuple(x.seat_ids)) for x in lines]


def _hold_status(hold: Hold, lines: list) -> str:
    if hold.consumed_at is not None:
        return "checked_out"
    if not lines:
        return "released"
    return "expired" if hold.is_expired() else "active"


def _hold_out(hold: Hold) -> dict:
    lines = list(hold.lines.all())
    held = seats.hold_seat_ids(hold.pk) if lines else {}
    return {
        "token": hold.token,
        "status": _hold_status(hold, lines),
        "expires_at": hold.expires_at,
        "lines": [
            {"performance_id": hl.performance_id, "price_type_id": hl.price_type_id, "quantity": hl.quantity, "unit_price_cents": hl.unit_price_cents,
             "seat_ids": list(held.get(hl.pk, ()))}
            for hl in lines
        ],
    }


def _find_hold(token: str) -> Hold:
    if not _TOKEN.fullmatch(token):
        raise _hold_not_found()
    hold = Hold.objects.filter(token=token).first()
    if hold is None:
        raise _hold_not_found()
    return hold


@router.post(
    "/holds",
    response={201: s.HoldOut, **s.answers(400, 404, 409, 422, 429, 503)},
    summary="Hold seats (a cart) for a limited time",
    description=(
        "Seats held count against capacity until `expires_at` (15 minutes by default). "
        "Refusals: `invalid_quantity`, `invalid_price_type`, `price_mismatch`, `invalid_price` (422); "
        "`unknown_performance` (404); `performance_past`, `not_on_sale_yet`, `performance_canceled` (422); "
        "`sold_out` (409, with `details.available`).\n\n"
        "Reserved seating: name the seats in `seat_ids` (one per ticket). `seat_taken` (409, with "
        "`details.seat_ids`): another buyer has one of them; `seats_required`, `invalid_seats`, "
        "`seat_not_for_sale` (422).\n\n"
        "Send an `Idempotency-Key` header (8–100 printable characters, e.g. a UUID) to make a "
        "retry safe: the same key with the same lines returns the first hold (same token, same "
        "body; 201) and holds no more seats; the same key with different lines is refused with "
        "`idempotency_key_reused` (422); a malformed key with `invalid_idempotency_key` (422)."
    ),
)
def create_hold(
    request: HttpRequest,
    payload: s.HoldIn,
    idempotency_key: str | None = IdempotencyKey,
) -> tuple[int, dict]:
    hold = services.create_hold(_lines(payload.lines), idempotency_key=_checked_key(idempotency_key), client=client_of(request))
    return 201, _hold_out(hold)


@router.get(
    "/holds/{token}",
    response={200: s.HoldOut, **s.answers(404, 503)},
    summary="Read a hold",
    description="`status` says whether the seats are still held (`active`), or the hold `expired`, was `released` or `checked_out`.",
)
def get_hold(request: HttpRequest, token: str) -> dict:
    return _hold_out(_find_hold(token))


@router.delete(
    "/holds/{token}",
    response={204: None, **s.answers(404, 409, 503)},
    summary="Release a hold's seats",
    description=(
        "Gives the seats back at once. Releasing a hold twice is fine (204). A hold that was "
        "checked out (`cart_already_checked_out`) or whose payment is in progress "
        "(`payment_in_progress`) cannot be released (409)."
    ),
)
def delete_hold(request: HttpRequest, token: str) -> tuple[int, None]:
    hold = _find_hold(token)
    if hold.consumed_at is not None:
        raise errors.conflict("cart_already_checked_out", "This cart has already been checked out; its tickets belong to an order.")
    if hold.orders.filter(status=Order.PENDING).exists():
        raise errors.conflict("payment_in_progress", "A payment for this cart is in progress; its seats stay held until it ends.")
    services.release_hold(token)
    return 204, None


def _seat_out(seat: Seat) -> dict:
    return {"id": seat.pk, "section": seat.section.name, "row": seat.row, "label": seat.label}


def order_out(order: Order) -> dict:
    base = settings.SITE_URL.rstrip("/")
    # A just-placed order may carry the tickets as written (with performance, event and price
    # type loaded); a replay or a read loads them. Both render the same body.
    issued = getattr(order, "issued_tickets", None)
    tickets = (
        sorted(issued, key=lambda t: t.pk)
        if issued is not None
        else order.tickets.select_related("performance__event", "price_type", "seat__section").order_by("id")
    )
    return {
        "token": order.token,
        "reference": order.reference,
        "status": order.status,
        "buyer_name": order.buyer_name,
        "buyer_email": order.buyer_email,
        "subtotal_cents": order.subtotal_cents,
        "fees_cents": order.fees_cents,
        "discount_cents": order.discount_cents,
        "donation_cents": order.donation_cents,
        "total_cents": order.total_cents,
        "refunded_cents": order.refunded_cents,
        "created_at": order.created_at,
        "url": f"{base}/orders/{order.token}/",
        "tickets": [
            {
                "code": t.code,
                "performance_id": t.performance_id,
                "event_title": t.performance.event.title,
                "starts_at": t.performance.starts_at,
                "price_type": t.price_type.name,
                "price_cents": t.price_cents,
                "fee_cents": t.fee_cents,
                "discount_cents": t.discount_cents,
                "status": t.status,
                "checked_in_at": t.checked_in_at,
                "qr_url": f"{base}/tickets/{t.code}/qr.svg",
                "seat": _seat_out(t.seat) if t.seat is not None else None,
            }
            for t in tickets
        ],
    }


@router.post(
    "/orders",
    response={201: s.OrderOut, 202: s.OrderOut, **s.answers(400, 402, 404, 409, 422, 429, 503)},
    summary="Create an order and pay it in one call",
    description=(
        "Sells `lines` (or the seats of `hold_token`) and charges the card with the environment's "
        "synchronous provider (`test`). Send an `Idempotency-Key` header (8–100 printable "
        "characters, e.g. a UUID): a retry with the same key returns the first order (same body) "
        "and never sells twice; the same key with a different request is refused with "
        "`idempotency_key_reused` (422).\n\n"
        "Refusals write nothing: `invalid_quantity`, `invalid_email`, `invalid_name`, "
        "`price_mismatch`, `invalid_price_type`, `performance_past`, `not_on_sale_yet`, "
        "`discount_unknown`, `discount_expired`, `discount_minimum_not_met`, `invalid_request` (422); "
        "`unknown_performance` (404); `sold_out`, `hold_expired`, `cart_already_checked_out`, "
        "`discount_exhausted`, `seat_taken` (409); `payment_declined`, `invalid_card`, `card_required` (402). "
        "Reserved seating: each line names its seats in `seat_ids` (`seats_required`, `invalid_seats`, "
        "`seat_not_for_sale`: 422). "
        "Where payments go through Stripe Checkout the card is paid on Stripe's page: send no "
        "`card` (`card_not_accepted`, 422); the answer is **202** with the order `pending` and "
        "its `payment_url` to send the patron to; the order becomes `paid` when Stripe confirms "
        "it (poll `GET /orders/{token}`). A retry with the same key returns the same order and page."
    ),
)
def create_order(
    request: HttpRequest,
    payload: s.OrderIn,
    idempotency_key: str | None = IdempotencyKey,
) -> tuple[int, dict]:
    idempotency_key = _checked_key(idempotency_key)
    if payload.hold_token and payload.lines:
        raise errors.invalid("invalid_request", "Send either lines or hold_token, not both.")
    if not get_provider().synchronous:
        return 202, _pending_order(request, payload, idempotency_key)
    card = payload.card
    details = services.CheckoutDetails(
        buyer=services.Buyer(**payload.buyer.dict()),
        donation_cents=payload.donation_cents,
        donation_anonymous=payload.donation_anonymous,
        discount_code=payload.discount_code,
        payment=PaymentDetails(card_number=card.number, exp_month=card.exp_month, exp_year=card.exp_year, cvc=card.cvc) if card else PaymentDetails(),
    )
    if payload.hold_token:
        # A retry of a hold checkout that did commit must get its order back, not
        # `cart_already_checked_out`: look the key up before the hold's state is checked.
        replay = services._existing_for_key(idempotency_key, services.request_fingerprint({"hold": payload.hold_token}))
        if replay is not None:
            return 201, order_out(replay)
        order = services.checkout(payload.hold_token, details, channel=Order.API, idempotency_key=idempotency_key)
    else:
        order = services.sell(_lines(payload.lines), details, channel=Order.API, idempotency_key=idempotency_key)
    return 201, order_out(order)


def _pending_order(request: HttpRequest, payload: s.OrderIn, idempotency_key: str | None) -> dict:
    """Where the card is taken on the provider's page (Stripe Checkout): hold the seats (the
    same hold on a retry with the same key), write the order pending, and answer with the page
    to send the patron to. The webhook completes the order, as on the storefront."""
    if payload.card:
        raise errors.invalid(
            "card_not_accepted",
            "Card numbers are not taken through this API here: leave out `card` and send the patron to the "
            "order's `payment_url` to pay.", field="card",
        )
    from wondertix.sales.pending import start_payment

    details = services.CheckoutDetails(
        buyer=services.Buyer(**payload.buyer.dict()), donation_cents=payload.donation_cents,
        donation_anonymous=payload.donation_anonymous, discount_code=payload.discount_code,
    )
    token = payload.hold_token
    if not token:
        # The hold's own key, derived from the order's (kept apart from keys sent to POST /holds).
        hold_key = f"order-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}" if idempotency_key else None
        token = services.create_hold(_lines(payload.lines), idempotency_key=hold_key, client=client_of(request)).token
    order, page = start_payment(token, details)
    return order_out(order) | {"payment_url": page if order.status == Order.PENDING else None}


@router.get("/orders/{token}", response={200: s.OrderOut, **s.answers(404, 503)}, summary="Read an order by its token")
def get_order(request: HttpRequest, token: str) -> dict:
    order = Order.objects.filter(token=token).first() if _TOKEN.fullmatch(token) else None
    if order is None:
        raise errors.not_found("order_not_found", "No order has that token.")
    return order_out(order)


@router.get(
    "/performances",
    response={200: list[s.PerformanceOut], **s.answers(422, 503)},
    summary="Upcoming performances, with availability",
)
def list_performances(
    request: HttpRequest,
    event_id: int | None = Query(None, ge=1, le=s.MAX_ID, description="Only this event's performances"),
    access: str | None = Query(None, max_length=40, description="Only performances with this accessibility tag (asl, captioned, audio_described, relaxed)"),
) -> list[dict]:
    wanted = access_tags.parse_filter(access)
    qs = Performance.objects.select_related("event").filter(event__active=True, starts_at__gt=timezone.now())
    if event_id is not None:
        qs = qs.filter(event_id=event_id)
    if wanted:
        qs = qs.filter(access_tags__tag=wanted)
    perfs = list(qs.order_by("starts_at", "pk"))
    access_tags.annotate(perfs)
    return [_perf_out(st) for st in catalog.states_for(perfs)]
