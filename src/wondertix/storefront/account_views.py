"""Patron account pages (storefront.account): sign in by emailed link, order history,
newsletter choice, online exchange and subscription redemption. Thin: parse, call one
service, render."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from wondertix.money import format_cents
from wondertix.ops.middleware import client_of
from wondertix.patrons.models import Patron
from wondertix.sales import errors, exchange_checkout
from wondertix.storefront import account, account_exchange
from wondertix.storefront import cart as carts
from wondertix.storefront.forms import CardFields


class SignInForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254,
        help_text="The address you gave when you bought tickets.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.setdefault("cart_badge", carts.badge(request.session))
    response = render(request, template, context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response


def patron_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        patron = account.current_patron(request)
        if patron is None:
            return redirect("storefront:sign_in")
        return view(request, patron, *args, **kwargs)
    return never_cache(wrapped)


# ---------------------------------------------------------------------------- signing in and out


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and account.current_patron(request) is not None:
        return redirect("storefront:account")
    form = SignInForm(request.POST if request.method == "POST" else None, label_suffix="")
    context: dict[str, Any] = {"form": form, "minutes": settings.PATRON_SIGN_IN_LINK_MINUTES}
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            try:
                account.request_sign_in(form.cleaned_data["email"], client=client_of(request))
            except errors.SaleError as exc:
                context["refusal"] = exc.message
                response = _render(request, "storefront/account/sign_in.html", context, exc.status)
                response["Retry-After"] = str(exc.details.get("retry_after", 60))
                return response
            # The same page whether or not the address is known (and whatever the caps did).
            context["sent_to"] = form.cleaned_data["email"]
    return _render(request, "storefront/account/sign_in.html", context, status)


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; the POST spends the link (a mail scanner's GET leaves it usable)."""
    if request.method == "GET":
        return _render(request, "storefront/account/sign_in_link.html", {"token": token})
    try:
        patron = account.use_link(token)
    except errors.SaleError as exc:
        return _render(request, "storefront/account/sign_in.html", {"form": SignInForm(label_suffix=""), "refusal": exc.message}, 410)
    account.sign_in(request, patron)
    return redirect("storefront:account")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    account.sign_out(request)
    messages.info(request, "You are signed out.")
    return redirect("storefront:events")


# ---------------------------------------------------------------------------- the account


@patron_required
@require_http_methods(["GET"])
def home(request: HttpRequest, patron: Patron) -> HttpResponse:
    orders = list(account.orders_of(patron).prefetch_related("tickets__performance__event").order_by("-created_at", "-id")[:100])
    rows = []
    for order in orders:
        valid = [t for t in order.tickets.all() if t.status == "valid"]
        shows = sorted({t.performance for t in valid}, key=lambda p: p.starts_at)
        rows.append({"order": order, "tickets": len(valid), "shows": shows,
                     "exchangeable": bool(account_exchange.exchangeable_tickets(order)) if valid else False})
    from wondertix.storefront import account_subscriptions

    return _render(request, "storefront/account/home.html", {
        "patron": patron, "rows": rows, "subscriptions": account_subscriptions.redeemable(patron),
        # One key per page shown: a double submit redeems once, a later visit is a new request.
        "redeem_key": uuid.uuid4().hex,
    })


@patron_required
@require_POST
def newsletter(request: HttpRequest, patron: Patron) -> HttpResponse:
    wanted = request.POST.get("newsletter") == "on"
    if patron.newsletter != wanted:
        Patron.objects.filter(pk=patron.pk).update(newsletter=wanted)
    messages.success(request, "You will get news about upcoming shows." if wanted else "You will no longer get news about upcoming shows.")
    return redirect("storefront:account")


# ---------------------------------------------------------------------------- exchanges


