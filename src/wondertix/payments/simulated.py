"""The one rule about the simulated card processor ("test"): real data never meets it.

An environment whose data is real (``DATA_IS_REAL``: prd, bak) sells real tickets to real
patrons. Confirming such an order with a simulated card would hand out a free, valid ticket,
so the rule is enforced at every layer that could let one through:

- the spec refuses it (wtx, `app.simulated_payments_on_real_data`),
- a process started that way fails its system checks (`migrate` and every gunicorn worker),
- `/readyz` answers 503, so no load balancer sends it traffic,
- and the simulated provider itself declines every card.

The single exception is a local demonstration of prd, declared in so many words in the spec
(``SIMULATED_PAYMENTS_ON_REAL_DATA``); then, as whenever payments are simulated, every page,
email and ticket says TEST — NOT VALID.
"""

from __future__ import annotations

from django.conf import settings

TEST_MARK = "TEST — NOT VALID"


def payments_are_simulated() -> bool:
    """Online card payments go to the simulated processor: nothing sold here is a real ticket."""
    return bool(settings.PAYMENT_PROVIDER == "test")


def refused_on_real_data() -> bool:
    """True where a simulated payment would confirm a real order: the configuration to refuse."""
    return bool(settings.DATA_IS_REAL and not settings.SIMULATED_PAYMENTS_ON_REAL_DATA)


def misconfiguration() -> str:
    """Why this process must not serve, or '' when the payment configuration is sound."""
    if payments_are_simulated() and refused_on_real_data():
        return (
            "PAYMENT_PROVIDER is the simulated card processor (\"test\") but DATA_IS_REAL: an "
            "environment with real data never confirms an order with a simulated payment. Use "
            "the real processor, or declare a local demo (SIMULATED_PAYMENTS_ON_REAL_DATA)."
        )
    return ""
