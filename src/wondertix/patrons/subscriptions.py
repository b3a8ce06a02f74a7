"""Season subscriptions: sell a package of N tickets, then redeem them into performances.

A subscription sale is an Order with no tickets whose total is the package price (with its
Payment and its Subscription row), so reports, refunds and the audit trail treat it like any
other sale. A redemption issues the tickets through the one sale path (services.sell, price 0,
the same performance locks and capacity checks) inside the transaction that locks the
subscription and records the Redemption, so a seat and a used redemption always go together.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from wondertix.catalog.models import Performance, PriceType, Season
from wondertix.idempotency import find_by_key, run_once
from wondertix.money import format_cents
from wondertix.ops import audit, metrics
from wondertix.patrons.models import Patron, Redemption, Subscription, SubscriptionType
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, notifications, pricing
from wondertix.sales.models import Order
from wondertix.sales.services import (
    Buyer,
    CheckoutDetails,
    LineRequest,
    _find_or_create_patron,
    request_fingerprint,
    sell,
)

# ---------------------------------------------------------------------------- types


@dataclass
class TypeInput:
    season_id: int
    name: str
    price_cents: int
    tickets_included: int
    limit_sold: int | None = None
    description: str = ""
    on_sale_online: bool = True
    active: bool = True


def _validate_type(data: TypeInput, *, sold: int = 0) -> None:
    if not data.name.strip() or len(data.name.strip()) > 120:
        raise errors.invalid("invalid_name", "Give the subscription a name (up to 120 characters).", field="name")
    for value, what, fld in ((data.price_cents, "price", "price_cents"), (data.tickets_included, "number of tickets", "tickets_included")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise errors.invalid("invalid_number", f"The {what} must be a whole number, zero or more.", field=fld)
    if data.tickets_included < 1 or data.tickets_included > 100:
        raise errors.invalid("invalid_number", "A subscription includes 1 to 100 tickets.", field="tickets_included")
    if data.limit_sold is not None and (isinstance(data.limit_sold, bool) or not isinstance(data.limit_sold, int) or data.limit_sold < 0):
        raise errors.invalid("invalid_number", "The sales limit must be a whole number or empty.", field="limit_sold")
    if data.limit_sold is not None and data.limit_sold < sold:
        raise errors.invalid("limit_below_sold", f"{sold} of these subscriptions are already sold; the limit cannot be lower.", field="limit_sold")
    if not Season.objects.filter(pk=data.season_id).exists():
        raise errors.invalid("unknown_season", "Choose a season.", field="season_id")


def save_type(data: TypeInput, *, type_id: int | None = None, actor: User | None = None) -> SubscriptionType:
    """Create or edit a subscription type (audited). Price edits never touch sold subscriptions."""
    with transaction.atomic():
        existing = SubscriptionType.objects.select_for_update().filter(pk=type_id).first() if type_id is not None else None
        if type_id and existing is None:
            raise errors.not_found("unknown_subscription_type", "That subscription type does not exist.")
        sold = sold_count(existing) if existing else 0
        _validate_type(data, sold=sold)
        same_name = SubscriptionType.objects.filter(season_id=data.season_id, name__iexact=data.name.strip())
        if existing is not None:
            same_name = same_name.exclude(pk=existing.pk)
        if same_name.exists():
            raise errors.invalid("duplicate_name", "This season already has a subscription with that name.", field="name")
        fields = ("season_id", "name", "description", "price_cents", "tickets_included", "limit_sold", "on_sale_online", "active")
        before = {f: getattr(existing, f) for f in fields} if existing else None
        obj = existing or SubscriptionType()
        for f in fields:
            value = getattr(data, f)
            setattr(obj, f, value.strip() if isinstance(value, str) else value)
        obj.save()
        audit.record("subscription_type.saved", actor=actor, obj=obj, before=before, after={f: getattr(obj, f) for f in fields})
    return obj


def sold_count(st: SubscriptionType) -> int:
    return Subscription.objects.filter(subscription_type=st, status=Subscription.ACTIVE).count()


def types_on_sale(*, online: bool) -> list[SubscriptionType]:
    today = timezone.localdate()
    qs = SubscriptionType.objects.filter(active=True, season__ends_on__gte=today).select_related("season").annotate(
        sold=Count("subscriptions", filter=Q(subscriptions__status=Subscription.ACTIVE))
    )
    if online:
        qs = qs.filter(on_sale_online=True, season__active=True)
    out: list[SubscriptionType] = []
    for st in qs.order_by("season__starts_on", "name"):
        st.left = None if st.limit_sold is None else max(0, st.limit_sold - st.sold)  # type: ignore[attr-defined]
        out.append(st)
    return out


# ---------------------------------------------------------------------------- selling


def sell_subscription(
    type_id: int,
    buyer: Buyer,
    *,
    payment: PaymentDetails | None = None,
    channel: str = Order.ONLINE,
    provider_name: str | None = None,
    patron_id: int | None = None,
    idempotency_key: str | None = None,
    actor: User | None = None,
) -> Subscription:
    """Sell one subscription. Online: the storefront provider, only types on sale online.
    Box office: cash, card, or a chosen contact (`patron_id`)."""
    buyer.clean()
    online = channel == Order.ONLINE
    provider = get_provider(provider_name)
    if not provider.synchronous:
        # The card is paid on the provider's page or a reader: a pending order completed by
        # the webhook (patrons.pending_sales), which the subscription pages use.
        raise errors.invalid("pay_through_pending_sale", "This subscription is paid on the card processor's page or reader: "
                             "start it with patrons.pending_sales.pending_subscription.")
    key = f"subscription:{idempotency_key}" if idempotency_key else None
    fingerprint = request_fingerprint({"subscription_type": type_id, "email": buyer.email, "patron": patron_id, "channel": channel})

    def find() -> Subscription | None:
        found = find_by_key(Order.objects, key, fingerprint, message="This purchase was already submitted with different details.")
        return found.subscriptions.get() if found is not None else None

    sub, created = run_once(
        find,
        lambda: _sell_locked(type_id, buyer, payment or PaymentDetails(), channel=channel, online=online, provider_name=provider.name,
                             patron_id=patron_id, key=key, fingerprint=fingerprint, actor=actor),
    )
    if created:
        metrics.ORDERS.labels("paid").inc()
    return sub


def _sell_locked(type_id: int, buyer: Buyer, details: PaymentDetails, *, channel: str, online: bool, provider_name: str,
                 patron_id: int | None, key: str | None, fingerprint: str, actor: User | None) -> Subscription:
    now = timezone.now()
    st = SubscriptionType.objects.select_for_update(of=("self",)).select_related("season").filter(pk=type_id).first()
    check_on_sale(st, online=online)
    assert st is not None
    if patron_id is not None:
        patron = Patron.objects.filter(pk=patron_id).first()
        if patron is None:
            raise errors.not_found("unknown_contact", "That contact does not exist.")
    else:
        patron = _find_or_create_patron(buyer)
    order = Order(
        status=Order.PAID, channel=channel, patron=patron, buyer_name=buyer.full_name, buyer_email=buyer.email,
        buyer_phone=buyer.phone, subtotal_cents=st.price_cents, total_cents=st.price_cents, idempotency_key=key,
        request_fingerprint=fingerprint, created_by=actor, paid_at=now,
    )
    payment = None
    if st.price_cents > 0:
        provider = get_provider(provider_name)
        result = provider.charge(amount_cents=st.price_cents, details=details, description=f"{settings.THEATER_NAME} {st.name}", idempotency_key=key or order.token)
        if not result.ok:
            raise errors.payment_failed(result.code or "payment_declined", result.message)
        payment = Payment(provider=provider.name, reference=result.reference, amount_cents=st.price_cents, status=Payment.SUCCEEDED)
    order.save()
    if payment is not None:
        payment.order = order
        payment.save()
    sub = Subscription.objects.create(
        patron=patron, subscription_type=st, order=order, price_cents=st.price_cents,
        tickets_included=st.tickets_included, remaining=st.tickets_included,
    )
    audit.record("subscription.sold", actor=actor, obj=sub, after={
        "order": order.pk, "type": st.name, "price_cents": st.price_cents, "tickets": st.tickets_included,
        "patron": patron.pk, "channel": channel, "provider": payment.provider if payment else "free",
    })
    notifications.queue_order_confirmation(order)  # the subscription's own email, after the commit
    return sub


def check_on_sale(st: SubscriptionType | None, *, online: bool) -> None:
    """Refuse a package that cannot be sold now. Call with the type's row locked."""
    if st is None or not st.active or (online and (not st.on_sale_online or not st.season.active)):
        raise errors.not_found("unknown_subscription_type", "That subscription is not on sale.")
    if st.season.ends_on < timezone.localdate():
        raise errors.invalid("season_over", f"The {st.season.name} season is over.")
    if st.limit_sold is not None and sold_count(st) >= st.limit_sold:
        raise errors.sold_out(f"Sorry, the “{st.name}” subscription is sold out.")


