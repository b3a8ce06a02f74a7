"""Template helpers for the storefront: money, event images, availability wording."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.templatetags.static import static
from django.utils import timezone

from wondertix.catalog import services as catalog
from wondertix.money import format_cents

register = template.Library()

#: At or below this many seats left, a performance says "Only N left".
FEW_LEFT = 10


@register.filter
def money(cents: int | None) -> str:
    return format_cents(cents or 0)


@register.filter
def image_src(path: str) -> str:
    """Event images are a path under static/ or an absolute URL."""
    if not path:
        return static("storefront/img/placeholder.svg")
    if path.startswith(("http://", "https://", "/")):
        return path
    return static(path)


@register.filter
def few_left(state: catalog.PerformanceState) -> bool:
    return state.status == catalog.ON_SALE and state.available <= FEW_LEFT


@register.inclusion_tag("storefront/_availability.html")
def availability(state: catalog.PerformanceState) -> dict:
    return {"state": state, "few": few_left(state), "C": catalog}


@register.filter
def seconds_left(moment: datetime | None) -> int:
    """Whole seconds from now until `moment` (0 when past): the countdown's starting point."""
    if moment is None:
        return 0
    return max(0, int((moment - timezone.now()).total_seconds()))


@register.filter
def minutes_left(moment: datetime | None) -> int:
    return (seconds_left(moment) + 59) // 60
