"""Selling at the box office window, through the one sale path (sales.services.sell).

The box office may sell staff-only price types, sell after online sales close, override a
price (with a reason) and comp tickets (zero total, with a reason); capacity and price-type
limits hold exactly as online. House seats are box-office holds with a reason, released back
to sale when the house manager says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from wondertix.boxoffice import pos_seats
from wondertix.boxoffice.door import WALK_UP_EMAIL
from wondertix.catalog.models import Performance, PriceType
from wondertix.money import format_cents
from wondertix.ops import audit
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Patron, Subscription
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, services
from wondertix.sales.models import Hold, Order

CASH = "cash"
CARD = "card"
COMP = "comp"
PAYMENT_METHODS = [(CASH, "Cash"), (CARD, "Card"), (COMP, "Comp (no charge)")]


@dataclass
class PosSale:
    performance_id: int
    quantities: dict[int, int]
    payment_method: str
    patron_id: int | None = None
    # A new contact or a named walk-up (used when patron_id is empty).
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    accommodation: str = ""
    price_overrides: dict[int, int] = field(default_factory=dict)
    reason: str = ""
    card: PaymentDetails = field(default_factory=PaymentDetails)
    idempotency_key: str | None = None
    # Cash sales: what the buyer handed over (the receipt shows the change due).
    cash_tendered_cents: int | None = None
    # The card reader, where cards are taken on one (Stripe Terminal).
    reader_id: str = ""
    # Reserved seating: the seats ticked on the map (pos_seats gives each line its seats).
    seat_ids: list[int] = field(default_factory=list)


def _buyer(sale: PosSale) -> services.Buyer:
    if sale.patron_id:
        patron = Patron.objects.filter(pk=sale.patron_id).first()
        if patron is None:
            raise errors.not_found("unknown_contact", "That contact does not exist.")
        return services.Buyer(
            first_name=patron.first_name, last_name=patron.last_name, email=patron.email,
            phone=patron.phone if sum(ch.isdigit() for ch in patron.phone) >= 7 else "",
            accommodation=sale.accommodation,
        )
    if sale.email.strip():
        return services.Buyer(first_name=sale.first_name, last_name=sale.last_name, email=sale.email,
                              phone=sale.phone, accommodation=sale.accommodation)
    # A walk-up: no contact record of their own; the name (if given) stays on the order.
    return services.Buyer(
        first_name=sale.first_name.strip() or "Walk-up", last_name=sale.last_name.strip() or "Guest",
        email=WALK_UP_EMAIL, phone=sale.phone, accommodation=sale.accommodation,
    )


def sell_at_box_office(sale: PosSale, *, actor: User) -> Order:
    """One box-office sale. Comps and price overrides need a reason, recorded in the audit log."""
    reason = sale.reason.strip()
    wanted = {pt_id: qty for pt_id, qty in sale.quantities.items() if qty > 0}
    if not wanted and not sale.seat_ids:
        raise errors.invalid("invalid_quantity", "Choose at least one ticket.", field="quantity")
    overrides = {pt: cents for pt, cents in sale.price_overrides.items() if pt in wanted}
    # Pay what you can: the amount the patron chose is their price, not an override.
    pwyc = set(PriceType.objects.filter(pk__in=wanted, pay_what_you_can=True).values_list("pk", flat=True))
    chosen = {pt: overrides.pop(pt) for pt in list(overrides) if pt in pwyc}
    lines = [services.LineRequest(sale.performance_id, pt_id, qty, chosen.get(pt_id)) for pt_id, qty in wanted.items()]
    if sale.seat_ids:
        lines = pos_seats.with_seats(sale.performance_id, lines, sale.seat_ids)
    if sale.payment_method == COMP:
        overrides = {line.price_type_id: 0 for line in lines}
        if not reason:
            raise errors.invalid("reason_required", "Please give a reason for the comp.", field="reason")
        provider = CASH  # a zero total charges nothing
    elif sale.payment_method == CASH:
        provider = CASH
    elif sale.payment_method == CARD:
        provider = settings.PAYMENT_PROVIDER
    else:
        raise errors.invalid("invalid_payment_method", "Choose cash, card or comp.", field="payment_method")
    if overrides and sale.payment_method != COMP and not reason:
        raise errors.invalid("reason_required", "Please give a reason for the price override.", field="reason")
    if any(c < 0 for c in overrides.values()):
        raise errors.invalid("invalid_price", "An override price cannot be negative.", field="price_overrides")
    buyer = _buyer(sale)
    if sale.payment_method == CARD and not get_provider(provider).synchronous:
        # The card is taken on a reader: the sale waits, pending, for the processor.
        from wondertix.boxoffice.pos_card import start_reader_sale

        return start_reader_sale(sale, lines, overrides, buyer, reason=reason, actor=actor)
    replay = bool(sale.idempotency_key) and Order.objects.filter(idempotency_key=sale.idempotency_key).exists()
    with transaction.atomic():
        order = services.sell(
            lines,
            services.CheckoutDetails(buyer=buyer, payment=sale.card),
            channel=Order.BOX_OFFICE,
            provider_name=provider,
            idempotency_key=sale.idempotency_key,
            actor=actor,
            staff=True,
            price_overrides=overrides or None,
        )
        if replay:  # the same form sent twice: the first sale stands, nothing new to record
            return order
        tendered = sale.cash_tendered_cents if sale.payment_method == CASH else None
        if tendered is not None and tendered < order.total_cents:  # rolls the sale back: nothing is written
            raise errors.invalid(
                "cash_short", f"The total is {format_cents(order.total_cents)}; {format_cents(tendered)} in cash is not enough.",
                field="cash_tendered",
            )
        audit.record(
            "pos.sale",
            actor=actor,
            obj=order,
            after={
                "payment_method": sale.payment_method,
                "performance_id": sale.performance_id,
                "quantities": {str(line.price_type_id): line.quantity for line in lines},
                "seat_ids": sorted(sale.seat_ids),
                "price_overrides": {str(k): v for k, v in overrides.items()},
                "reason": reason[:200],
                "total_cents": order.total_cents,
                "walk_up": buyer.email == WALK_UP_EMAIL,
                "cash_tendered_cents": tendered,
                "change_cents": None if tendered is None else tendered - order.total_cents,
            },
        )
    return order


@dataclass
class Receipt:
    """What the window's confirmation and printed receipt show about how a sale was paid."""

    method: str  # "Cash", "Card", "Comp (no charge)"
    tendered_cents: int | None = None
    change_cents: int | None = None
    reason: str = ""


