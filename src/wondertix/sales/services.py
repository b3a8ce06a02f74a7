"""Selling tickets. Every write of the sale path is here, one transaction per use case.

Views and the API parse input, call one of these functions, and render the result; a
SaleError means nothing was written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance, PriceType
from wondertix.idempotency import find_by_key, run_once
from wondertix.ops import audit, metrics
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, holdcaps, inventory, notifications, pricing, seats
from wondertix.sales.models import DiscountCode, Hold, HoldLine, Order, Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineRequest:
    performance_id: int
    price_type_id: int
    quantity: int
    # Only for pay-what-you-can types, or to assert the price the client displayed.
    unit_price_cents: int | None = None
    # Reserved seating: the seats, one per ticket (empty: general admission or standing).
    seat_ids: tuple[int, ...] = ()

    def as_fingerprint(self) -> dict[str, Any]:
        # A general-admission line fingerprints as it always did (retries across an upgrade).
        out = asdict(self)
        if not self.seat_ids:
            del out["seat_ids"]
        return out


@dataclass
class Buyer:
    first_name: str
    last_name: str
    email: str
    phone: str = ""
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    accommodation: str = ""
    newsletter: bool = False

    def clean(self) -> Buyer:
        for name in ("first_name", "last_name", "email", "phone", "address_line1", "address_line2", "city", "region", "postal_code", "accommodation"):
            setattr(self, name, (getattr(self, name) or "").strip())
        if not self.first_name or not self.last_name:
            raise errors.invalid("invalid_name", "Please enter your first and last name.", field="name")
        if len(self.first_name) > 80 or len(self.last_name) > 80:
            raise errors.invalid("invalid_name", "Names can be at most 80 characters.", field="name")
        try:
            validate_email(self.email)
        except ValidationError:
            raise errors.invalid("invalid_email", f"“{self.email}” is not a valid email address.", field="email") from None
        self.email = self.email.lower()
        if self.phone and (len(self.phone) > 40 or sum(ch.isdigit() for ch in self.phone) < 7):
            raise errors.invalid("invalid_phone", "Please enter a phone number with at least 7 digits.", field="phone")
        if len(self.accommodation) > 200:
            raise errors.invalid("invalid_accommodation", "Please keep the accommodation note under 200 characters.", field="accommodation")
        return self

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class CheckoutDetails:
    buyer: Buyer
    donation_cents: int = 0
    donation_anonymous: bool = False
    donation_comment: str = ""
    discount_code: str = ""
    payment: PaymentDetails = field(default_factory=PaymentDetails)


# ---------------------------------------------------------------------------- validation


def _normalize_lines(lines: list[LineRequest]) -> list[LineRequest]:
    if not lines:
        raise errors.invalid("invalid_quantity", "Choose at least one ticket.", field="quantity")
    merged: dict[tuple[int, int, int | None], int] = defaultdict(int)
    seats: dict[tuple[int, int, int | None], list[int]] = defaultdict(list)
    for line in lines:
        pricing.validate_quantity(line.quantity)
        if line.seat_ids and len(line.seat_ids) != line.quantity:
            raise errors.invalid("invalid_seats", "Name one seat for each ticket (quantity = number of seats).", field="seat_ids")
        merged[(line.performance_id, line.price_type_id, line.unit_price_cents)] += line.quantity
        seats[(line.performance_id, line.price_type_id, line.unit_price_cents)].extend(line.seat_ids)
    out = [LineRequest(p, t, q, u, tuple(sorted(seats[(p, t, u)]))) for (p, t, u), q in merged.items()]
    for line in out:
        if line.seat_ids and len(line.seat_ids) != line.quantity:
            raise errors.invalid("invalid_seats", "Name one seat for each ticket (quantity = number of seats).", field="seat_ids")
    chosen = [(line.performance_id, seat) for line in out for seat in line.seat_ids]
    if len(chosen) != len(set(chosen)):
        raise errors.invalid("invalid_seats", "The same seat is chosen twice.", field="seat_ids")
    pricing.validate_quantity(sum(line.quantity for line in out))
    return out


def _load_price_types(lines: list[LineRequest], performances: dict[int, Performance], *, staff: bool) -> dict[int, PriceType]:
    ids = {line.price_type_id for line in lines}
    price_types = {pt.pk: pt for pt in PriceType.objects.filter(pk__in=ids).order_by()}
    for line in lines:
        pt = price_types.get(line.price_type_id)
        perf = performances[line.performance_id]
        if pt is None or pt.event_id != perf.event_id or not pt.active or (pt.staff_only and not staff):
            raise errors.invalid("invalid_price_type", "That ticket type is not sold for this performance.", field="price_type_id")
    return price_types


def _ensure_on_sale(perf: Performance, now: Any, *, staff: bool) -> None:
    if perf.status == Performance.CANCELED:
        raise errors.invalid("performance_canceled", "This performance has been canceled.")
    if not staff and not perf.event.active:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    if perf.starts_at <= now - timedelta(hours=3 if staff else 0) or (not staff and now >= perf.sales_close_at):
        raise errors.invalid("performance_past", "Sales for this performance have closed.")
    if not staff and perf.on_sale_from and now < perf.on_sale_from:
        local = timezone.localtime(perf.on_sale_from)
        raise errors.invalid("not_on_sale_yet", f"Tickets for this performance go on sale {local:%B %-d at %-I:%M %p}.")


def _demand(lines: list[LineRequest]) -> dict[tuple[int, int], int]:
    demand: dict[tuple[int, int], int] = defaultdict(int)
    for line in lines:
        demand[(line.performance_id, line.price_type_id)] += line.quantity
    return dict(demand)


# ---------------------------------------------------------------------------- holds


def create_hold(
    lines: list[LineRequest],
    *,
    minutes: int | None = None,
    actor: User | None = None,
    reason: str = "",
    staff: bool = False,
    idempotency_key: str | None = None,
    client: str | None = None,
) -> Hold:
    """Hold seats for a cart. Seats held count against capacity until the hold expires.

    With an `idempotency_key` (API clients), the key is stored on the hold in the hold's own
    transaction: a retry of the same request returns the first hold (as it is now) and holds
    nothing more; the key with a different request is refused (`idempotency_key_reused`).

    `client`: the patron's address; a patron's holds are capped per client (sales.holdcaps).
    """
    lines = _normalize_lines(lines)
    if not idempotency_key:
        return _create_hold(lines, minutes=minutes, actor=actor, reason=reason, staff=staff, key=None, fingerprint="", client=client)
    fingerprint = request_fingerprint(
        {
            "hold_lines": [line.as_fingerprint() for line in sorted(lines, key=lambda x: (x.performance_id, x.price_type_id, x.unit_price_cents or 0))],
            "minutes": minutes,
            "staff": staff,
            "reason": reason,
        }
    )
    existing = _existing_hold_for_key(idempotency_key, fingerprint)
    if existing is not None:
        return existing
    try:
        return _create_hold(lines, minutes=minutes, actor=actor, reason=reason, staff=staff, key=idempotency_key, fingerprint=fingerprint, client=client)
    except (IntegrityError, errors.SaleError):
        # A twin with the same key committed first: the unique key (or the seats it took,
        # when they were the last ones) stopped this one. Answer with the twin's hold.
        existing = _existing_hold_for_key(idempotency_key, fingerprint)
        if existing is None:
            raise
        return existing


def _existing_hold_for_key(key: str, fingerprint: str) -> Hold | None:
    found: Hold | None = find_by_key(
        Hold.objects, key, fingerprint, message="This Idempotency-Key was already used for a different request."
    )
    return found


def _create_hold(
    lines: list[LineRequest], *, minutes: int | None, actor: User | None, reason: str, staff: bool, key: str | None, fingerprint: str,
    client: str | None,
) -> Hold:
    now = timezone.now()
    expires_at = now + timedelta(minutes=minutes or settings.HOLD_MINUTES)
    client = None if staff else client
    with transaction.atomic():
        if client:
            holdcaps.check_client_may_hold(client, sum(line.quantity for line in lines), now)
        performances = inventory.lock_performances(line.performance_id for line in lines)
        for perf in performances.values():
            _ensure_on_sale(perf, now, staff=staff)
        price_types = _load_price_types(lines, performances, staff=staff)
        chosen = seats.check_lines(lines, performances, price_types, staff=staff)
        sold_as = performance_prices.effective_types(_demand(lines), price_types, performances)
        unit_prices = [pricing.unit_price(sold_as[(line.performance_id, line.price_type_id)], line.unit_price_cents) for line in lines]
        inventory.ensure_capacity(performances, _demand(lines), price_types, now=now)
        seats.ensure_category_limits(_demand(lines), price_types, now=now)
        hold = Hold.objects.create(
            expires_at=expires_at, created_by=actor if staff else None, reason=reason,
            idempotency_key=key, request_fingerprint=fingerprint, client_address=client,
        )
        hold_lines = HoldLine.objects.bulk_create(
            HoldLine(
                hold=hold,
                performance_id=line.performance_id,
                price_type_id=line.price_type_id,
                quantity=line.quantity,
                unit_price_cents=price,
                expires_at=expires_at,
            )
            for line, price in zip(lines, unit_prices, strict=True)
        )
        if chosen.seats:
            seats.claim_for_hold(hold_lines, {hl.pk: line.seat_ids for hl, line in zip(hold_lines, lines, strict=True)}, chosen, now=now)
    metrics.HOLDS_CREATED.inc()
    return hold


def get_hold(token: str) -> Hold:
    hold = Hold.objects.filter(token=token).first()
    if hold is None:
        raise errors.not_found("hold_not_found", "Your cart could not be found. Please choose your tickets again.")
    return hold


def release_hold(token: str) -> None:
    """Give the seats back (patron emptied the cart, or payment was declined or abandoned)."""
    with transaction.atomic():
        hold = Hold.objects.select_for_update().filter(token=token, consumed_at__isnull=True).first()
        if hold is not None:
            hold.lines.all().delete()
            hold.expires_at = min(hold.expires_at, timezone.now())
            hold.save(update_fields=["expires_at"])


# ---------------------------------------------------------------------------- orders


def request_fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _existing_for_key(key: str | None, fingerprint: str) -> Order | None:
    return find_by_key(
        Order.objects, key, fingerprint,
        message="This Idempotency-Key was already used for a different request.",
    )


def create_order(
    details: CheckoutDetails, totals: pricing.Totals, *, discount: DiscountCode | None, hold: Hold | None, **fields: Any
) -> Order:
    """The order row of a checkout: the contact, what the buyer typed, and the priced totals."""
    return Order.objects.create(
        patron=_find_or_create_patron(details.buyer),
        buyer_name=details.buyer.full_name,
        buyer_email=details.buyer.email,
        buyer_phone=details.buyer.phone,
        buyer_accommodation=details.buyer.accommodation,
        subtotal_cents=totals.subtotal_cents,
        fees_cents=totals.fees_cents,
        discount_cents=totals.discount_cents,
        donation_cents=totals.donation_cents,
        total_cents=totals.total_cents,
        discount_code=discount,
        hold=hold,
        **fields,
    )


def _find_or_create_patron(buyer: Buyer) -> Patron:
    """Match the contact by email. An existing contact's details are never overwritten from a
    checkout (anyone can type anyone's email); what the buyer typed is kept on the order."""
    # lower(email) is what the patron_email_lower index holds: an indexed lookup, not a scan.
    patron: Patron | None = Patron.objects.alias(email_lower=Lower("email")).filter(email_lower=buyer.email.lower()).order_by("pk").first()  # type: ignore[assignment]
    if patron is None:
        patron = Patron.objects.create(
            first_name=buyer.first_name,
            last_name=buyer.last_name,
            email=buyer.email,
            phone=buyer.phone,
            address_line1=buyer.address_line1,
            address_line2=buyer.address_line2,
            city=buyer.city,
            region=buyer.region,
            postal_code=buyer.postal_code,
            accommodation=buyer.accommodation,
            newsletter=buyer.newsletter,
        )
    return patron


def _place_order(
    *,
    lines: list[LineRequest],
    details: CheckoutDetails,
    channel: str,
    provider_name: str,
    idempotency_key: str | None,
    fingerprint: str,
    hold: Hold | None,
    actor: User | None,
    staff: bool,
    price_overrides: dict[int, int] | None = None,
) -> Order:
    """The one sale path. Runs inside the caller's atomic block.

    Validate and price from plain reads, write the order (the idempotency key first, so a
    duplicate fails before any other work), then claim the seats — the performance row lock,
    taken as late as possible so it is held for two statements and the commit — and only
    then charge. Any refusal raises and the transaction rolls back everything it wrote.
    """
    now = timezone.now()
    donation = pricing.validate_donation(details.donation_cents)
    if hold is not None and hold.is_expired(now):
        raise _hold_expired()
    discount = pricing.find_discount(details.discount_code) if details.discount_code.strip() else None
    performances = inventory.performances_for_sale(line.performance_id for line in lines)
    for perf in performances.values():
        _ensure_on_sale(perf, now, staff=staff)
    price_types = _load_price_types(lines, performances, staff=staff)
    chosen = seats.check_lines(lines, performances, price_types, staff=staff)
    demand = _demand(lines)
    inventory.precheck_capacity(performances, demand)
    if chosen.seats:
        seats.precheck(lines, chosen, now=now, hold_id=hold.pk if hold else None)
    ticket_seats: list[int | None] = []

    totals = pricing.Totals(donation_cents=donation)
    sold_as = performance_prices.effective_types(demand, price_types, performances)
    for line in lines:
        pt = sold_as[(line.performance_id, line.price_type_id)]
        if price_overrides and pt.pk in price_overrides:
            price = price_overrides[pt.pk]
        elif hold is not None:
            price = line.unit_price_cents if line.unit_price_cents is not None else pt.price_cents
        else:
            price = pricing.unit_price(pt, line.unit_price_cents)
        fee = pt.fee_cents if not staff else 0
        totals.tickets.extend(pricing.PricedTicket(line.performance_id, pt, price, fee) for _ in range(line.quantity))
        ticket_seats.extend(line.seat_ids or [None] * line.quantity)
    totals.subtotal_cents = sum(t.price_cents for t in totals.tickets)
    totals.fees_cents = sum(t.fee_cents for t in totals.tickets)
    if discount is not None:
        pricing.apply_discount(discount, totals, now)

    order = create_order(
        details,
        totals,
        discount=discount,
        hold=hold,
        status=Order.PAID,
        channel=channel,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
        created_by=actor,
        paid_at=now,
    )
    tickets = Ticket.objects.bulk_create(
        Ticket(
            order=order,
            performance=performances[t.performance_id],
            price_type=t.price_type,
            price_cents=t.price_cents,
            fee_cents=t.fee_cents,
            discount_cents=t.discount_cents,
            seat=chosen.seats[seat_id] if seat_id else None,
        )
        for t, seat_id in zip(totals.tickets, ticket_seats, strict=True)
    )
    gifts = []
    if donation:
        gifts.append(
            Donation.objects.create(
                patron=order.patron, order=order, amount_cents=donation,
                anonymous=details.donation_anonymous, comment=details.donation_comment.strip()[:500],
            )
        )

    provider = get_provider(provider_name)
    audit.record(
        "order.paid",
        actor=actor,
        obj=order,
        after={"total_cents": order.total_cents, "tickets": len(tickets), "channel": channel, "provider": provider.name if order.total_cents > 0 else "free"},
    )

    notifications.queue_order_confirmation(order)  # sent after the commit, retried by the outbox

    if chosen.seats and hold is None and settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK:
        seats.check_without_constraint(tickets, chosen, now=now)  # the test switch's naive check

    # ---- the lock: from here to the commit, nothing slow.
    inventory.claim_seats(
        performances, demand, price_types, now=now,
        exclude_hold_id=hold.pk if hold else None, exclude_order_id=order.pk,
    )
    if hold is not None:
        # Re-read the hold under the performance locks: a competing sale that saw it expire
        # (or a second checkout of the same cart) has committed by now.
        hold = Hold.objects.get(pk=hold.pk)
        if hold.consumed_at is not None:
            raise _already_checked_out()
        if hold.is_expired(now):
            raise _hold_expired()
    if chosen.seats or any(pt.seat_category_id for pt in price_types.values()):
        seats.ensure_category_limits(demand, price_types, now=now, exclude_hold_id=hold.pk if hold else None, exclude_order_id=order.pk)
        seats.claim_for_order(tickets, chosen, now=now, hold_id=hold.pk if hold else None)
    if discount is not None:
        if discount.usage_limit is not None:
            locked = DiscountCode.objects.select_for_update(no_key=True).get(pk=discount.pk)
            if locked.times_used >= locked.usage_limit:  # type: ignore[operator]
                raise errors.conflict("discount_exhausted", f"The discount code “{discount.code}” has been used up.")
        DiscountCode.objects.filter(pk=discount.pk).update(times_used=F("times_used") + 1)
    if order.total_cents > 0:
        result = provider.charge(
            amount_cents=order.total_cents,
            details=details.payment,
            description=f"{settings.THEATER_NAME} tickets",
            idempotency_key=idempotency_key or order.token,
        )
        if not result.ok:
            metrics.ORDERS.labels("declined").inc()
            raise errors.payment_failed(result.code or "payment_declined", result.message)
        Payment.objects.create(order=order, provider=provider.name, reference=result.reference, amount_cents=order.total_cents, status=Payment.SUCCEEDED)
    if hold is not None:
        # One plain DELETE: the hold's seat claims, if any, became the tickets' above, so
        # nothing is left to cascade (the collector would read the lines and the claims first).
        HoldLine.objects.filter(hold=hold)._raw_delete(HoldLine.objects.db)  # type: ignore[attr-defined]
        Hold.objects.filter(pk=hold.pk).update(consumed_at=now)
    order.ticket_count = len(tickets)  # type: ignore[attr-defined]
    # The tickets as written, with their performance, event and price type loaded: whoever
    # renders the new order (the API answer, the email) need not read them back.
    order.issued_tickets = tickets  # type: ignore[attr-defined]
    _remember(order, "tickets", tickets)
    _remember(order, "donations", gifts)
    return order


def _remember(instance: Any, related_name: str, objs: list[Any]) -> None:
    """Fill `instance.<related_name>.all()` with rows this transaction wrote, the way
    prefetch_related does, so reading them back costs no query."""
    qs = getattr(instance, related_name).all()
    qs._result_cache = list(objs)
    qs._prefetch_done = True
    if not hasattr(instance, "_prefetched_objects_cache"):
        instance._prefetched_objects_cache = {}
    instance._prefetched_objects_cache[related_name] = qs


def _hold_expired() -> errors.SaleError:
    return errors.conflict("hold_expired", "Your seats were held for a limited time and have been released. Please choose them again.")


def _already_checked_out() -> errors.SaleError:
    return errors.conflict("cart_already_checked_out", "This cart has already been checked out. Check your email for the tickets.")


def checkout(
    hold_token: str,
    details: CheckoutDetails,
    *,
    channel: str = Order.ONLINE,
    provider_name: str | None = None,
    idempotency_key: str | None = None,
    actor: User | None = None,
) -> Order:
    """Turn a patron's hold into a paid order. A declined card releases the held seats."""
    details.buyer.clean()
    fingerprint = request_fingerprint({"hold": hold_token})

    def place() -> Order:
        hold = get_hold(hold_token)
        if hold.consumed_at is not None:
            raise _already_checked_out()
        held_seats = seats.hold_seat_ids(hold.pk)
        lines = [
            LineRequest(hl.performance_id, hl.price_type_id, hl.quantity, hl.unit_price_cents, held_seats.get(hl.pk, ()))
            for hl in hold.lines.all()
        ]
        if not lines:
            raise _hold_expired()
        return _place_order(
            lines=lines, details=details, channel=channel,
            provider_name=provider_name or settings.PAYMENT_PROVIDER,
            idempotency_key=idempotency_key, fingerprint=fingerprint,
            hold=hold, actor=actor, staff=False,
        )

    try:
        return _idempotent(idempotency_key, fingerprint, place)
    except errors.SaleError as exc:
        if exc.status == 402:
            release_hold(hold_token)
        raise


def sell(
    lines: list[LineRequest],
    details: CheckoutDetails,
    *,
    channel: str = Order.API,
    provider_name: str | None = None,
    idempotency_key: str | None = None,
    actor: User | None = None,
    staff: bool = False,
    price_overrides: dict[int, int] | None = None,
) -> Order:
    """Sell and pay in one call (API integrations, load tests, the box office)."""
    lines = _normalize_lines(lines)
    details.buyer.clean()
    fingerprint = request_fingerprint(
        {
            "lines": [line.as_fingerprint() for line in sorted(lines, key=lambda x: (x.performance_id, x.price_type_id))],
            "email": details.buyer.email,
            "donation": details.donation_cents,
            "discount": details.discount_code.strip().upper(),
            "overrides": price_overrides or {},
        }
    )
    return _idempotent(
        idempotency_key,
        fingerprint,
        lambda: _place_order(
            lines=lines, details=details, channel=channel,
            provider_name=provider_name or settings.PAYMENT_PROVIDER,
            idempotency_key=idempotency_key, fingerprint=fingerprint,
            hold=None, actor=actor, staff=staff, price_overrides=price_overrides,
        ),
    )


def _idempotent(key: str | None, fingerprint: str, place: Callable[[], Order]) -> Order:
    """Run one order-creating transaction at most once per idempotency key.

    The key is stored on the order in the same transaction (a unique column), so a retry
    after an unknown outcome (dropped connection, failover) finds the first order instead of
    selling twice. A retry is answered from the first order before anything is validated or
    locked; a twin sent concurrently is caught by the unique key (or by a refusal its own
    success explains: the seats it bought, the cart it consumed) and answered the same way.
    """
    try:
        order, created = run_once(lambda: _existing_for_key(key, fingerprint), place)
    except errors.SaleError:
        existing = _existing_for_key(key, fingerprint)
        if existing is None:
            raise
        return existing
    if created:
        _sold(order)
    return order


def _sold(order: Order) -> None:
    metrics.ORDERS.labels("paid").inc()
    metrics.TICKETS_SOLD.labels(order.channel).inc(order.ticket_count)  # type: ignore[attr-defined]
