"""Gifts taken at the box office (cash, a cheque, or a card at the window).

Like every other sale, a gift is an Order with no tickets whose total is the gift, with its
Payment and its Donation row, so the same refunds and reports apply. The online donation page
lives in patrons/donations.py; this is the staff counterpart, with the staff member recorded.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.idempotency import find_by_key, run_once
from wondertix.ops import audit, metrics
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.window import charge_at_window
from wondertix.sales import errors, pricing
from wondertix.sales.models import Order
from wondertix.sales.services import request_fingerprint

METHODS = ("cash", "card")


def record_gift(
    patron_id: int,
    amount_cents: int,
    *,
    method: str = "cash",
    card: PaymentDetails | None = None,
    anonymous: bool = False,
    comment: str = "",
    idempotency_key: str,
    actor: User | None,
) -> Donation:
    """Take a gift from a contact at the window, in one transaction; refused → nothing written."""
    amount = pricing.validate_donation(amount_cents)
    if amount == 0:
        raise errors.invalid("invalid_donation", "Enter the amount of the gift.", field="amount")
    if method not in METHODS:
        raise errors.invalid("invalid_method", "Choose cash or card.", field="method")
    comment = (comment or "").strip()
    if len(comment) > 500:
        raise errors.invalid("invalid_comment", "Please keep the comment under 500 characters.", field="comment")
    key = f"gift:{idempotency_key}"
    fingerprint = request_fingerprint({"patron": patron_id, "amount": amount, "method": method, "anonymous": anonymous, "comment": comment})

    def find() -> Donation | None:
        found = find_by_key(Order.objects, key, fingerprint, message="This gift was already recorded with different details.")
        return found.donations.get() if found is not None else None

    donation, _ = run_once(
        find,
        lambda: _record(patron_id, amount, method=method, card=card, anonymous=anonymous, comment=comment, key=key, fingerprint=fingerprint, actor=actor),
    )
    return donation


def _record(patron_id: int, amount: int, *, method: str, card: PaymentDetails | None, anonymous: bool, comment: str,
            key: str, fingerprint: str, actor: User | None) -> Donation:
    patron = Patron.objects.filter(pk=patron_id).first()
    if patron is None:
        raise errors.not_found("unknown_contact", "That contact does not exist.")
    provider, result = charge_at_window(
        amount_cents=amount, method=method, card=card, description=f"Gift to {settings.THEATER_NAME}", idempotency_key=key
    )
    order = Order.objects.create(
        status=Order.PAID, channel=Order.BOX_OFFICE, patron=patron, buyer_name=patron.full_name, buyer_email=patron.email,
        buyer_phone=patron.phone, donation_cents=amount, total_cents=amount, idempotency_key=key,
        request_fingerprint=fingerprint, created_by=actor, paid_at=timezone.now(),
    )
    Payment.objects.create(order=order, provider=provider, reference=result.reference, amount_cents=amount, status=Payment.SUCCEEDED)
    donation = Donation.objects.create(patron=patron, order=order, amount_cents=amount, anonymous=anonymous, comment=comment)
    audit.record("donation.recorded", actor=actor, obj=donation, after={
        "amount_cents": amount, "order": order.pk, "patron": patron.pk, "anonymous": anonymous, "provider": provider,
    })
    metrics.ORDERS.labels("donation").inc()
    return donation