def receipt_for(order: Order) -> Receipt:
    """Read back how a window sale was paid (its `pos.sale` audit entry, else its payments)."""
    labels = dict(PAYMENT_METHODS)
    entry = AuditEntry.objects.filter(action="pos.sale", object_id=str(order.pk)).order_by("pk").first()
    if entry is not None and entry.after:
        after = entry.after
        return Receipt(labels.get(after.get("payment_method", ""), "—"), after.get("cash_tendered_cents"), after.get("change_cents"),
                       after.get("reason", ""))
    providers = set(order.payments.values_list("provider", flat=True))  # type: ignore[attr-defined]
    if not providers:
        return Receipt(labels[COMP] if order.total_cents == 0 else "—")
    return Receipt(labels[CASH] if providers == {"cash"} else labels[CARD])


# ---------------------------------------------------------------------------- house seats


def hold_house_seats(performance: Performance, price_type_id: int | None, quantity: int, reason: str, *, actor: User, seat_ids: list[int] | None = None) -> Hold:
    """Hold seats back from sale until curtain (house seats, VIPs, a broken seat): a number of
    places, or on a reserved performance the seats ticked (`seat_ids`), shown held on the map."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.invalid("reason_required", "Please give a reason for holding seats.", field="reason")
    minutes = max(1, int((performance.starts_at - timezone.now()) / timedelta(minutes=1)) + 60)
    with transaction.atomic():
        if seat_ids:
            lines = pos_seats.with_seats(performance.pk, [], list(seat_ids))
        elif price_type_id is None:
            raise errors.invalid("invalid_quantity", "Choose the seats to hold.", field="seat_ids")
        else:
            lines = [services.LineRequest(performance.pk, price_type_id, quantity)]
        hold = services.create_hold(
            lines,
            minutes=minutes, actor=actor, reason=reason[:200], staff=True,
        )
        audit.record("hold.created", actor=actor, obj=hold,
                     after={"performance_id": performance.pk, "price_type_id": price_type_id, "quantity": sum(x.quantity for x in lines),
                            "seat_ids": sorted(s for x in lines for s in x.seat_ids), "reason": reason[:200]})
    return hold


def release_house_seats(hold_id: int, reason: str, *, actor: User) -> Hold:
    """Give held seats back to sale (they can then be sold at the window or online)."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.invalid("reason_required", "Please give a reason for releasing the seats.", field="reason")
    hold = Hold.objects.filter(pk=hold_id, created_by__isnull=False).first()
    if hold is None:
        raise errors.not_found("unknown_hold", "That house-seat hold does not exist.")
    with transaction.atomic():
        seats = sum(hl.quantity for hl in hold.lines.all())
        if hold.consumed_at is not None or hold.is_expired() or not seats:
            raise errors.conflict("hold_not_active", "Those seats are no longer held.")
        services.release_hold(hold.token)
        audit.record("hold.released", actor=actor, obj=hold, before={"seats": seats, "reason": hold.reason},
                     after={"seats": 0, "reason": reason[:200]})
    return hold


