"""Staff API routes for refunds and exchanges (token-authenticated; see wondertix.api.auth)."""

from ninja import Router

router = Router(tags=["staff"])
