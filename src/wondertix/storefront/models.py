"""What the storefront itself records: requests for "Find my tickets" (for their rate limits),
and patrons' sign-in links (storefront.account)."""

from __future__ import annotations

from django.db import models


class TicketLookup(models.Model):
    """One "Find my tickets" request. Counted per address and per client address to cap how
    often anyone can make the theater send mail (storefront.lookup). The address is kept
    only as a keyed digest: this table is not a list of who asked."""

    created_at = models.DateTimeField(auto_now_add=True)
    address_digest = models.CharField(max_length=64)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    # The email queued for it; empty when the address had asked too often already.
    email = models.ForeignKey("ops.OutboxEmail", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["address_digest", "created_at"], name="lookup_address_created"),
            models.Index(fields=["client_address", "created_at"], name="lookup_client_created"),
        ]

    def __str__(self) -> str:
        return f"Ticket lookup {self.pk} at {self.created_at:%Y-%m-%d %H:%M}"



class PatronSignIn(models.Model):
    """One request for a sign-in link. The link's secret is never stored: it is derived from
    `salt` with the site's SECRET_KEY when the email is rendered, and only its SHA-256 is kept
    (`token_hash`), so a copy of the database alone opens no account. Single use (`used_at`),
    valid until `expires_at`. Like TicketLookup, the address is kept only as a keyed digest;
    the row doubles as the count for the request caps."""

    created_at = models.DateTimeField(auto_now_add=True)
    address_digest = models.CharField(max_length=64)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    salt = models.CharField(max_length=32, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # The email that carries the link; empty when the address had asked too often already.
    email = models.ForeignKey("ops.OutboxEmail", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["address_digest", "created_at"], name="signin_address_created"),
            models.Index(fields=["client_address", "created_at"], name="signin_client_created"),
        ]

    def __str__(self) -> str:
        return f"Patron sign-in {self.pk} at {self.created_at:%Y-%m-%d %H:%M}"
