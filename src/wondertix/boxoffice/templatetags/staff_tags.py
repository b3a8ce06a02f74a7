from django import template

from wondertix.money import format_cents

register = template.Library()


@register.filter
def cents(value: int | None) -> str:
    """Integer cents → '$12.50' (empty for None)."""
    return "" if value is None else format_cents(int(value))


@register.simple_tag(takes_context=True)
def staff_access(context: template.Context) -> dict[str, bool]:
    """What the signed-in user's role opens, so the navigation shows only usable areas."""
    from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, USHER, user_has_role

    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None:
        return {"door": False, "sell": False, "admin": False}
    return {
        "door": user_has_role(user, USHER, BOX_OFFICE),
        "sell": user_has_role(user, BOX_OFFICE),
        "admin": user_has_role(user, ADMIN),
    }


@register.filter
def changes(value: object) -> list[tuple[str, str]]:
    """An audit before/after dict as (field, value) pairs for display."""
    if not isinstance(value, dict):
        return [] if value in (None, "") else [("", str(value))]
    return [(str(k), "—" if v is None or v == "" else str(v)) for k, v in value.items()]
