"""Staff API tokens: signed with the environment's own STAFF_API_TOKEN_KEY.

A token minted in one environment fails signature checks in every other one, because each
environment owns a different key (see deploy/environments.toml).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing

SALT = "wondertix.staff-api-token"
DEFAULT_MAX_AGE = 90 * 24 * 3600


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(key=settings.STAFF_API_TOKEN_KEY, salt=SALT)


def mint(user: User) -> str:
    # The password hash fragment makes a password change revoke old tokens.
    return _signer().sign_object({"u": user.pk, "p": user.password[-12:]})


def verify(token: str, max_age: int = DEFAULT_MAX_AGE) -> User | None:
    try:
        data = _signer().unsign_object(token, max_age=max_age)
    except signing.BadSignature:
        return None
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or user.password[-12:] != data.get("p"):
        return None
    return user
