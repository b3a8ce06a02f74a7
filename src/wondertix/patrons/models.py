"""Contacts (the theater's CRM) and donations."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from wondertix.money import format_cents


class Patron(models.Model):
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=40, blank=True)
    address_line1 = models.CharField(max_length=200, blank=True)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, default="US", blank=True)
    # Seating accommodation the house should know about (wheelchair space, aisle seat, …).
    accommodation = models.CharField(max_length=200, blank=True)
    newsletter = models.BooleanField(default=False)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        indexes = [models.Index(Lower("email"), name="patron_email_lower")]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Donation(models.Model):
    patron = models.ForeignKey(Patron, null=True, blank=True, on_delete=models.PROTECT, related_name="donations")
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="donations")
    amount_cents = models.PositiveIntegerField()
    anonymous = models.BooleanField(default=False)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    refunded_cents = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="donation_positive"),
        ]

    def __str__(self) -> str:
        who = "Anonymous" if self.anonymous or self.patron is None else self.patron.full_name
        return f"{who}: {format_cents(self.amount_cents)}"


class SubscriptionType(models.Model):
    """A season package: N tickets to redeem into the season's performances, for one price."""

    season = models.ForeignKey("catalog.Season", on_delete=models.PROTECT, related_name="subscription_types")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)
    price_cents = models.PositiveIntegerField()
    tickets_included = models.PositiveIntegerField()
    # At most this many subscriptions sold (empty = no limit); checked under this row's lock.
    limit_sold = models.PositiveIntegerField(null=True, blank=True)
    # Offered on the public /subscriptions/ page (staff can always sell active types).
    on_sale_online = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["season", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["season", "name"], name="subscription_type_name_unique_per_season"),
            models.CheckConstraint(condition=models.Q(tickets_included__gt=0), name="subscription_type_has_tickets"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.season})"


class Subscription(models.Model):
    ACTIVE = "active"
    REFUNDED = "refunded"
    STATUS_CHOICES = [(ACTIVE, "Active"), (REFUNDED, "Refunded")]

    patron = models.ForeignKey(Patron, on_delete=models.PROTECT, related_name="subscriptions")
    subscription_type = models.ForeignKey(SubscriptionType, on_delete=models.PROTECT, related_name="subscriptions")
    order = models.ForeignKey("sales.Order", on_delete=models.PROTECT, related_name="subscriptions")
    # What was paid, fixed at sale time: later price edits never change it.
    price_cents = models.PositiveIntegerField()
    tickets_included = models.PositiveIntegerField()
    # Redemptions left; changed only under this row's lock, with the redemption it records.
    remaining = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(remaining__lte=models.F("tickets_included")), name="subscription_remaining_within_included"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_type.name} for {self.patron.full_name} ({self.remaining} left)"


class Redemption(models.Model):
    """Subscription tickets turned into seats: the tickets are on `order` (a zero-price sale)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="redemptions")
    order = models.OneToOneField("sales.Order", on_delete=models.PROTECT, related_name="redemption")
    performance = models.ForeignKey("catalog.Performance", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=120, unique=True, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(quantity__gt=0), name="redemption_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} redeemed from subscription {self.subscription_id}"
