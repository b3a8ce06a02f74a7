"""Holds (carts), orders, tickets and discount codes."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from wondertix.catalog.models import Performance, PriceType
from wondertix.patrons.models import Patron


def new_token() -> str:
    """An unguessable URL-safe token (128 bits)."""
    return secrets.token_urlsafe(16)


def new_ticket_code() -> str:
    """The code inside a ticket's QR: unguessable, short enough to type at the door."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Hold(models.Model):
    """A cart: seats held for a patron until `expires_at`.

    An unexpired hold counts against capacity; once `expires_at` passes it counts for nothing,
    so correctness never waits for a cleanup job (one may delete old rows).
    """

    token = models.CharField(max_length=32, unique=True, default=new_token)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # Box-office holds (house seats) are made by staff and carry a reason.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=200, blank=True)
    # Set when the hold became an order; a consumed hold holds nothing and cannot be reused.
    consumed_at = models.DateTimeField(null=True, blank=True)
    # API holds: the client's Idempotency-Key, stored in the hold's own transaction, and a
    # digest of the request it came with (a retry must be the same request).
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # Who asked (the real client address, as HAProxy reports it): caps per client (holdcaps).
    client_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["client_address", "created_at"], name="hold_client_created")]

    def __str__(self) -> str:
        return f"Hold {self.token[:6]}… until {self.expires_at:%H:%M:%S}"

    def is_expired(self, now=None) -> bool:  # noqa: ANN001
        return (now or timezone.now()) >= self.expires_at


class HoldLine(models.Model):
    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, related_name="lines")
    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="hold_lines")
    price_type = models.ForeignKey(PriceType, on_delete=models.CASCADE, related_name="hold_lines")
    quantity = models.PositiveIntegerField()
    # For pay-what-you-can types: the amount the patron chose (per ticket), else the list price.
    unit_price_cents = models.PositiveIntegerField()
    # Denormalized from the hold so availability is one indexed aggregate, no join.
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["performance", "expires_at"], name="holdline_perf_expiry")]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="holdline_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x price type {self.price_type_id} for performance {self.performance_id}"


class DiscountCode(models.Model):
    AMOUNT = "amount"
    PERCENT = "percent"
    KIND_CHOICES = [(AMOUNT, "Amount off each ticket"), (PERCENT, "Percent off")]

    code = models.CharField(max_length=40, unique=True, help_text="Stored upper-case; matched without regard to case.")
    description = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    # Cents off each eligible ticket (amount) or whole percent off eligible tickets (percent).
    value = models.PositiveIntegerField()
    usage_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Orders that may use it; empty = unlimited.")
    times_used = models.PositiveIntegerField(default=0)
    min_tickets = models.PositiveIntegerField(default=1)
    price_types = models.ManyToManyField(PriceType, blank=True, related_name="discount_codes", help_text="Empty = every price type.")
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(kind="amount") | Q(value__lte=100), name="discount_percent_max_100"),
            models.CheckConstraint(
                condition=Q(usage_limit__isnull=True) | Q(times_used__lte=models.F("usage_limit")),
                name="discount_usage_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class Order(models.Model):
    PENDING = "pending"
    PAID = "paid"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    STATUS_CHOICES = [
        (PENDING, "Awaiting payment"),
        (PAID, "Paid"),
        (CANCELED, "Canceled"),
        (REFUNDED, "Refunded"),
        (PARTIALLY_REFUNDED, "Partially refunded"),
    ]
    ONLINE = "online"
    API = "api"
    BOX_OFFICE = "box_office"
    CHANNEL_CHOICES = [(ONLINE, "Online"), (API, "API"), (BOX_OFFICE, "Box office")]

    token = models.CharField(max_length=32, unique=True, default=new_token)
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=PENDING, db_index=True)
    channel = models.CharField(max_length=12, choices=CHANNEL_CHOICES, default=ONLINE)
    patron = models.ForeignKey(Patron, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    # What the buyer typed at checkout; the contact record is never overwritten from here.
    buyer_name = models.CharField(max_length=160, blank=True)
    buyer_email = models.EmailField(blank=True)
    buyer_phone = models.CharField(max_length=40, blank=True)
    buyer_accommodation = models.CharField(max_length=200, blank=True)
    subtotal_cents = models.PositiveIntegerField(default=0)
    fees_cents = models.PositiveIntegerField(default=0)
    discount_cents = models.PositiveIntegerField(default=0)
    donation_cents = models.PositiveIntegerField(default=0)
    total_cents = models.PositiveIntegerField(default=0)
    refunded_cents = models.PositiveIntegerField(default=0)
    discount_code = models.ForeignKey(DiscountCode, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    hold = models.ForeignKey(Hold, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    # Order-creating requests carry an idempotency key, stored in the order's own transaction.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_cents=models.F("subtotal_cents") + models.F("fees_cents") + models.F("donation_cents") - models.F("discount_cents")),
                name="order_total_adds_up",
            ),
            models.CheckConstraint(condition=Q(refunded_cents__lte=models.F("total_cents")), name="order_refund_within_total"),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        return f"WT-{self.pk:06d}" if self.pk else "WT-new"


class TicketQuerySet(models.QuerySet):
    def counted(self) -> TicketQuerySet:
        """Tickets that take a place against a limit (a price type's, a seat category's): the
        valid ones, and both sides of an exchange still waiting for its card payment — its new
        tickets (issued canceled) and the old ones (marked exchanged) — since it either
        completes or is undone, and neither may find its place sold meanwhile. (Exchange is
        imported at the end of this module.)"""
        pending = Exchange.PENDING
        return self.filter(
            Q(status=Ticket.VALID)
            | Q(status=Ticket.CANCELED, issued_by_exchange__exchange__status=pending)
            | Q(status=Ticket.EXCHANGED, exchanged_into__exchange__status=pending)
        )


class Ticket(models.Model):
    VALID = "valid"
    REFUNDED = "refunded"
    EXCHANGED = "exchanged"
    CANCELED = "canceled"
    STATUS_CHOICES = [(VALID, "Valid"), (REFUNDED, "Refunded"), (EXCHANGED, "Exchanged"), (CANCELED, "Canceled")]

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="tickets")
    performance = models.ForeignKey(Performance, on_delete=models.PROTECT, related_name="tickets")
    price_type = models.ForeignKey(PriceType, on_delete=models.PROTECT, related_name="tickets")
    code = models.CharField(max_length=24, unique=True, default=new_ticket_code)
    # What was paid for this admission, fixed at sale time: later price edits never change it.
    price_cents = models.PositiveIntegerField()
    fee_cents = models.PositiveIntegerField(default=0)
    discount_cents = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=VALID)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checked_in_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Reserved seating: the seat this ticket admits to (empty: general admission or standing).
    seat = models.ForeignKey("catalog.Seat", null=True, blank=True, on_delete=models.PROTECT, related_name="tickets")

    objects = TicketQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["performance", "price_type", "status"], name="ticket_perf_type_status")]

    def __str__(self) -> str:
        return f"Ticket {self.code}"

    @property
    def place(self) -> str:
        """Where it seats its holder ("Orchestra row A seat 5"); "" for general admission.
        Read with select_related("seat__section") when listing tickets."""
        return str(self.seat) if self.seat_id else ""


# Refunds and exchanges live in their own module (back office); imported here so Django sees them.
from wondertix.sales.refund_models import Exchange, ExchangeItem, Refund, RefundItem, RefundSource  # noqa: E402, F401
from wondertix.sales.seat_models import SeatClaim  # noqa: E402, F401
