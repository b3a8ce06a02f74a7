"""Gifts and subscriptions paid through the card processor's own flow (Stripe).

The same path as tickets (wondertix.sales.pending): a PENDING order with no tickets whose
total is the gift or the package price, its CheckoutSession keeping what the payment is for,
and the processor's confirmation (the idempotent webhook) completing it exactly once —
`pending.complete_payment` writes the Donation or the Subscription with the Payment. An
abandoned payment page expires the pending order like a ticket order's.

Online, the patron pays on Stripe Checkout (`start_*` return the page's URL). At the window,
the same pending order is paid on a card reader (wondertix.payments.terminal).
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.idempotency import find_by_key, run_once
from wondertix.money import format_cents
from wondertix.ops import audit
from wondertix.patrons.models import Patron, SubscriptionType
from wondertix.payments.models import CheckoutSession
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, pending, pricing
from wondertix.sales.models import Order
from wondertix.sales.services import Buyer, _find_or_create_patron, request_fingerprint

MIN_DONATION_CENTS = 100


def _url_for(order: Order) -> str:
    """Where to send the patron: the payment page while the order waits, else the order."""
    from django.conf import settings

    if order.status == Order.PENDING:
        return pending.open_page(order, get_provider(), success_url=None, cancel_url=_back(order))
    return f"{settings.SITE_URL.rstrip('/')}/orders/{order.token}/"


def _back(order: Order) -> str:
    from django.conf import settings

    base = settings.SITE_URL.rstrip("/")
    return f"{base}/subscriptions/" if order.subtotal_cents else f"{base}/donate/"


def _minimum(amount: int) -> None:
    minimum = getattr(get_provider(), "minimum_charge_cents", 1)
    if amount < minimum:
        raise errors.invalid("amount_below_minimum", f"Online payments must be at least {format_cents(minimum)}.")


def _pending_order(
    *, patron: Patron, buyer: Buyer, channel: str, subtotal: int, donation: int, priced: dict, key: str | None,
    fingerprint: str, actor: User | None, provider: str, minutes: int,
) -> Order:
    """The pending order and its CheckoutSession, in the caller's transaction."""
    order = Order.objects.create(
        status=Order.PENDING, channel=channel, patron=patron, buyer_name=buyer.full_name, buyer_email=buyer.email,
        buyer_phone=buyer.phone, subtotal_cents=subtotal, donation_cents=donation, total_cents=subtotal + donation,
        idempotency_key=key, request_fingerprint=fingerprint, created_by=actor,
    )
    CheckoutSession.objects.create(order=order, provider=provider, expires_at=timezone.now() + timedelta(minutes=minutes), priced=priced)
    audit.record("order.pending", actor=actor, obj=order, after={"total_cents": order.total_cents, "tickets": 0, "provider": provider, **{
        k: v for k, v in (("donation_cents", donation), ("subscription", priced.get("subscription", {}).get("name"))) if v}})
    return order


# ---------------------------------------------------------------------------- gifts


def pending_donation(
    amount_cents: int, buyer: Buyer, *, anonymous: bool = False, comment: str = "", idempotency_key: str | None,
    channel: str = Order.ONLINE, patron: Patron | None = None, actor: User | None = None, minutes: int = pending.SESSION_MINUTES,
) -> Order:
    """A pending order for a gift (validated like donations.donate; refused → nothing written).
    The same key returns the same order."""
    buyer.clean()
    amount = pricing.validate_donation(amount_cents)
    if amount < MIN_DONATION_CENTS:
        raise errors.invalid("invalid_donation", "The smallest gift we can take online is $1.00.", field="donation_cents")
    _minimum(amount)
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise errors.invalid("invalid_comment", "Please keep the comment under 500 characters.", field="comment")
    key = f"donation:{idempotency_key}" if idempotency_key else None
    fingerprint = request_fingerprint({"donation": amount, "email": buyer.email, "anonymous": anonymous, "comment": comment, "channel": channel})
    provider = get_provider().name

    def create() -> Order:
        return _pending_order(
            patron=patron or _find_or_create_patron(buyer), buyer=buyer, channel=channel, subtotal=0, donation=amount,
            priced={"tickets": [], "donation": {"cents": amount, "anonymous": anonymous, "comment": comment}},
            key=key, fingerprint=fingerprint, actor=actor, provider=provider, minutes=minutes,
        )

    order, _ = run_once(lambda: find_by_key(Order.objects, key, fingerprint, message="This gift was already submitted with different details."), create)
    return order


def start_donation(amount_cents: int, buyer: Buyer, *, anonymous: bool = False, comment: str = "", idempotency_key: str) -> tuple[Order, str]:
    """An online gift through the payment page: (pending order, the page's URL)."""
    order = pending_donation(amount_cents, buyer, anonymous=anonymous, comment=comment, idempotency_key=idempotency_key or None)
    return order, _url_for(order)


# ---------------------------------------------------------------------------- subscriptions


def pending_subscription(
    type_id: int, buyer: Buyer, *, idempotency_key: str | None, channel: str = Order.ONLINE, patron: Patron | None = None,
    actor: User | None = None, minutes: int = pending.SESSION_MINUTES,
) -> Order:
    """A pending order for one subscription. The package must be on sale now (and is checked
    again under its lock when the payment arrives: sold out by then → the payment is refunded)."""
    buyer.clean()
    online = channel == Order.ONLINE
    key = f"subscription:{idempotency_key}" if idempotency_key else None
    fingerprint = request_fingerprint({"subscription_type": type_id, "email": buyer.email, "patron": patron.pk if patron else None, "channel": channel})
    provider = get_provider().name

    def create() -> Order:
        from wondertix.patrons.subscriptions import check_on_sale

        st = SubscriptionType.objects.select_for_update(of=("self",)).select_related("season").filter(pk=type_id).first()
        check_on_sale(st, online=online)
        assert st is not None
        if st.price_cents == 0:
            raise errors.invalid("nothing_to_pay", "This subscription is free: sell it without a card.")
        _minimum(st.price_cents)
        return _pending_order(
            patron=patron or _find_or_create_patron(buyer), buyer=buyer, channel=channel, subtotal=st.price_cents, donation=0,
            priced={"tickets": [], "subscription": {"type_id": st.pk, "name": st.name, "price_cents": st.price_cents,
                                                     "tickets_included": st.tickets_included, "online": online}},
            key=key, fingerprint=fingerprint, actor=actor, provider=provider, minutes=minutes,
        )

    def find() -> Order | None:
        return find_by_key(Order.objects, key, fingerprint, message="This purchase was already submitted with different details.")

    order, _ = run_once(find, create)
    return order


def start_subscription(type_id: int, buyer: Buyer, *, idempotency_key: str) -> tuple[Order, str]:
    """An online subscription through the payment page: (pending order, the page's URL)."""
    order = pending_subscription(type_id, buyer, idempotency_key=idempotency_key)
    return order, _url_for(order)
