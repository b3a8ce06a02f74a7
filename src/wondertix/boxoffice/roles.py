"""Staff roles. A role is a Django group; admins (superusers or the admin group) can do everything.

    admin       everything
    box_office  sell, refund, exchange, contacts, reports
    usher       door list and check-in only
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

ADMIN = "admin"
BOX_OFFICE = "box_office"
USHER = "usher"
ROLES = (ADMIN, BOX_OFFICE, USHER)


def roles_of(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return set()
    if getattr(user, "is_superuser", False):
        return {ADMIN}
    cached = getattr(user, "_wondertix_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))  # type: ignore[union-attr]
        user._wondertix_roles = cached  # type: ignore[union-attr]
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser, *allowed: str) -> bool:
    """True when the user holds one of `allowed`; admin satisfies every role."""
    mine = roles_of(user)
    return bool(mine) and (ADMIN in mine or bool(mine & set(allowed)))


def require_role(*allowed: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """View decorator: anonymous → login page; signed in without the role → 403."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, *allowed):
                raise PermissionDenied("Your staff role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def ensure_role_groups(**kwargs: Any) -> None:
    """post_migrate hook: the three role groups always exist (idempotent)."""
    from django.contrib.auth.models import Group

    using = kwargs.get("using", "default")
    for name in ROLES:
        Group.objects.using(using).get_or_create(name=name)
