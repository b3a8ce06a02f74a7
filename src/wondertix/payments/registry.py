"""Which provider handles a payment: the environment's online provider, or a box-office one."""

from __future__ import annotations

from django.conf import settings

from wondertix.payments.providers.base import PaymentProvider
from wondertix.payments.providers.test import CashProvider, TestCardProvider


def get_provider(name: str | None = None) -> PaymentProvider:
    name = name or settings.PAYMENT_PROVIDER
    if name == "test":
        return TestCardProvider()
    if name == "cash":
        return CashProvider()
    if name == "stripe":
        from wondertix.payments.providers.stripe import StripeProvider

        return StripeProvider()
    raise ValueError(f"Unknown payment provider {name!r}")
