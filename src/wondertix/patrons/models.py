"""Contacts (the theater's CRM) and donations."""

from __future__ import annotations

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
