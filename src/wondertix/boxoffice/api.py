"""Staff API routes (token-authenticated; see wondertix.api.auth)."""

from django.http import HttpRequest
from ninja import Router, Schema

from wondertix.api.auth import StaffToken
from wondertix.boxoffice.roles import roles_of

router = Router(tags=["staff"])


class WhoAmIOut(Schema):
    username: str
    roles: list[str]


@router.get("/whoami", response=WhoAmIOut, auth=StaffToken(), summary="The staff user a token belongs to")
def whoami(request: HttpRequest) -> dict:
    return {"username": request.user.get_username(), "roles": sorted(roles_of(request.user))}
