"""The patron's cart as the storefront sees it: a hold token kept in the session.

The hold itself (seats, prices, expiry) lives in the database and is written only by
wondertix.sales.services. The session remembers three things for the patron: which hold is
theirs, what they chose (so a declined card or an expired hold can be held again with one
button), and which orders they placed (so a replayed checkout lands on the order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PriceType, Seat
from wondertix.sales import pricing
from wondertix.sales.models import Hold, Order
from wondertix.sales.seats import hold_seat_ids
from wondertix.sales.services import LineRequest

HOLD_KEY = "storefront.hold"
SELECTION_KEY = "storefront.selection"
CONTACT_KEY = "storefront.contact"
ORDERS_KEY = "storefront.orders"
BADGE_KEY = "storefront.badge"

ACTIVE = "active"
EXPIRED = "expired"
CHECKED_OUT = "checked_out"
EMPTY = "empty"


@dataclass
class CartLine:
    performance: Performance
    price_type: PriceType
    quantity: int
    unit_price_cents: int
    fee_cents: int
    # Reserved seating: the seats this line holds, and how they read ("Orchestra row A seat 5").
    seat_ids: tuple[int, ...] = ()
    seats: list[str] = field(default_factory=list)

    @property
    def line_total_cents(self) -> int:
        return self.quantity * (self.unit_price_cents + self.fee_cents)


@dataclass
class Cart:
    state: str
    hold: Hold | None = None
    lines: list[CartLine] = field(default_factory=list)
    order: Order | None = None

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines)

    @property
    def fees_cents(self) -> int:
        return sum(line.quantity * line.fee_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.fees_cents

    @property
    def expires_at(self) -> datetime | None:
        return self.hold.expires_at if self.hold else None


# ------------------------------------------------------------------ session


def hold_token(session: SessionBase) -> str:
    return session.get(HOLD_KEY, "")


def remember_hold(session: SessionBase, hold: Hold, lines: list[LineRequest]) -> None:
    session[HOLD_KEY] = hold.token
    session[SELECTION_KEY] = [[x.performance_id, x.price_type_id, x.quantity, x.unit_price_cents, list(x.seat_ids)] for x in lines]
    session[BADGE_KEY] = {"count": sum(x.quantity for x in lines), "expires_at": hold.expires_at.isoformat()}


def selection(session: SessionBase) -> list[LineRequest]:
    out = []
    for p, t, q, u, *seats in session.get(SELECTION_KEY, []):
        ids = tuple(int(i) for i in seats[0]) if seats else ()
        out.append(LineRequest(int(p), int(t), int(q), None if u is None else int(u), ids))
    return out


def forget_hold(session: SessionBase, *, keep_selection: bool = False) -> None:
    session.pop(HOLD_KEY, None)
    session.pop(BADGE_KEY, None)
    if not keep_selection:
        session.pop(SELECTION_KEY, None)
        session.pop(CONTACT_KEY, None)


def remember_order(session: SessionBase, hold_token_: str, order: Order) -> None:
    orders = dict(session.get(ORDERS_KEY, {}))
    orders[hold_token_] = order.token
    # A session only needs its most recent orders to answer a replayed checkout.
    session[ORDERS_KEY] = dict(list(orders.items())[-10:])


def order_placed_from(session: SessionBase, token: str) -> Order | None:
    """The order this session placed from the hold `token`, if it placed one."""
    order_token = session.get(ORDERS_KEY, {}).get(token) if token else None
    return Order.objects.filter(token=order_token).first() if order_token else None


def order_for_hold(session: SessionBase, token: str) -> Order | None:
    """The order a hold of this session became, if any (double submit, back button).

    Knowing the hold token is proof enough: it only ever lived in this patron's session.
    """
    if not token:
        return None
    order_token = session.get(ORDERS_KEY, {}).get(token)
    if order_token:
        found = Order.objects.filter(token=order_token).first()
        if found is not None:
            return found
    return Order.objects.filter(hold__token=token).order_by("pk").first()


def badge(session: SessionBase) -> dict[str, Any] | None:
    """The header's cart badge, read from the session without touching the database."""
    data = session.get(BADGE_KEY)
    if not data:
        return None
    try:
        expires = datetime.fromisoformat(data["expires_at"])
    except (KeyError, ValueError):
        return None
    if expires <= timezone.now():
        return None
    return {"count": data.get("count", 0), "expires_at": expires}


