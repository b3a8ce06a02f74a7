"""Demo data for dev: a season of three shows, several performances each, and one nearly
sold-out performance. Idempotent: running it again changes nothing."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from wondertix.catalog.models import Event, Performance, PriceType, Season
from wondertix.sales.models import DiscountCode

SHOWS: list[dict[str, Any]] = [
    {
        "slug": "the-tempest",
        "title": "The Tempest",
        "description": "Shakespeare's last play: a storm, an island, a magician and his daughter. Outdoors-feel staging with live music.",
        "duration": 150,
        "image": "storefront/img/tempest.svg",
        "alt": "A ship tossed on storm waves under a dark sky",
    },
    {
        "slug": "a-raisin-in-the-sun",
        "title": "A Raisin in the Sun",
        "description": "Lorraine Hansberry's landmark drama about a family's dreams on Chicago's South Side.",
        "duration": 140,
        "image": "storefront/img/raisin.svg",
        "alt": "A potted plant on a sunlit windowsill",
    },
    {
        "slug": "little-shop-of-horrors",
        "title": "Little Shop of Horrors",
        "description": "The musical comedy about a florist's assistant and a plant with an appetite. Not for the squeamish!",
        "duration": 120,
        "image": "storefront/img/little-shop.svg",
        "alt": "A giant flowering plant with an open mouth",
    },
]


class Command(BaseCommand):
    help = "Seed demo seasons, events, performances, price types and discount codes."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            created = self.seed()
        self.stdout.write(self.style.SUCCESS("Demo data created." if created else "Demo data already present."))

    def seed(self) -> bool:
        today = timezone.localdate()
        season, made = Season.objects.get_or_create(
            slug="demo-season",
            defaults={"name": f"{today.year}–{today.year + 1} Season", "starts_on": today, "ends_on": today + timedelta(days=365)},
        )
        if not made:
            return False
        tz = timezone.get_current_timezone()
        for index, show in enumerate(SHOWS):
            event = Event.objects.create(
                season=season, slug=show["slug"], title=show["title"], description=show["description"],
                duration_minutes=show["duration"], image_url=show["image"], image_alt=show["alt"], active=True,
            )
            adult = PriceType.objects.create(event=event, name="Adult", price_cents=3500, fee_cents=250, sort_order=1)
            PriceType.objects.create(event=event, name="Student", description="Bring a student ID", price_cents=1500, fee_cents=250, limit_per_performance=20, sort_order=2)
            PriceType.objects.create(event=event, name="Senior (65+)", price_cents=2800, fee_cents=250, sort_order=3)
            PriceType.objects.create(
                event=event, name="Pay what you can", description="Every seat should be within reach",
                price_cents=500, min_price_cents=500, max_price_cents=10000, pay_what_you_can=True,
                limit_per_performance=10, sort_order=4,
            )
            PriceType.objects.create(event=event, name="Comp", price_cents=0, staff_only=True, sort_order=9)
            for n in range(4):
                day = today + timedelta(days=7 + index * 3 + n * 7)
                starts = timezone.make_aware(datetime.combine(day, time(19, 30) if n % 3 else time(14, 0)), tz)
                perf = Performance.objects.create(event=event, starts_at=starts, capacity=200, on_sale_from=timezone.now() - timedelta(days=30))
                if index == 0 and n == 0:
                    # Nearly sold out: 196 of 200 seats gone to walk-up sales.
                    self._sell_out(perf, adult, 196)
        DiscountCode.objects.create(code="WELCOME10", description="10% off for first-time patrons", kind=DiscountCode.PERCENT, value=10)
        DiscountCode.objects.create(code="GROUP4", description="$5 off each ticket for 4 or more", kind=DiscountCode.AMOUNT, value=500, min_tickets=4)
        return True

    def _sell_out(self, perf: Performance, price_type: PriceType, count: int) -> None:
        from wondertix.sales.models import Order, Ticket

        order = Order.objects.create(
            status=Order.PAID, channel=Order.BOX_OFFICE, buyer_name="Walk-up sales", subtotal_cents=0,
            total_cents=0, paid_at=timezone.now(),
        )
        Ticket.objects.bulk_create(Ticket(order=order, performance=perf, price_type=price_type, price_cents=0) for _ in range(count))
        Performance.objects.filter(pk=perf.pk).update(tickets_sold=count)
