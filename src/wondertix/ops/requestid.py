"""The current request's id, readable from anywhere in the request (logs, error pages, audit)."""

from __future__ import annotations

import contextvars
import re
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str | None:
    return _request_id.get()


def begin(incoming: str | None) -> tuple[str, contextvars.Token[str | None]]:
    """Use the proxy's id when it is well formed, else mint one."""
    rid = incoming if incoming and _VALID.match(incoming) else uuid.uuid4().hex
    return rid, _request_id.set(rid)


def end(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)