def _ids(values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise errors.invalid("invalid_ticket", "Choose tickets from the list.", field="tickets") from None


def _int_or_none(value: str | None, field: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.invalid("invalid_choice", "Choose from the list.", field=field) from None


@patron_required
@require_http_methods(["GET", "POST"])
def exchange(request: HttpRequest, patron: Patron, order_id: int) -> HttpResponse:
    order = account.order_of(patron, order_id)
    if order is None:
        raise Http404("No such order.")
    tickets = account_exchange.exchangeable_tickets(order)
    targets = account_exchange.target_performances(tickets)
    context: dict[str, Any] = {"order": order, "tickets": tickets, "targets": targets,
                               "price_types": account_exchange.price_types_for(targets[0]) if targets else []}
    if request.method == "GET":
        return _render(request, "storefront/account/exchange.html", context)
    started = account_exchange.pending_for(order, request.POST.get("key", "")) if request.POST.get("step") == "confirm" else None
    if started is not None:  # already waiting for its payment: back to the same page
        try:
            return redirect(exchange_checkout.page_url(started, cancel_url=request.build_absolute_uri(reverse("storefront:account_exchange", args=[order.pk]))))
        except errors.SaleError as exc:
            messages.error(request, exc.message)
            return redirect("storefront:account")
    try:
        ticket_ids = _ids(request.POST.getlist("tickets"))
        performance_id = _int_or_none(request.POST.get("performance"), "performance") or 0
        price_type_id = _int_or_none(request.POST.get("price_type"), "price_type")
        seat_ids = _ids(request.POST.getlist("seat"))
        context.update(chosen=ticket_ids, chosen_performance=performance_id, chosen_price_type=price_type_id, chosen_seats=seat_ids)
        if not seat_ids:
            seat_step = account_exchange.seat_choices(order, ticket_ids, performance_id, price_type_id)
            if seat_step:  # a reserved performance: choose the seats first
                context["seat_step"] = seat_step
                return _render(request, "storefront/account/exchange.html", context)
        quote = account_exchange.quote(order, ticket_ids, performance_id, price_type_id, seat_ids)
    except errors.SaleError as exc:
        context["refusal"] = exc.message
        return _render(request, "storefront/account/exchange.html", context, exc.status)
    diff = quote.difference_cents
    card_form = CardFields(request.POST if request.POST.get("step") == "confirm" else None, label_suffix="")
    card_form.card_required = account_exchange.card_needed(diff)
    context.update(quote=quote, difference=diff, difference_text=format_cents(abs(diff)),
                   form=card_form if card_form.card_required else None,
                   key=request.POST.get("key") or uuid.uuid4().hex, test_provider=settings.PAYMENT_PROVIDER == "test")
    if request.POST.get("step") != "confirm":
        return _render(request, "storefront/account/exchange_confirm.html", context)
    if card_form.card_required and not card_form.is_valid():
        return _render(request, "storefront/account/exchange_confirm.html", context, 422)
    try:
        expected = int(request.POST.get("difference", ""))
    except ValueError:
        expected = diff + 1  # a tampered form: refused as a changed price
    try:
        done = account_exchange.exchange(order, ticket_ids, performance_id, price_type_id, expected_difference_cents=expected,
                                         card=card_form.payment() if card_form.card_required else None, key=context["key"], seat_ids=seat_ids)
        if done.status == done.PENDING:  # the difference is paid on the processor's page
            back = request.build_absolute_uri(reverse("storefront:account_exchange", args=[order.pk]))
            return redirect(exchange_checkout.page_url(done, cancel_url=back))
    except errors.SaleError as exc:
        if exc.code == "payment_unavailable":  # the exchange is pending: the same key finds it again
            context["refusal"] = exc.message
            return _render(request, "storefront/account/exchange_confirm.html", context, exc.status)
        context["refusal"] = exc.message
        context["key"] = uuid.uuid4().hex  # a refused exchange wrote nothing: a new try is a new request
        return _render(request, "storefront/account/exchange_confirm.html", context, exc.status)
    if diff > 0:
        messages.success(request, f"Your tickets were exchanged. You paid the difference of {format_cents(diff)}.")
    elif diff < 0:
        messages.success(request, f"Your tickets were exchanged. {format_cents(-diff)} is going back to your card.")
    else:
        messages.success(request, "Your tickets were exchanged.")
    return redirect("storefront:order", order.token)


# ---------------------------------------------------------------------------- subscriptions


@patron_required
@require_POST
def redeem(request: HttpRequest, patron: Patron, subscription_id: int) -> HttpResponse:
    from wondertix.storefront import account_subscriptions

    try:
        performance_id = _int_or_none(request.POST.get("performance"), "performance") or 0
        quantity = _int_or_none(request.POST.get("quantity"), "quantity") or 0
        redemption = account_subscriptions.redeem_online(patron, subscription_id, performance_id, quantity, key=request.POST.get("key") or uuid.uuid4().hex)
    except errors.SaleError as exc:
        messages.error(request, exc.message)
        return redirect("storefront:account")
    messages.success(request, f"Your subscription now has {redemption.subscription.remaining} ticket{'s' if redemption.subscription.remaining != 1 else ''} left. Your new tickets:")
    return redirect("storefront:order", redemption.order.token)
