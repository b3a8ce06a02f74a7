"""Writing the audit trail. Services call `record` inside their own transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User

from wondertix.ops.models import AuditEntry
from wondertix.ops.requestid import current_request_id

Actor = User | AnonymousUser | None


def entry(
    action: str,
    *,
    actor: Actor = None,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEntry:
    """An unsaved entry (for bulk_create on the hot path)."""
    user = actor if isinstance(actor, User) else None
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return AuditEntry(
        actor=user,
        actor_label=actor_label or (user.get_username() if user else "public"),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
        request_id=current_request_id() or "",
    )


def record(action: str, **kwargs: Any) -> AuditEntry:
    e = entry(action, **kwargs)
    e.save()
    return e