# ------------------------------------------------------------------ reading the hold


def load(session: SessionBase) -> Cart:
    token = hold_token(session)
    if not token:
        return Cart(EMPTY)
    hold = Hold.objects.filter(token=token).first()
    if hold is None:
        forget_hold(session, keep_selection=True)
        return Cart(EMPTY)
    if hold.consumed_at is not None:
        return Cart(CHECKED_OUT, hold=hold, order=order_for_hold(session, token))
    rows = list(hold.lines.select_related("performance__event", "price_type").order_by("performance__starts_at", "price_type__sort_order", "pk"))
    if not rows or hold.is_expired():
        return Cart(EXPIRED, hold=hold)
    sold_as = performance_prices.effective_types(
        ((row.performance_id, row.price_type_id) for row in rows), {row.price_type_id: row.price_type for row in rows},
        {row.performance_id: row.performance for row in rows},
    )
    seat_ids = hold_seat_ids(hold.pk) if any(row.performance.seating_chart_id for row in rows) else {}
    names = {s.pk: str(s) for s in Seat.objects.filter(pk__in={i for ids in seat_ids.values() for i in ids}).select_related("section")} if seat_ids else {}
    lines = [
        CartLine(
            row.performance, row.price_type, row.quantity, row.unit_price_cents,
            sold_as[(row.performance_id, row.price_type_id)].fee_cents,
            seat_ids.get(row.pk, ()), [names[i] for i in seat_ids.get(row.pk, ())],
        )
        for row in rows
    ]
    return Cart(ACTIVE, hold=hold, lines=lines)


def preview(lines: list[LineRequest]) -> list[CartLine]:
    """What a remembered selection would cost, for display while its seats are not held."""
    if not lines:
        return []
    perfs = {p.pk: p for p in Performance.objects.filter(pk__in={x.performance_id for x in lines}).select_related("event")}
    types = {t.pk: t for t in PriceType.objects.filter(pk__in={x.price_type_id for x in lines})}
    out = []
    sold_as = performance_prices.effective_types(
        ((x.performance_id, x.price_type_id) for x in lines if x.performance_id in perfs and x.price_type_id in types), types, perfs
    )
    for x in lines:
        perf, pt = perfs.get(x.performance_id), types.get(x.price_type_id)
        if perf is None or pt is None:
            continue
        pt = sold_as[(x.performance_id, x.price_type_id)]
        price = x.unit_price_cents if x.unit_price_cents is not None else pt.price_cents
        out.append(CartLine(perf, pt, x.quantity, price, pt.fee_cents, x.seat_ids))
    return out


def quote(cart: Cart, *, donation_cents: int = 0, discount_code: str = "") -> pricing.Totals:
    """What checkout will charge for this cart, read-only: the same pricing functions the
    sale path uses (hold prices, today's fees, the discount code's rules). Raises the same
    SaleError a checkout would for a bad discount code; writes nothing."""
    totals = pricing.Totals(donation_cents=donation_cents)
    for line in cart.lines:
        for _ in range(line.quantity):
            totals.tickets.append(pricing.PricedTicket(line.performance.pk, line.price_type, line.unit_price_cents, line.fee_cents))
    totals.subtotal_cents = sum(t.price_cents for t in totals.tickets)
    totals.fees_cents = sum(t.fee_cents for t in totals.tickets)
    if discount_code.strip():
        pricing.apply_discount(pricing.find_discount(discount_code), totals, timezone.now())
    return totals
