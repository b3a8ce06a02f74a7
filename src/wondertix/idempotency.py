"""Doing a write at most once per idempotency key.

Every use case that creates something on a client's request (an order, a refund, an
exchange, a gift, a subscription, a redemption) stores the request's key in the same
transaction as what it creates, under a unique constraint. `run_once` is the one pattern
around that: look for an earlier result, else do the work in a transaction, and if a
concurrent request with the same key committed first (the unique insert fails), answer
with its result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, models, transaction

from wondertix.sales import errors

T = TypeVar("T")


def run_once(find: Callable[[], T | None], work: Callable[[], T]) -> tuple[T, bool]:
    """(result, created): the earlier result for this key, or `work()` run in a transaction."""
    existing = find()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return work(), True
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False


def find_by_key(queryset: models.QuerySet[Any] | models.Manager[Any], key: str | None, fingerprint: str, *, message: str) -> Any:
    """The row stored with `key`, or None. The same key sent with a different request is refused."""
    if not key:
        return None
    found = next(iter(queryset.filter(idempotency_key=key).order_by()[:1]), None)
    if found is not None and fingerprint and found.request_fingerprint != fingerprint:
        raise errors.invalid("idempotency_key_reused", message)
    return found
