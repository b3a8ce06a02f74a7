"""The clerk's view of a card payment on a reader: its state, retry, cancel (and, in the
processor's test mode, presenting a test card to a simulated reader)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, require_role
from wondertix.boxoffice.views.common import attempt
from wondertix.payments import terminal
from wondertix.payments.models import TerminalPayment
from wondertix.payments.providers import stripe_terminal as readers
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.registry import get_provider

sellers = require_role(BOX_OFFICE, ADMIN)

READER_KEY = "pos.reader"
# Stripe's test cards for a simulated reader: one that succeeds, one that is declined.
TEST_CARDS = {"approve": ("4242424242424242", "Present an approved test card"), "decline": ("4000000000000002", "Present a declined test card")}


def reader_choice(request: HttpRequest) -> dict[str, Any]:
    """The readers offered at the point of sale, when cards are taken on a reader."""
    if get_provider().synchronous:
        return {"card_reader": False}
    try:
        found = readers.list_readers()
        error = ""
    except ProviderUnavailable as exc:
        found, error = [], str(exc)
    chosen = request.session.get(READER_KEY) or next((r.id for r in found if r.online), "")
    return {"card_reader": True, "readers": found, "chosen_reader": chosen, "readers_error": error}


def default_reader(request: HttpRequest) -> str:
    """The reader this clerk last used at the point of sale, else the first one online."""
    return str(request.POST.get("reader") or reader_choice(request).get("chosen_reader") or "")


def _done_url(tp: TerminalPayment) -> str:
    if tp.exchange_id:
        return f"/staff/sales/orders/{tp.order_id}/"
    if tp.order.patron_id and not tp.order.tickets.exists():  # a gift or a subscription
        return f"/staff/contacts/{tp.order.patron_id}/"
    return f"/staff/pos/orders/{tp.order_id}/"


@sellers
def card_payment(request: HttpRequest, payment_id: int) -> HttpResponse:
    tp = get_object_or_404(TerminalPayment.objects.select_related("order", "exchange"), pk=payment_id)
    tp, state = terminal.refresh(tp)
    if tp.status == TerminalPayment.SUCCEEDED:
        messages.success(request, f"Card payment of order {tp.order.reference} approved.")
        return redirect(_done_url(tp))
    return render(request, "boxoffice/pos/card.html", {
        "tp": tp, "state": state, "waiting": tp.status == TerminalPayment.WAITING,
        "test_cards": TEST_CARDS if readers.test_mode() and tp.status == TerminalPayment.WAITING and tp.payment_intent else {},
    })


@sellers
@require_POST
def card_action(request: HttpRequest, payment_id: int) -> HttpResponse:
    tp = get_object_or_404(TerminalPayment.objects.select_related("order"), pk=payment_id)
    action = request.POST.get("action", "")
    if action == "cancel":
        done, _ = attempt(request, lambda: terminal.cancel(tp))
        if done is not None and done.status == TerminalPayment.CANCELED:
            messages.info(request, "Card payment canceled: nothing was charged and nothing was sold.")
            return redirect(f"/staff/sales/orders/{tp.order_id}/" if tp.exchange_id else "/staff/pos/")
    elif action == "retry":
        terminal.send(tp)
    elif action in TEST_CARDS:
        attempt(request, lambda: terminal.present_test_card(tp, TEST_CARDS[action][0]))
    else:
        messages.error(request, "Choose what to do with the card payment.")
    return redirect("boxoffice:pos-card", payment_id=tp.pk)
