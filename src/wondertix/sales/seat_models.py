"""Which seat of which performance is taken, by whom: the database's guard against selling a
seat twice."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from wondertix.catalog.models import Performance, Seat


class SeatClaim(models.Model):
    """A seat taken for a performance: by a valid ticket (`expires_at` empty) or by a hold
    line until `expires_at`.

    (performance, seat) is unique over every row, so two buyers can never both own a seat:
    the second INSERT of a claim waits for the first transaction and then finds the row. An
    expired hold's claim is deleted by the next sale that wants its seat, inside that sale's
    transaction (seating.claims), so expiry needs no background job; a released hold's claims
    go with its lines (CASCADE); a refunded or exchanged ticket's claim is deleted when its
    seat is given back.
    """

    performance = models.ForeignKey(Performance, on_delete=models.CASCADE, related_name="seat_claims")
    seat = models.ForeignKey(Seat, on_delete=models.PROTECT, related_name="claims")
    ticket = models.OneToOneField("sales.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="seat_claim")
    hold_line = models.ForeignKey("sales.HoldLine", null=True, blank=True, on_delete=models.CASCADE, related_name="seat_claims")
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["performance", "seat"], name="seat_sold_once_per_performance"),
            # Exactly one owner: a ticket (for good) or a hold line (until it expires).
            models.CheckConstraint(
                condition=(Q(ticket__isnull=False, hold_line__isnull=True, expires_at__isnull=True)
                           | Q(ticket__isnull=True, hold_line__isnull=False, expires_at__isnull=False)),
                name="seat_claim_one_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"seat {self.seat_id} of performance {self.performance_id}"
