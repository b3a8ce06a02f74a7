"""A signed-in subscriber turns their subscription's remaining tickets into seats online.

The redemption is the box office's (patrons.subscriptions.redeem: the subscription's row lock,
then the sale path with its performance lock and capacity re-check). This module decides what
a patron may redeem: their own active subscriptions, for general-admission performances of
the subscription's season that are on sale now, as the show's first ticket type sold online.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from wondertix.catalog.models import Performance, PriceType
from wondertix.patrons.models import Patron, Redemption, Subscription
from wondertix.patrons.subscriptions import redeem
from wondertix.sales import errors


@dataclass
class Redeemable:
    subscription: Subscription
    performances: list[Performance]


def _performances(sub: Subscription) -> list[Performance]:
    now = timezone.now()
    candidates = (Performance.objects.filter(event__season_id=sub.subscription_type.season_id, seating_chart__isnull=True, starts_at__gt=now)
                  .select_related("event").order_by("starts_at", "pk"))
    return [p for p in candidates if p.is_on_sale(now)]


def redeemable(patron: Patron) -> list[Redeemable]:
    subs = Subscription.objects.filter(patron=patron, status=Subscription.ACTIVE).select_related("subscription_type__season").order_by("created_at", "pk")
    return [Redeemable(s, _performances(s)) for s in subs]


def price_type_for(performance: Performance) -> PriceType:
    pt = PriceType.objects.filter(event_id=performance.event_id, active=True, staff_only=False, pay_what_you_can=False).order_by("sort_order", "pk").first()
    if pt is None:
        raise errors.invalid("no_price_type", "This performance has no tickets to redeem a subscription for.", field="performance")
    return pt


def redeem_online(patron: Patron, subscription_id: int, performance_id: int, quantity: int, *, key: str) -> Redemption:
    sub = Subscription.objects.filter(pk=subscription_id, patron=patron).select_related("subscription_type").first()
    if sub is None:
        raise errors.not_found("unknown_subscription", "That subscription is not yours.")
    perf = next((p for p in _performances(sub) if p.pk == performance_id), None)
    if perf is None:
        raise errors.invalid("invalid_performance", "Choose a performance of the season this subscription is for.", field="performance")
    return redeem(sub.pk, perf.pk, price_type_for(perf).pk, quantity, idempotency_key=f"patron:{key}")
