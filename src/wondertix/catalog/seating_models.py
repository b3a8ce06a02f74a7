"""Reserved seating: venues, seating charts, sections, seat categories and seats.

A performance either uses a seating chart or is general admission (no chart, the default).
A chart may mix reserved sections with a standing area: a *standing* seat category has no
seats, its `limit_per_performance` is the size of the area, and its price types sell tickets
without a seat (counted against that limit under the performance lock).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Venue(models.Model):
    name = models.CharField(max_length=120, unique=True)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SeatingChart(models.Model):
    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="charts")
    name = models.CharField(max_length=120)

    class Meta:
        ordering = ["venue", "name"]
        constraints = [models.UniqueConstraint(fields=["venue", "name"], name="chart_name_unique_per_venue")]

    def __str__(self) -> str:
        return f"{self.venue} — {self.name}"


class SeatCategory(models.Model):
    """Orchestra, Balcony, Standing…: what a seat costs is decided by its category (price
    types name one). `rank` orders categories best first (1 = best) for best-available."""

    chart = models.ForeignKey(SeatingChart, on_delete=models.CASCADE, related_name="categories")
    name = models.CharField(max_length=80)
    rank = models.PositiveSmallIntegerField(default=1)
    color = models.CharField(max_length=7, default="#4a7bd0")
    # At most this many tickets of this category per performance. For a standing category
    # this is the size of the standing area (its tickets have no seat).
    limit_per_performance = models.PositiveIntegerField(null=True, blank=True)
    standing = models.BooleanField(default=False)

    class Meta:
        ordering = ["rank", "id"]
        constraints = [
            models.UniqueConstraint(fields=["chart", "name"], name="seat_category_name_unique_per_chart"),
            models.CheckConstraint(condition=Q(standing=False) | Q(limit_per_performance__isnull=False), name="standing_category_has_capacity"),
        ]

    def __str__(self) -> str:
        return self.name


class Section(models.Model):
    chart = models.ForeignKey(SeatingChart, on_delete=models.CASCADE, related_name="sections")
    name = models.CharField(max_length=80)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [models.UniqueConstraint(fields=["chart", "name"], name="section_name_unique_per_chart")]

    def __str__(self) -> str:
        return self.name


class Seat(models.Model):
    """One seat. Position (x, y) is in chart units (one unit ≈ one seat width); seats of a row
    are adjacent when consecutive by x with no aisle gap between them (seating.rows)."""

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="seats")
    row = models.CharField(max_length=10)
    label = models.CharField(max_length=10)
    x = models.IntegerField()
    y = models.IntegerField()
    category = models.ForeignKey(SeatCategory, on_delete=models.PROTECT, related_name="seats")
    accessible = models.BooleanField(default=False)
    companion = models.BooleanField(default=False)
    restricted_view = models.BooleanField(default=False)
    # Kept back for the house: sold or held by staff only, never offered to the public.
    house_seat = models.BooleanField(default=False)

    class Meta:
        ordering = ["section", "y", "x", "id"]
        constraints = [models.UniqueConstraint(fields=["section", "row", "label"], name="seat_label_unique_per_row")]

    def __str__(self) -> str:
        return f"{self.section.name} row {self.row} seat {self.label}"

    FLAGS = ("accessible", "companion", "restricted_view", "house_seat")
