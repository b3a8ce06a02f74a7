"""Staff API: orders, refunds and exchanges (token-authenticated; see wondertix.api.auth).

The same services as the staff pages. Refunds and exchanges require an `Idempotency-Key`
header: repeating a request with the same key returns the first result and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Header, Path, Router, Schema

from wondertix.api.auth import StaffToken
from wondertix.api.schemas import CARD_NUMBER, MAX_ID, answers, cents
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales import errors
from wondertix.sales.cancellation import refund_performance_buyers
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets
from wondertix.sales.models import Order
from wondertix.sales.refunds import (
    DonationRefund,
    RefundRequest,
    TicketRefund,
    refund_order,
    refundable_cents,
    ticket_refundable,
)

router = Router(tags=["staff"])
auth = StaffToken("box_office")


class StaffTicketOut(Schema):
    id: int
    code: str
    performance_id: int
    price_type_id: int
    price_type: str
    status: str
    price_cents: int
    fee_cents: int
    discount_cents: int
    refundable_cents: int = Field(description="Face value and fee not refunded yet")


class StaffOrderOut(Schema):
    id: int
    reference: str
    status: str
    channel: str
    buyer_name: str
    buyer_email: str
    total_cents: int
    refunded_cents: int
    refundable_cents: int
    created_at: datetime
    tickets: list[StaffTicketOut]


Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]
OrderId = Path(..., ge=1, le=MAX_ID, description="The order's id")


class TicketRefundIn(Schema):
    ticket_id: Id
    amount_cents: int | None = cents(None, "Less than the full amount keeps the rest; omitted = all that is left")


class DonationRefundIn(Schema):
    donation_id: Id
    amount_cents: int | None = cents(None, "Omitted = all that is left", ge=1)


class RefundIn(Schema):
    tickets: list[TicketRefundIn] = Field([], max_length=500)
    donations: list[DonationRefundIn] = Field([], max_length=100)
    subscriptions: list[Id] = Field([], max_length=100)
    include_fees: bool = False
    method: str = Field("original", description="original (back to the order's payments) or cash")
    reason: str = Field("", max_length=300)


class RefundOut(Schema):
    id: int
    order_id: int
    amount_cents: int
    tickets_cents: int
    fees_cents: int
    donations_cents: int
    subscriptions_cents: int
    method: str
    order_status: str
    order_refunded_cents: int


class ExchangeIn(Schema):
    ticket_ids: list[Id] = Field(..., max_length=500)
    to_performance_id: Id
    price_type_id: Id | None = None
    method: str = Field("", description="cash | card | waive when the new tickets cost more; original | cash when less")
    card_number: str = Field("", max_length=40, pattern=CARD_NUMBER)
    exp_month: int | None = Field(None, ge=1, le=12, strict=True)
    exp_year: int | None = Field(None, ge=2000, le=2200, strict=True)
    cvc: str = Field("", max_length=8, pattern=r"^[0-9]*$")
    reason: str = Field("", max_length=300)
    seat_ids: list[Id] = Field(default_factory=list, max_length=500,
                               description="A reserved target performance: a seat of its chart for each ticket, in the order of ticket_ids (its category matching the price type)")
    reader_id: str = Field("", max_length=120, pattern=r"^[A-Za-z0-9_]*$",
                           description="Where cards are taken on a reader (Stripe Terminal): the reader (tmr_…) for a card difference")


class ExchangeOut(Schema):
    id: int
    order_id: int
    to_performance_id: int
    difference_cents: int
    method: str
    status: str = Field("succeeded", description="`pending` while a card difference waits on the reader (finished by Stripe's webhook)")
    card_payment_id: int | None = Field(None, description="The reader payment to follow at /staff/pos/card/<id>/ while `pending`")
    new_ticket_codes: list[str]


class RefundAllIn(Schema):
    method: str = "original"
    reason: str = Field("", max_length=300)


class RefundAllOut(Schema):
    refunded_orders: list[int]
    failed: dict[str, str]
    amount_cents: int
    tickets: int


def _key(value: str | None) -> str:
    if not value or not 8 <= len(value) <= 100 or not value.isprintable() or " " in value:
        raise errors.invalid("invalid_idempotency_key", "Idempotency-Key must be 8 to 100 printable characters without spaces (a UUID is ideal).")
    return value


def _order_out(order: Order) -> dict:
    tickets = list(order.tickets.select_related("price_type").order_by("id"))
    left = ticket_refundable(tickets)
    return {
        "id": order.pk, "reference": order.reference, "status": order.status, "channel": order.channel,
        "buyer_name": order.buyer_name, "buyer_email": order.buyer_email, "total_cents": order.total_cents,
        "refunded_cents": order.refunded_cents, "refundable_cents": refundable_cents(order), "created_at": order.created_at,
        "tickets": [
            {"id": t.pk, "code": t.code, "performance_id": t.performance_id, "price_type_id": t.price_type_id, "price_type": t.price_type.name,
             "status": t.status, "price_cents": t.price_cents, "fee_cents": t.fee_cents, "discount_cents": t.discount_cents,
             "refundable_cents": left[t.pk].face_cents + left[t.pk].fee_cents}
            for t in tickets
        ],
    }


@router.get("/orders/{order_id}", response={200: StaffOrderOut, **answers(401, 404, 422, 503)}, auth=auth, summary="An order with its tickets and what can still be refunded")
def get_order(request: HttpRequest, order_id: int = OrderId) -> dict:
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise errors.not_found("order_not_found", "That order does not exist.")
    return _order_out(order)


@router.post(
    "/orders/{order_id}/refunds",
    response={201: RefundOut, **answers(400, 401, 402, 404, 409, 422, 503)},
    auth=auth,
    summary="Refund tickets, donations or subscriptions of an order (idempotent)",
)
def create_refund(request: HttpRequest, payload: RefundIn, order_id: int = OrderId, idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> tuple[int, dict]:
    refund = refund_order(
        order_id,
        RefundRequest(
            tickets=[TicketRefund(t.ticket_id, t.amount_cents) for t in payload.tickets],
            donations=[DonationRefund(d.donation_id, d.amount_cents) for d in payload.donations],
            subscriptions=payload.subscriptions, include_fees=payload.include_fees, method=payload.method, reason=payload.reason,
        ),
        idempotency_key=_key(idempotency_key),
        actor=request.user,  # type: ignore[arg-type]
    )
    order = Order.objects.get(pk=refund.order_id)
    return 201, {
        "id": refund.pk, "order_id": refund.order_id, "amount_cents": refund.amount_cents, "tickets_cents": refund.tickets_cents,
        "fees_cents": refund.fees_cents, "donations_cents": refund.donations_cents, "subscriptions_cents": refund.subscriptions_cents,
        "method": refund.method, "order_status": order.status, "order_refunded_cents": order.refunded_cents,
    }


@router.post(
    "/orders/{order_id}/exchanges",
    response={201: ExchangeOut, 202: ExchangeOut, **answers(400, 401, 402, 404, 409, 422, 503)},
    auth=auth,
    summary="Move tickets to another performance or price type (idempotent)",
)
def create_exchange(request: HttpRequest, payload: ExchangeIn, order_id: int = OrderId, idempotency_key: str | None = Header(None, alias="Idempotency-Key")) -> tuple[int, dict]:
    card = PaymentDetails(card_number=payload.card_number, exp_month=payload.exp_month, exp_year=payload.exp_year, cvc=payload.cvc) if payload.card_number else None
    exchange = exchange_tickets(
        order_id,
        ExchangeRequest(payload.ticket_ids, payload.to_performance_id, payload.price_type_id, payload.method, card, payload.reason,
                        reader_id=payload.reader_id, seat_ids=list(payload.seat_ids)),
        idempotency_key=_key(idempotency_key),
        actor=request.user,  # type: ignore[arg-type]
    )
    waiting = exchange.terminal_payments.exclude(status="canceled").first() if exchange.status == exchange.PENDING else None
    return 202 if waiting else 201, {
        "id": exchange.pk, "order_id": exchange.order_id, "to_performance_id": exchange.to_performance_id,
        "difference_cents": exchange.difference_cents, "method": exchange.method, "status": exchange.status,
        "card_payment_id": waiting.pk if waiting else None,
        "new_ticket_codes": [i.new_ticket.code for i in exchange.items.select_related("new_ticket")],
    }


@router.post(
    "/performances/{performance_id}/refund-all",
    response={200: RefundAllOut, **answers(400, 401, 404, 422, 503)},
    auth=auth,
    summary="Refund every buyer of a canceled performance (tickets and fees)",
)
def refund_all(request: HttpRequest, payload: RefundAllIn, performance_id: int = Path(..., ge=1, le=MAX_ID)) -> dict:
    result = refund_performance_buyers(performance_id, method=payload.method, actor=request.user, reason=payload.reason)  # type: ignore[arg-type]
    return {"refunded_orders": result.refunded_orders, "failed": {str(k): v for k, v in result.failed.items()},
            "amount_cents": result.amount_cents, "tickets": result.tickets}
