"""Patron accounts without passwords: sign in by a one-time link sent by email.

Asking for a link works like "Find my tickets" (storefront.lookup, storefront.ratelimit): the
request never looks the address up. It checks the caps, writes a PatronSignIn row and queues
one email to the address; the email is rendered later (ops.outbox) and only then is the
address looked up — an address with no contact gets nothing. So the answer, and the work the
request does, are the same for a known and an unknown address.

The link's secret is derived from the row's random salt with SECRET_KEY (so the renderer can
put it in the email however late it runs); only its SHA-256 is stored. Following the link
shows a button; pressing it (a POST, so a mail scanner that fetches links does not use it up)
spends the link under a row lock — once, before `expires_at` — and puts the patron's id in
the Django session. Patrons are not Django users: staff authentication is untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from wondertix.ops import outbox
from wondertix.ops.models import OutboxEmail
from wondertix.patrons.models import Patron
from wondertix.payments import simulated
from wondertix.sales import errors
from wondertix.sales.change_emails import Email, when
from wondertix.sales.models import Order
from wondertix.storefront import ratelimit
from wondertix.storefront.models import PatronSignIn

SESSION_KEY = "patron_id"
# Orders a patron sees in their history (a pending or abandoned card payment is not an order yet).
HISTORY_STATUSES = (Order.PAID, Order.PARTIALLY_REFUNDED, Order.REFUNDED)
LINK_REFUSED = "This sign-in link has expired or was already used. Ask for a new one below."


def link_token(salt: str, *, secret_key: str | None = None) -> str:
    """The link's secret for a sign-in row (`secret_key`: another process's, for tests that
    sign in to a server they started)."""
    key = secret_key or settings.SECRET_KEY
    digest = hmac.new(key.encode(), b"patron-sign-in-link:" + salt.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_sign_in(email: str, *, client: str | None, now: datetime | None = None) -> bool:
    """Queue a sign-in link for `email` (already checked to be an address). True when an
    email was queued (False: the address asked too often this hour; the page says the same)."""
    now = now or timezone.now()
    digest = ratelimit.address_digest("patron-sign-in", email)
    with transaction.atomic():
        ratelimit.check_client(PatronSignIn, client, settings.PATRON_SIGN_INS_PER_CLIENT_PER_HOUR, now,
                               code="too_many_sign_ins", what="sign-in requests")
        emailed = ratelimit.address_allowed(PatronSignIn, digest, settings.PATRON_SIGN_INS_PER_ADDRESS_PER_HOUR, now)
        row = outbox.queue_to_address(OutboxEmail.PATRON_SIGN_IN, email.strip()) if emailed else None
        salt = secrets.token_hex(16)
        PatronSignIn.objects.create(
            address_digest=digest, client_address=client or None, salt=salt, token_hash=token_hash(link_token(salt)),
            expires_at=now + timedelta(minutes=settings.PATRON_SIGN_IN_LINK_MINUTES), email=row,
        )
        ratelimit.forget_old(PatronSignIn, now)
    return emailed


def patron_for_address(address: str) -> Patron | None:
    """The contact with this address (the oldest, as checkout matches them)."""
    found: Patron | None = Patron.objects.alias(email_lower=Lower("email")).filter(email_lower=address.strip().lower()).order_by("pk").first()  # type: ignore[assignment]
    return found


def sign_in_email(*, first_name: str, link: str, expires_at: datetime, sample: bool = False) -> Email:
    mark = simulated.TEST_MARK if simulated.payments_are_simulated() else ""
    context: dict[str, Any] = {
        "THEATER_NAME": settings.THEATER_NAME, "TEST_MARK": mark, "first_name": first_name or "there",
        "link": link, "expires": when(expires_at), "minutes": settings.PATRON_SIGN_IN_LINK_MINUTES,
        "site_url": settings.SITE_URL.rstrip("/") + "/", "sample": sample, "reference": "your email address",
    }
    subject = f"Sign in to {settings.THEATER_NAME}"
    return Email("patron_sign_in", f"[{mark}] {subject}" if mark else subject, context)


def sign_in_message(row: OutboxEmail) -> EmailMultiAlternatives | None:
    """The email with the link (ops.outbox renders it when it sends the row), or None —
    nothing is sent — for an address with no contact, or a link already used or expired."""
    sign_in = PatronSignIn.objects.filter(email=row).first()
    if sign_in is None or sign_in.used_at is not None or sign_in.expires_at <= timezone.now():
        return None
    patron = patron_for_address(row.recipient)
    if patron is None:
        return None
    link = settings.SITE_URL.rstrip("/") + reverse("storefront:sign_in_link", args=[link_token(sign_in.salt)])
    return sign_in_email(first_name=patron.first_name, link=link, expires_at=sign_in.expires_at).message(row.recipient)


def use_link(token: str, *, now: datetime | None = None) -> Patron:
    """Spend a sign-in link: the patron it signs in. Refused (nothing written) when the link
    is unknown, used, expired, or its address has no contact."""
    now = now or timezone.now()
    with transaction.atomic():
        sign_in = PatronSignIn.objects.select_for_update().filter(token_hash=token_hash(token)).first()
        if sign_in is None or sign_in.email_id is None or sign_in.used_at is not None or sign_in.expires_at <= now:
            raise errors.invalid("sign_in_link_invalid", LINK_REFUSED)
        address = OutboxEmail.objects.values_list("recipient", flat=True).get(pk=sign_in.email_id)
        patron = patron_for_address(address)
        if patron is None:
            raise errors.invalid("sign_in_link_invalid", LINK_REFUSED)
        sign_in.used_at = now
        sign_in.save(update_fields=["used_at"])
    return patron


# ---------------------------------------------------------------------------- the session


def sign_in(request: HttpRequest, patron: Patron) -> None:
    request.session.cycle_key()  # a new session id on sign-in: a planted id is worth nothing
    request.session[SESSION_KEY] = patron.pk


def sign_out(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def current_patron(request: HttpRequest) -> Patron | None:
    patron_id = request.session.get(SESSION_KEY)
    if not patron_id:
        return None
    return Patron.objects.filter(pk=patron_id).first()


def orders_of(patron: Patron) -> QuerySet[Order]:
    """The patron's orders: bought under their contact or with their address."""
    return Order.objects.filter(Q(patron=patron) | Q(buyer_email__iexact=patron.email), status__in=HISTORY_STATUSES).distinct()


def order_of(patron: Patron, order_id: int) -> Order | None:
    """One of the patron's orders, or None (another patron's order is not found)."""
    return orders_of(patron).filter(pk=order_id).first()
