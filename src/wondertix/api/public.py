"""Public API v1: events, availability, holds and orders. Thin: parse, call a service, render."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Header, Router

from wondertix.api import schemas as s
from wondertix.catalog import services as catalog
from wondertix.catalog.models import Event, Performance
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import errors, inventory, services
from wondertix.sales.models import Hold, Order

router = Router(tags=["public"])


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
    }


def _event_out(event: Event) -> dict:
    perfs = getattr(event, "upcoming", None)
    if perfs is None:
        perfs = list(event.performances.select_related("event").order_by("starts_at"))
    return {
        "id": event.pk,
        "slug": event.slug,
        "title": event.title,
        "description": event.description,
        "image_url": event.image_url,
        "season": event.season.name if event.season else None,
        "performances": [_perf_out(st) for st in catalog.states_for(perfs)],
    }


@router.get("/events", response=list[s.EventOut], summary="Events on sale, with their upcoming performances")
def list_events(request: HttpRequest) -> list[dict]:
    return [_event_out(e) for e in catalog.public_events()]


@router.get("/events/{slug}", response=s.EventOut, summary="One event by its slug")
def get_event(request: HttpRequest, slug: str) -> dict:
    event = get_object_or_404(Event.objects.select_related("season"), slug=slug, active=True)
    return _event_out(event)


@router.get("/performances/{performance_id}", response=s.PerformanceDetailOut, summary="A performance, its availability and price types")
def get_performance(request: HttpRequest, performance_id: int) -> dict:
    perf = catalog.get_public_performance(performance_id)
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    state = catalog.states_for([perf])[0]
    pts = catalog.public_price_types(perf)
    left = inventory.price_type_availability(perf, pts)
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
        }
        for pt in pts
    ]
    return out


def _lines(lines: list[s.LineIn]) -> list[services.LineRequest]:
    return [services.LineRequest(x.performance_id, x.price_type_id, x.quantity, x.unit_price_cents) for x in lines]


def _hold_out(hold: Hold) -> dict:
    return {
        "token": hold.token,
        "expires_at": hold.expires_at,
        "lines": [
            {"performance_id": hl.performance_id, "price_type_id": hl.price_type_id, "quantity": hl.quantity, "unit_price_cents": hl.unit_price_cents}
            for hl in hold.lines.all()
        ],
    }


@router.post("/holds", response={201: s.HoldOut, 404: s.ErrorOut, 409: s.ErrorOut, 422: s.ErrorOut}, summary="Hold seats (a cart) for a limited time")
def create_hold(request: HttpRequest, payload: s.HoldIn) -> tuple[int, dict]:
    hold = services.create_hold(_lines(payload.lines))
    return 201, _hold_out(hold)


@router.get("/holds/{token}", response={200: s.HoldOut, 404: s.ErrorOut, 409: s.ErrorOut}, summary="Read a hold")
def get_hold(request: HttpRequest, token: str) -> dict:
    hold = services.get_hold(token)
    if hold.consumed_at is None and hold.is_expired():
        raise errors.conflict("hold_expired", "This hold has expired and its seats were released.")
    return _hold_out(hold)


@router.delete("/holds/{token}", response={204: None}, summary="Release a hold's seats")
def delete_hold(request: HttpRequest, token: str) -> tuple[int, None]:
    services.release_hold(token)
    return 204, None


def order_out(order: Order) -> dict:
    base = settings.SITE_URL.rstrip("/")
    tickets = order.tickets.select_related("performance__event", "price_type").order_by("id")
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
            }
            for t in tickets
        ],
    }


@router.post(
    "/orders",
    response={201: s.OrderOut, 402: s.ErrorOut, 404: s.ErrorOut, 409: s.ErrorOut, 422: s.ErrorOut},
    summary="Create an order and pay it in one call",
    description=(
        "Sells `lines` (or the seats of `hold_token`) and charges the card with the environment's "
        "synchronous provider. Send an `Idempotency-Key` header: a retry with the same key returns "
        "the first order (same body) and never sells twice; the same key with a different request "
        "is refused with `idempotency_key_reused`."
    ),
)
def create_order(
    request: HttpRequest,
    payload: s.OrderIn,
    response: HttpResponse,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> tuple[int, dict]:
    if idempotency_key is not None and not 8 <= len(idempotency_key) <= 100:
        raise errors.invalid("invalid_idempotency_key", "Idempotency-Key must be 8 to 100 characters.")
    card = payload.card
    details = services.CheckoutDetails(
        buyer=services.Buyer(**payload.buyer.dict()),
        donation_cents=payload.donation_cents,
        donation_anonymous=payload.donation_anonymous,
        discount_code=payload.discount_code,
        payment=PaymentDetails(card_number=card.number, exp_month=card.exp_month, exp_year=card.exp_year, cvc=card.cvc) if card else PaymentDetails(),
    )
    if payload.hold_token:
        if payload.lines:
            raise errors.invalid("invalid_request", "Send either lines or hold_token, not both.")
        order = services.checkout(payload.hold_token, details, channel=Order.API, idempotency_key=idempotency_key)
    else:
        order = services.sell(_lines(payload.lines), details, channel=Order.API, idempotency_key=idempotency_key)
    return 201, order_out(order)


@router.get("/orders/{token}", response={200: s.OrderOut, 404: s.ErrorOut}, summary="Read an order by its token")
def get_order(request: HttpRequest, token: str) -> dict:
    order = Order.objects.filter(token=token).first()
    if order is None:
        raise errors.not_found("order_not_found", "No order has that token.")
    return order_out(order)


@router.get("/performances", response=list[s.PerformanceOut], summary="Upcoming performances on sale")
def list_performances(request: HttpRequest) -> list[dict]:
    from django.utils import timezone

    perfs = list(Performance.objects.select_related("event").filter(event__active=True, starts_at__gt=timezone.now()).order_by("starts_at"))
    return [_perf_out(st) for st in catalog.states_for(perfs)]
