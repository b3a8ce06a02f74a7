"""What staff changed after a sale: refunds and exchanges (rows written by sales/refunds.py and
sales/exchanges.py, never edited afterwards).

Money bookkeeping per order, kept exact in integer cents:

    charges − refund payments == order.total_cents − order.refunded_cents

An exchange changes the order's total by the price difference (a charge when it goes up, a
refund payment when it goes down); a refund raises `order.refunded_cents` by what it returns.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Refund(models.Model):
    """One refund request. It is written PENDING (tickets marked refunded, the amount counted
    against the order) before the payment provider is called outside any lock, then becomes
    SUCCEEDED (seats back on sale) or FAILED (everything the pending step did is undone)."""

    ORIGINAL = "original"
    CASH = "cash"
    METHOD_CHOICES = [(ORIGINAL, "Original payment"), (CASH, "Cash")]
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUS_CHOICES = [(PENDING, "Pending"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]

    order = models.ForeignKey("sales.Order", on_delete=models.PROTECT, related_name="refunds")
    # A refund request carries a key stored with the refund in the same transaction: repeating
    # the request finds this row and changes nothing.
    idempotency_key = models.CharField(max_length=120, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=10, choices=METHOD_CHOICES, default=ORIGINAL)
    amount_cents = models.PositiveIntegerField()
    tickets_cents = models.PositiveIntegerField(default=0)
    fees_cents = models.PositiveIntegerField(default=0)
    donations_cents = models.PositiveIntegerField(default=0)
    subscriptions_cents = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING, db_index=True)
    # Why the provider refused (a failed refund) or why it is still pending.
    message = models.CharField(max_length=300, blank=True)
    # The order (and subscriptions) as they were before the pending step: the audit entry's
    # "before" when the refund completes, and what a refused refund restores.
    before = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set when the refund is part of canceling this performance: the buyer is then told of the
    # cancellation (one email) instead of getting a plain refund email.
    canceled_performance = models.ForeignKey("catalog.Performance", null=True, blank=True, on_delete=models.PROTECT, related_name="cancellation_refunds")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    amount_cents=models.F("tickets_cents") + models.F("fees_cents") + models.F("donations_cents") + models.F("subscriptions_cents")
                ),
                name="refund_amount_adds_up",
            )
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} of order {self.order_id}: {self.amount_cents}¢"


class RefundItem(models.Model):
    """One thing given back: a ticket (face value and/or fee), a donation, or a subscription."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="items")
    ticket = models.ForeignKey("sales.Ticket", null=True, blank=True, on_delete=models.PROTECT, related_name="refund_items")
    donation = models.ForeignKey("patrons.Donation", null=True, blank=True, on_delete=models.PROTECT, related_name="refund_items")
    subscription = models.ForeignKey("patrons.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="refund_items")
    # Face value (price − discount) returned, and the booking fee returned, for tickets;
    # for a donation or subscription only amount_cents is used.
    amount_cents = models.PositiveIntegerField(default=0)
    fee_cents = models.PositiveIntegerField(default=0)
    # True when this item took a seat back (the ticket went from valid to refunded).
    seat_returned = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(ticket__isnull=False, donation__isnull=True, subscription__isnull=True)
                    | Q(ticket__isnull=True, donation__isnull=False, subscription__isnull=True)
                    | Q(ticket__isnull=True, donation__isnull=True, subscription__isnull=False)
                ),
                name="refund_item_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"Refund item {self.pk}: {self.amount_cents + self.fee_cents}¢"


class RefundSource(models.Model):
    """Which charge a provider refund went back to, so no charge is refunded beyond itself.

    Written with the refund Payment while it is still pending (a pending refund already counts
    against its charge), together with the provider idempotency key the payment is sent with:
    a retry or the reconciliation sends the same key, so the provider refunds once.
    """

    payment = models.OneToOneField("payments.Payment", on_delete=models.PROTECT, related_name="refund_source")
    # None for cash paid out at the window.
    charge = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="refunded_by")
    # The Refund, or the Exchange (its price difference), this payment belongs to.
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="sources")
    exchange = models.ForeignKey("sales.Exchange", null=True, blank=True, on_delete=models.PROTECT, related_name="sources")
    provider_key = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"Refund payment {self.payment_id} of charge {self.charge_id}"


class Exchange(models.Model):
    """Tickets moved to another performance or price type. One whose price difference goes
    through the card provider (a card charge, a refund to the original payment) is written
    PENDING first and finished after the provider answered, like a Refund (see
    sales/exchanges.py); one settled in cash or without money is SUCCEEDED at once."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUS_CHOICES = [(PENDING, "Pending"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]

    order = models.ForeignKey("sales.Order", on_delete=models.PROTECT, related_name="exchanges")
    idempotency_key = models.CharField(max_length=120, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    to_performance = models.ForeignKey("catalog.Performance", on_delete=models.PROTECT, related_name="+")
    # New value − old value of the tickets moved: > 0 was charged, < 0 was refunded.
    difference_cents = models.IntegerField(default=0)
    # cash | card | waive (charge side) or original | cash (refund side); "" when even.
    method = models.CharField(max_length=10, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=SUCCEEDED, db_index=True)
    message = models.CharField(max_length=300, blank=True)
    # A pending card charge of the difference (a refund of it is a RefundSource instead).
    charge = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # What the pending step did, so finishing or undoing it is exact (see sales/exchanges.py).
    pending_state = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Exchange {self.pk} of order {self.order_id} ({self.difference_cents:+d}¢)"


class ExchangeItem(models.Model):
    exchange = models.ForeignKey(Exchange, on_delete=models.CASCADE, related_name="items")
    old_ticket = models.OneToOneField("sales.Ticket", on_delete=models.PROTECT, related_name="exchanged_into")
    new_ticket = models.OneToOneField("sales.Ticket", on_delete=models.PROTECT, related_name="issued_by_exchange")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.old_ticket_id} → {self.new_ticket_id}"