def active_house_holds(performance: Performance) -> list[dict]:
    now = timezone.now()
    holds = (
        Hold.objects.filter(created_by__isnull=False, consumed_at__isnull=True, expires_at__gt=now,
                            lines__performance=performance, orders__isnull=True)  # not a sale waiting for its card
        .select_related("created_by").prefetch_related("lines__price_type").distinct()
    )
    from wondertix.sales.models import SeatClaim

    listed = list(holds)
    named: dict[int, list[str]] = {}
    for claim in SeatClaim.objects.filter(hold_line__hold__in=listed, performance=performance).select_related("seat__section", "hold_line").order_by("seat__section__sort_order", "seat__y", "seat__x"):
        named.setdefault(claim.hold_line.hold_id, []).append(str(claim.seat))  # type: ignore[union-attr]
    return [
        {
            "hold": h,
            "seat_names": named.get(h.pk, []),
            "seats": sum(hl.quantity for hl in h.lines.all() if hl.performance_id == performance.pk),
            "types": ", ".join(f"{hl.quantity} x {hl.price_type.name}" for hl in h.lines.all() if hl.performance_id == performance.pk),
        }
        for h in listed
    ]


@dataclass
class ContactSubscription:
    """One of the buyer's season subscriptions, as the window sees it for a performance."""

    subscription: Subscription
    # Redeemable here: active, tickets left, and the performance is in its season.
    usable_here: bool
    why_not: str = ""


def subscriptions_for(patron: Patron, performance: Performance) -> list[ContactSubscription]:
    """The contact's subscriptions with what is left, for the POS page (read-only: redeeming
    is patrons.subscriptions.redeem, reached through its own page)."""
    rows = []
    season_id = performance.event.season_id
    for sub in patron.subscriptions.select_related("subscription_type__season").order_by("-created_at"):
        if sub.status != Subscription.ACTIVE:
            why = "refunded"
        elif sub.remaining <= 0:
            why = "all tickets redeemed"
        elif sub.subscription_type.season_id != season_id:
            why = f"for the {sub.subscription_type.season.name} season, not this show"
        else:
            why = ""
        rows.append(ContactSubscription(sub, usable_here=not why, why_not=why))
    return rows
