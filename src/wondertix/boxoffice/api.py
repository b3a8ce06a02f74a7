"""Staff API routes (token-authenticated; see wondertix.api.auth)."""

from ninja import Router

router = Router(tags=["staff"])