def issue_paid_subscription(order: Order, package: dict, *, provider: str) -> Subscription:
    """The payment for a pending subscription order arrived (pending.complete_payment, in the
    webhook's transaction): issue the subscription at the price that was charged. Raises
    SaleError when it can no longer be sold (then the payment is refunded)."""
    st = SubscriptionType.objects.select_for_update(of=("self",)).select_related("season").filter(pk=package["type_id"]).first()
    check_on_sale(st, online=bool(package.get("online")))
    assert st is not None and order.patron is not None
    sub = Subscription.objects.create(
        patron=order.patron, subscription_type=st, order=order, price_cents=package["price_cents"],
        tickets_included=package["tickets_included"], remaining=package["tickets_included"],
    )
    audit.record("subscription.sold", actor=order.created_by, obj=sub, actor_label=provider, after={
        "order": order.pk, "type": st.name, "price_cents": sub.price_cents, "tickets": sub.tickets_included,
        "patron": order.patron_id, "channel": order.channel, "provider": provider,
    })
    return sub


# ---------------------------------------------------------------------------- redeeming


def redeem(
    subscription_id: int,
    performance_id: int,
    price_type_id: int,
    quantity: int,
    *,
    idempotency_key: str | None = None,
    actor: User | None = None,
) -> Redemption:
    """Turn `quantity` of a subscription's remaining tickets into seats for a performance."""
    pricing.validate_quantity(quantity)
    key = (idempotency_key or "").strip() or None

    def find() -> Redemption | None:
        found = Redemption.objects.filter(idempotency_key=key).first() if key else None
        if found is not None and (found.subscription_id, found.performance_id, found.quantity) != (subscription_id, performance_id, quantity):
            raise errors.invalid("idempotency_key_reused", "This redemption key was already used for a different request.")
        return found

    redemption, _ = run_once(find, lambda: _redeem_locked(subscription_id, performance_id, price_type_id, quantity, key=key, actor=actor))
    return redemption


