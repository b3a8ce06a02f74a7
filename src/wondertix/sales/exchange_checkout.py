"""A patron's online exchange whose new tickets cost more, paid on the processor's own page
(Stripe Checkout), with the same exactly-once webhook as the storefront's orders.

The exchange is written PENDING under the order and performance locks (sales.exchanges with
`hosted`): the old tickets are marked exchanged, the new ones issued canceled and counted on
the target performance, so the seats are secured while the patron pays, as a cart's hold
secures them. The payment page is for the difference only; its metadata names the exchange
(`exchange_id`), which is how the webhook (payments.services) tells it from an order's page.

- paid: the exchange is finished in the webhook's transaction (new tickets valid, old seats
  back on sale, the exchange email queued) — once per event id, a redelivery is a no-op;
- the page expired or the payment failed: the exchange is undone (old tickets valid again,
  the target's seats released);
- paid after the exchange was undone (its seats released, perhaps sold since), paid twice, or
  for another amount: the payment is refunded to the card (payments.services) and the patron
  is emailed that their tickets were not changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from wondertix.money import format_cents
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.registry import get_provider
from wondertix.sales import change_emails, errors, exchanges
from wondertix.sales.pending import SESSION_MINUTES, NeedsRefund
from wondertix.sales.refund_models import Exchange

METADATA_KEY = "exchange_id"


def hosted_available() -> bool:
    """Whether the configured processor takes the difference on its own page."""
    provider = get_provider(settings.PAYMENT_PROVIDER)
    return not provider.synchronous and hasattr(provider, "create_checkout")


def page_url(exchange: Exchange, *, cancel_url: str) -> str:
    """The payment page of a pending exchange's difference: the one it has while it is open,
    else a new one. A finished exchange sends the patron to their order."""
    order = exchange.order
    base = settings.SITE_URL.rstrip("/")
    if exchange.status == Exchange.SUCCEEDED:
        return f"{base}/orders/{order.token}/"
    if exchange.status != Exchange.PENDING or exchange.charge_id is None:
        raise errors.conflict("exchange_not_pending", "This exchange is no longer waiting for a payment. Your tickets were not changed.")
    page = (exchange.pending_state or {}).get("checkout") or {}
    now = timezone.now()
    expires = datetime.fromisoformat(page["expires_at"]) if page.get("expires_at") else None
    if page.get("url") and expires is not None and expires > now + timedelta(minutes=1):
        return str(page["url"])
    if page.get("session_id") or (expires is not None and expires <= now + timedelta(minutes=1)):
        raise errors.conflict("exchange_expired", "The time to pay the difference ran out. Your tickets were not changed; please start the exchange again.")
    if expires is None:
        # Written before asking the processor: the request's key is derived from it (a retry
        # after no answer asks again with the same key), and the reconciliation finds it.
        expires = now + timedelta(minutes=SESSION_MINUTES)
        _save_page(exchange.pk, {"expires_at": expires.isoformat()})
    target = exchange.to_performance
    local = timezone.localtime(target.starts_at)
    provider: Any = get_provider(settings.PAYMENT_PROVIDER)
    try:
        hosted = provider.create_checkout(
            order_token=order.token, order_reference=order.reference, amount_cents=exchange.difference_cents,
            description=f"Exchange to {target.event.title}, {local:%a %b} {local.day}: price difference {format_cents(exchange.difference_cents)}",
            buyer_email=order.buyer_email, success_url=f"{base}/orders/{order.token}/", cancel_url=cancel_url,
            expires_at=expires, idempotency_key=f"wondertix-exchange-{exchange.pk}-{int(expires.timestamp())}",
            metadata={METADATA_KEY: str(exchange.pk)},
        )
    except ProviderUnavailable as exc:
        raise errors.SaleError("payment_unavailable", str(exc) or "The payment service could not be reached.", status=503) from exc
    _save_page(exchange.pk, {"session_id": hosted.session_id, "url": hosted.url, "expires_at": hosted.expires_at.isoformat()})
    return hosted.url


def _save_page(exchange_id: int, page: dict[str, str]) -> None:
    with transaction.atomic():
        locked = Exchange.objects.select_for_update().get(pk=exchange_id)
        locked.pending_state = dict(locked.pending_state or {}) | {"checkout": page}
        locked.save(update_fields=["pending_state"])


def stale_pages(before: datetime, limit: int = 200) -> list[tuple[Exchange, dict[str, Any]]]:
    """Pending exchanges whose payment page ended before `before` (for the reconciliation,
    when the page's webhook never arrived): (exchange, its page)."""
    rows = Exchange.objects.filter(status=Exchange.PENDING, charge__isnull=False).select_related("order").order_by("created_at", "pk")
    found = []
    for exchange in rows[: limit * 5]:
        page = (exchange.pending_state or {}).get("checkout") or {}
        if page.get("expires_at") and datetime.fromisoformat(page["expires_at"]) < before:
            found.append((exchange, page))
    return found[:limit]


def exchange_of(facts: dict[str, Any], exchange_id: str) -> Exchange | None:
    """The exchange a page's metadata names, if it belongs to the order the page was for."""
    try:
        pk = int(exchange_id)
    except ValueError:
        return None
    return Exchange.objects.filter(pk=pk, order__token=facts["order_token"]).first()


def paid(facts: dict[str, Any], exchange_id: str) -> str:
    """The webhook says the difference was paid: finish the exchange (in the webhook's
    transaction), or raise NeedsRefund when it cannot be (nothing is changed)."""
    exchange = exchange_of(facts, exchange_id)
    if exchange is None:
        return "ignored_not_ours"
    reference = facts["payment_reference"]
    charge = Payment.objects.filter(pk=exchange.charge_id).first() if exchange.charge_id else None
    if charge is not None and reference and charge.reference == reference and charge.status == Payment.SUCCEEDED:
        return "exchange_paid"  # accounted for already (another event about the same payment)
    if exchange.status == Exchange.FAILED:
        raise NeedsRefund("the exchange was undone before the payment arrived: its seats were released")
    if exchange.status != Exchange.PENDING:
        raise NeedsRefund("the exchange was already paid")
    if facts["amount_cents"] != exchange.difference_cents or str(facts["currency"]).lower() != settings.CURRENCY.lower():
        raise NeedsRefund(f"the amount paid ({facts['amount_cents']} {facts['currency']}) is not the price difference ({exchange.difference_cents})")
    done = exchanges.finish_card_payment(exchange.pk, ok=True, reference=reference)
    if done.status != Exchange.SUCCEEDED:
        raise NeedsRefund("the exchange could not be finished")
    return "exchange_paid"


def ended(facts: dict[str, Any], exchange_id: str, reason: str) -> str:
    """The page expired unpaid or the payment failed: undo the pending exchange."""
    exchange = exchange_of(facts, exchange_id)
    if exchange is None or exchange.status != Exchange.PENDING:
        return "nothing_to_do"
    page = (exchange.pending_state or {}).get("checkout") or {}
    if page.get("session_id") and facts["session_id"] and page["session_id"] != facts["session_id"]:
        return "nothing_to_do"  # an earlier page of an exchange that has a newer one
    exchanges.finish_card_payment(exchange.pk, ok=False, message=f"The price difference was not paid: {reason}. Your tickets were not changed.")
    return "exchange_undone"


def refunded(exchange_id: str, order_token: str) -> None:
    """In the transaction recording an automatic refund: tell the patron, when the exchange
    did not happen, that their tickets were not changed and the money went back."""
    exchange = exchange_of({"order_token": order_token}, exchange_id)
    if exchange is not None and exchange.status == Exchange.FAILED:
        change_emails.queue_exchange_email(exchange, exchange.order)
