"""What is for sale: seasons, events, performances and their price types."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Season(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    starts_on = models.DateField()
    ends_on = models.DateField()
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-starts_on"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="season_dates_ordered")
        ]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    season = models.ForeignKey(Season, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    title = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    # A path under static/ or an absolute URL; the storefront shows a placeholder when empty.
    image_url = models.CharField(max_length=500, blank=True)
    # Read aloud by screen readers in place of the image; required whenever image_url is set.
    image_alt = models.CharField(max_length=300, blank=True, default="", db_default="")
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=False, help_text="Shown on the storefront and on sale.")

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.image_url.strip() and not self.image_alt.strip():
            raise ValidationError({"image_alt": "Describe the image for patrons who cannot see it (alt text), or remove the image."})


class PriceType(models.Model):
    """A way to buy a ticket for an event's performances: Adult, Student, Pay what you can…"""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="price_types")
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=200, blank=True)
    price_cents = models.PositiveIntegerField(validators=[MinValueValidator(0)])
    fee_cents = models.PositiveIntegerField(default=0)
    # At most this many tickets of this type per performance (e.g. 20 Student seats).
    limit_per_performance = models.PositiveIntegerField(null=True, blank=True)
    # Pay what you can: the patron enters an amount of at least min_price_cents.
    pay_what_you_can = models.BooleanField(default=False)
    min_price_cents = models.PositiveIntegerField(default=0)
    max_price_cents = models.PositiveIntegerField(default=100_000)
    active = models.BooleanField(default=True)
    # Hidden from the storefront (comps, house seats) but sellable at the box office.
    staff_only = models.BooleanField(default=False)
    sort_order = models.PositiveSmallIntegerField(default=0)
    # Reserved seating: this price applies to seats of this category only (Orchestra $45,
    # Balcony $30). Empty: general admission.
    seat_category = models.ForeignKey("catalog.SeatCategory", null=True, blank=True, on_delete=models.PROTECT, related_name="price_types")

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "name"], name="price_type_name_unique_per_event"),
            models.CheckConstraint(
                condition=Q(min_price_cents__lte=models.F("max_price_cents")),
                name="price_type_pwyc_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.event})"


class Performance(models.Model):
    ON_SALE = "on_sale"
    CANCELED = "canceled"
    STATUS_CHOICES = [(ON_SALE, "On sale"), (CANCELED, "Canceled")]

    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="performances")
    starts_at = models.DateTimeField(db_index=True)
    on_sale_from = models.DateTimeField(null=True, blank=True)
    # Online sales stop here; defaults to the curtain time.
    on_sale_until = models.DateTimeField(null=True, blank=True)
    capacity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Tickets issued (paid or comp, not refunded). Changed only under this row's lock, in the
    # same transaction that writes the tickets, so it always equals the valid ticket count.
    tickets_sold = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=ON_SALE)
    # True while some price type has its own price, fee or limit here (performance_prices).
    # Lets the sale path skip looking for overrides on the (usual) performances without any.
    has_own_prices = models.BooleanField(default=False, db_default=False)
    note = models.CharField(max_length=200, blank=True)
    # Reserved seating: the chart whose seats are sold (capacity = its sellable seats plus its
    # standing areas). Empty: general admission.
    seating_chart = models.ForeignKey("catalog.SeatingChart", null=True, blank=True, on_delete=models.PROTECT, related_name="performances")

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(tickets_sold__lte=models.F("capacity")), name="performance_not_oversold"),
        ]

    def __str__(self) -> str:
        local = timezone.localtime(self.starts_at)
        return f"{self.event.title} — {local:%a %b %-d, %Y %-I:%M %p}"

    @property
    def sales_close_at(self):  # noqa: ANN201
        return self.on_sale_until or self.starts_at

    def is_on_sale(self, now=None) -> bool:  # noqa: ANN001
        now = now or timezone.now()
        if self.status != self.ON_SALE or not self.event.active:
            return False
        if self.on_sale_from and now < self.on_sale_from:
            return False
        return now < self.sales_close_at


class SeasonPrice(models.Model):
    """A season's default price for one price type name. Events added to the season (or
    created in it) get a PriceType from each row they do not already have."""

    season = models.ForeignKey(Season, on_delete=models.CASCADE, related_name="default_prices")
    name = models.CharField(max_length=80)
    price_cents = models.PositiveIntegerField()
    fee_cents = models.PositiveIntegerField(default=0)
    limit_per_performance = models.PositiveIntegerField(null=True, blank=True)
    staff_only = models.BooleanField(default=False)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["season", "name"], name="season_price_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.season})"


# Reserved seating and per-performance prices/tags live in their own modules; imported here so Django sees the models.
from wondertix.catalog.performance_models import ACCESS_TAGS, PerformancePrice, PerformanceTag  # noqa: E402, F401
from wondertix.catalog.seating_models import Seat, SeatCategory, SeatingChart, Section, Venue  # noqa: E402, F401