def _redeem_locked(subscription_id: int, performance_id: int, price_type_id: int, quantity: int, *, key: str | None, actor: User | None) -> Redemption:
    sub = Subscription.objects.select_for_update(of=("self",)).select_related("patron", "subscription_type__season").filter(pk=subscription_id).first()
    if sub is None:
        raise errors.not_found("unknown_subscription", "That subscription does not exist.")
    if sub.status != Subscription.ACTIVE:
        raise errors.invalid("subscription_refunded", "That subscription was refunded; it has no tickets to redeem.")
    if quantity > sub.remaining:
        raise errors.invalid(
            "subscription_exhausted",
            f"This subscription has {sub.remaining} ticket{'s' if sub.remaining != 1 else ''} left to redeem; {quantity} were asked for.",
            field="quantity",
            remaining=sub.remaining,
        )
    perf = Performance.objects.select_related("event").filter(pk=performance_id).first()
    if perf is None:
        raise errors.not_found("unknown_performance", "That performance does not exist.")
    season = sub.subscription_type.season
    if perf.event.season_id != season.pk:
        raise errors.invalid("not_in_season", f"“{perf.event.title}” is not part of the {season.name} season this subscription is for.")
    pt = PriceType.objects.filter(pk=price_type_id, event_id=perf.event_id).first()
    if pt is None:
        raise errors.invalid("invalid_price_type", "That ticket type is not sold for this performance.", field="price_type_id")
    patron = sub.patron
    buyer = Buyer(first_name=patron.first_name or "Subscriber", last_name=patron.last_name or str(patron.pk), email=patron.email, accommodation=patron.accommodation[:200])
    order = sell(
        [LineRequest(perf.pk, pt.pk, quantity)],
        CheckoutDetails(buyer=buyer),
        channel=Order.BOX_OFFICE,
        provider_name="cash",
        actor=actor,
        staff=True,
        price_overrides={pt.pk: 0},
    )
    if order.patron_id != patron.pk:  # another contact shares the email: the seats are this subscriber's
        Order.objects.filter(pk=order.pk).update(patron=patron)
    before = {"remaining": sub.remaining}
    sub.remaining -= quantity
    sub.save(update_fields=["remaining"])
    redemption = Redemption.objects.create(subscription=sub, order=order, performance=perf, quantity=quantity, idempotency_key=key, created_by=actor)
    audit.record("subscription.redeemed", actor=actor, obj=sub, before=before, after={
        "remaining": sub.remaining, "order": order.pk, "performance": perf.pk, "quantity": quantity, "price_type": pt.name,
    })
    return redemption


def describe(sub: Subscription) -> str:
    return f"{sub.subscription_type.name}: {sub.remaining} of {sub.tickets_included} left ({format_cents(sub.price_cents)})"
