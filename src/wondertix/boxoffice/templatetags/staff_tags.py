from django import template

from wondertix.money import format_cents

register = template.Library()


@register.filter
def cents(value: int | None) -> str:
    """Integer cents → '$12.50' (empty for None)."""
    return "" if value is None else format_cents(int(value))
