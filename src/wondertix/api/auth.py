"""Staff API authentication: `Authorization: Bearer <token>` minted by `wondertix mint_staff_token`."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from wondertix.ops import tokens


class StaffToken(HttpBearer):
    def __init__(self, *roles: str) -> None:
        super().__init__()
        self.roles = set(roles)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = tokens.verify(token)
        if user is None or not user.is_staff:
            return None
        if self.roles:
            from wondertix.boxoffice.roles import user_has_role

            if not user_has_role(user, *self.roles):
                return None
        request.user = user  # type: ignore[assignment]
        return user
