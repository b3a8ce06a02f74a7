from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who did what, when, with the state before and after. Written by services, never edited."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class OutboxEmail(models.Model):
    """An email to send, written in the same transaction as what it reports (an order, a
    gift, a resend by staff), and delivered by `ops.outbox` after the commit — with retries,
    so a mail outage delays an email instead of losing it. Rendered when sent, from the
    current order: the row holds no message body, so no ticket code or order link is copied
    into it.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    STATUSES = [(PENDING, "Waiting to be sent"), (SENDING, "Sending"), (SENT, "Sent"), (FAILED, "Failed")]

    ORDER_CONFIRMATION = "order_confirmation"
    REFUND = "refund"
    EXCHANGE = "exchange"
    PERFORMANCE_CANCELED = "performance_canceled"
    ORDER_LINKS = "order_links"  # "Find my tickets": a link to each order of one address
    PATRON_SIGN_IN = "patron_sign_in"  # a patron's one-time sign-in link (storefront.account)
    KINDS = [
        (ORDER_CONFIRMATION, "Order confirmation"),
        (REFUND, "Refund"),
        (EXCHANGE, "Exchange"),
        (PERFORMANCE_CANCELED, "Performance canceled"),
        (ORDER_LINKS, "Links to the patron's orders"),
        (PATRON_SIGN_IN, "Patron sign-in link"),
    ]

    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=40, choices=KINDS)
    order = models.ForeignKey("sales.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    # What a change email reports (the email is rendered from it when sent).
    refund = models.ForeignKey("sales.Refund", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    exchange = models.ForeignKey("sales.Exchange", null=True, blank=True, on_delete=models.CASCADE, related_name="emails")
    recipient = models.EmailField(max_length=254)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a pending email is next due; while sending, when the claim lapses (a sender that
    # died mid-send leaves the row due again after that, so the email is never stuck).
    next_attempt_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="ops_outbox_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"
