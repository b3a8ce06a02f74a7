"""Gifts made on their own (the storefront's donation page).

A stand-alone gift is recorded as an Order with no tickets whose total is the donation, with
its Payment and its Donation row. Reports, refunds and the box office then see it exactly like
any other sale: one place for money received, one refund path, one audit trail.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from wondertix.idempotency import find_by_key, run_once
from wondertix.ops import audit, metrics
from wondertix.patrons.models import Donation
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, pricing
from wondertix.sales.models import Order
from wondertix.sales.services import Buyer, _find_or_create_patron, request_fingerprint

log = logging.getLogger(__name__)

MIN_DONATION_CENTS = 100


def _existing(key: str | None, fingerprint: str) -> Order | None:
    return find_by_key(Order.objects, key, fingerprint, message="This gift was already submitted with different details.")


def donate(
    amount_cents: int,
    buyer: Buyer,
    *,
    payment: PaymentDetails,
    anonymous: bool = False,
    comment: str = "",
    idempotency_key: str | None = None,
    provider_name: str | None = None,
) -> Order:
    """Charge and record a gift in one transaction. A refused gift writes nothing. Where the
    card is paid on the provider's page, the gift is a pending order (see pending_sales).

    `idempotency_key` makes a double submit (or a retry after an unknown outcome) return the
    first gift instead of charging twice.
    """
    buyer.clean()
    amount = pricing.validate_donation(amount_cents)
    if amount < MIN_DONATION_CENTS:
        raise errors.invalid("invalid_donation", "The smallest gift we can take online is $1.00.", field="donation_cents")
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise errors.invalid("invalid_comment", "Please keep the comment under 500 characters.", field="comment")
    provider = get_provider(provider_name)
    if not provider.synchronous:
        # Paid on the provider's page (Stripe Checkout): the order is pending until its
        # webhook; the page to send the patron to is its CheckoutSession's url.
        from wondertix.patrons.pending_sales import start_donation

        order, _ = start_donation(amount, buyer, anonymous=anonymous, comment=comment, idempotency_key=idempotency_key or "")
        return Order.objects.select_related("checkout_session").get(pk=order.pk)  # with the page's url
    key = f"donation:{idempotency_key}" if idempotency_key else None
    fingerprint = request_fingerprint({"donation": amount, "email": buyer.email, "anonymous": anonymous, "comment": comment})
    order, created = run_once(
        lambda: _existing(key, fingerprint),
        lambda: _record(amount, buyer, payment=payment, anonymous=anonymous, comment=comment,
                        key=key, fingerprint=fingerprint, provider_name=provider.name),
    )
    if not created:
        return order
    metrics.ORDERS.labels("donation").inc()
    return order


def _record(
    amount: int, buyer: Buyer, *, payment: PaymentDetails, anonymous: bool, comment: str,
    key: str | None, fingerprint: str, provider_name: str,
) -> Order:
    now = timezone.now()
    patron = _find_or_create_patron(buyer)
    order = Order(
        status=Order.PAID,
        channel=Order.ONLINE,
        patron=patron,
        buyer_name=buyer.full_name,
        buyer_email=buyer.email,
        buyer_phone=buyer.phone,
        donation_cents=amount,
        total_cents=amount,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        paid_at=now,
    )
    provider = get_provider(provider_name)
    result = provider.charge(
        amount_cents=amount,
        details=payment,
        description=f"Gift to {settings.THEATER_NAME}",
        idempotency_key=key or order.token,
    )
    if not result.ok:
        metrics.ORDERS.labels("declined").inc()
        raise errors.payment_failed(result.code or "payment_declined", result.message)
    order.save()
    Payment.objects.create(order=order, provider=provider.name, reference=result.reference, amount_cents=amount, status=Payment.SUCCEEDED)
    donation = Donation.objects.create(patron=patron, order=order, amount_cents=amount, anonymous=anonymous, comment=comment)
    audit.record(
        "donation.received",
        obj=donation,
        after={"amount_cents": amount, "order": order.pk, "anonymous": anonymous, "provider": provider.name},
    )
    from wondertix.sales import notifications

    notifications.queue_order_confirmation(order)  # the receipt; sent after the commit
    return order
