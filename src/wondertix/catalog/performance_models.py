"""What one performance changes about its event: price overrides and accessibility tags.

A preview sells cheaper and a Saturday night dearer without a second set of price types:
a `PerformancePrice` row overrides a price type's price, fee or per-performance limit for
one performance only. Empty fields inherit the price type's own value.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

# The accessibility tags staff tick per performance. Extend here: the code is what the URL
# filter (`?access=asl`) and the API use; the label is what patrons read.
ACCESS_TAGS: dict[str, str] = {
    "asl": "ASL-interpreted",
    "captioned": "Captioned",
    "audio_described": "Audio-described",
    "relaxed": "Relaxed performance",
}


class PerformancePrice(models.Model):
    performance = models.ForeignKey("catalog.Performance", on_delete=models.CASCADE, related_name="price_overrides")
    price_type = models.ForeignKey("catalog.PriceType", on_delete=models.CASCADE, related_name="performance_overrides")
    price_cents = models.PositiveIntegerField(null=True, blank=True)
    fee_cents = models.PositiveIntegerField(null=True, blank=True)
    limit_per_performance = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["performance", "price_type"], name="performance_price_unique"),
            models.CheckConstraint(
                condition=Q(price_cents__isnull=False) | Q(fee_cents__isnull=False) | Q(limit_per_performance__isnull=False),
                name="performance_price_overrides_something",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.price_type.name} at performance {self.performance_id}"


class PerformanceTag(models.Model):
    performance = models.ForeignKey("catalog.Performance", on_delete=models.CASCADE, related_name="access_tags")
    # A key of ACCESS_TAGS, checked by the service (no `choices`: a new tag needs no migration).
    tag = models.CharField(max_length=32)

    class Meta:
        ordering = ["tag"]
        constraints = [models.UniqueConstraint(fields=["performance", "tag"], name="performance_tag_unique")]

    def __str__(self) -> str:
        return ACCESS_TAGS.get(self.tag, self.tag)
