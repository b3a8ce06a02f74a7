"""Deploy checks: a process with DEBUG off refuses insecure or missing settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def wondertix_deploy_checks(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    if not settings.SECRET_KEY or len(settings.SECRET_KEY) < 40:
        errors.append(Error("SECRET_KEY is missing or too short.", id="wondertix.E001"))
    if settings.STAFF_API_TOKEN_KEY == settings.SECRET_KEY:
        errors.append(
            Error("STAFF_API_TOKEN_KEY must be its own secret.", id="wondertix.E002")
        )
    if settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK:
        errors.append(
            Error("WONDERTIX_UNSAFE_DISABLE_SALES_LOCK is a test switch.", id="wondertix.E003")
        )
    if settings.PAYMENT_PROVIDER == "stripe" and not (
        settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET
    ):
        errors.append(Error("Stripe keys are missing.", id="wondertix.E004"))
    return errors


@register()
def refuse_simulated_payments_on_real_data(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Always on (not only with --deploy): `migrate`, the release phase, runs it, and so does
    every app server as it starts (wsgi.py), so such a release never serves."""
    from wondertix.payments import simulated

    reason = simulated.misconfiguration()
    return [Error(reason, id="wondertix.E007")] if reason else []


@register()
def refuse_unsafe_switch_without_debug(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    if settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK and not settings.DEBUG:
        return [Error("The sales lock may only be disabled with DEBUG on.", id="wondertix.E005")]
    if not settings.DEBUG and not settings.SECRET_KEY:
        return [Error("SECRET_KEY must be set when DEBUG is off.", id="wondertix.E006")]
    return []


@register()
def ticket_paper_sizes(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """A mistyped ticket size refuses to start, instead of failing the first print or the
    first confirmation email."""
    from django.core.exceptions import ImproperlyConfigured

    from wondertix.sales import ticket_files

    problems = []
    for parse in (ticket_files.page_size, ticket_files.stock_size):
        try:
            parse()
        except ImproperlyConfigured as exc:
            problems.append(Error(str(exc), id="wondertix.E021"))
    return problems
