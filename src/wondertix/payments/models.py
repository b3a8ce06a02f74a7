from django.db import models

from wondertix.sales.models import Order


class Payment(models.Model):
    """Money moving for an order: a charge, or a refund (negative direction, kind=refund)."""

    CHARGE = "charge"
    REFUND = "refund"
    KIND_CHOICES = [(CHARGE, "Charge"), (REFUND, "Refund")]
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATUS_CHOICES = [(PENDING, "Pending"), (SUCCEEDED, "Succeeded"), (FAILED, "Failed")]

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=8, choices=KIND_CHOICES, default=CHARGE)
    provider = models.CharField(max_length=20)  # test | stripe | cash | comp
    reference = models.CharField(max_length=120, blank=True, db_index=True)
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=PENDING)
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.provider} {self.amount_cents}¢ {self.status}"


class WebhookEvent(models.Model):
    """Every provider webhook event id processed, so a redelivery is a no-op."""

    provider = models.CharField(max_length=20)
    event_id = models.CharField(max_length=120)
    event_type = models.CharField(max_length=80)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


class CheckoutSession(models.Model):
    """A hosted payment page (Stripe Checkout) for one pending order.

    `priced` keeps the ticket-by-ticket prices the patron agreed to when the session was made,
    so the tickets issued when the payment arrives carry exactly what was charged, even if a
    price or fee is edited in between.
    """

    OPEN = "open"
    COMPLETE = "complete"
    EXPIRED = "expired"
    STATUS_CHOICES = [(OPEN, "Open"), (COMPLETE, "Complete"), (EXPIRED, "Expired")]

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="checkout_session")
    provider = models.CharField(max_length=20, default="stripe")
    # Empty until the provider has answered (the request is retried with the same key).
    session_id = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=OPEN)
    priced = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "session_id"], condition=~models.Q(session_id=""), name="checkout_session_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} checkout {self.session_id or '(creating)'} for order {self.order_id} ({self.status})"


class TerminalPayment(models.Model):
    """A card payment on a card reader at the box-office window (Stripe Terminal).

    It pays a pending order (a window sale: its seats are held and its prices kept in the
    order's CheckoutSession, exactly like an online payment) or the price difference of a
    pending exchange. The webhook (or the clerk's page asking Stripe) confirms it; the row
    only tracks what the reader is doing, so the clerk can see it, retry or cancel.
    """

    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    CANCELED = "canceled"
    STATUS_CHOICES = [(WAITING, "Waiting for the card"), (SUCCEEDED, "Paid"), (DECLINED, "Declined"), (CANCELED, "Canceled")]

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="terminal_payments")
    exchange = models.ForeignKey("sales.Exchange", null=True, blank=True, on_delete=models.PROTECT, related_name="terminal_payments")
    provider = models.CharField(max_length=20, default="stripe")
    reader_id = models.CharField(max_length=120)
    # Empty until the provider has answered (the request is retried with the same key).
    payment_intent = models.CharField(max_length=255, blank=True)
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=WAITING)
    message = models.CharField(max_length=300, blank=True)
    # When the clerk's page first saw Stripe report the payment succeeded: the webhook confirms
    # it; the page steps in only if the webhook is late (payments.terminal.WEBHOOK_GRACE).
    succeeded_seen_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "payment_intent"], condition=~models.Q(payment_intent=""), name="terminal_payment_once"
            ),
            models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="terminal_payment_positive"),
        ]

    def __str__(self) -> str:
        return f"reader {self.reader_id} {self.amount_cents}¢ for order {self.order_id} ({self.status})"
