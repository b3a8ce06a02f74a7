"""The public season-subscriptions page (/subscriptions/): see what is offered and buy one."""

from __future__ import annotations

import secrets

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from wondertix.money import format_cents
from wondertix.patrons import pending_sales
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Subscription
from wondertix.payments.registry import get_provider
from wondertix.sales import errors
from wondertix.storefront.forms import CardFields, ContactFields

FIELDS = {"first_name", "last_name", "email", "phone", "card_number", "card_expiry", "card_cvc"}


class SubscriptionForm(ContactFields, CardFields):
    subscription_type = forms.TypedChoiceField(coerce=int, widget=forms.RadioSelect, label="Subscription",
                                               error_messages={"required": "Please choose a subscription."})
    submission = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: object, offered: list, card_fields: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if not card_fields:  # paid on the provider's page
            self.card_required = False
            for name in ("card_number", "card_expiry", "card_cvc"):
                del self.fields[name]
        self.fields["subscription_type"].choices = [  # type: ignore[attr-defined]
            (t.pk, f"{t.name} ({t.season.name}): {t.tickets_included} tickets for {format_cents(t.price_cents)}") for t in offered
        ]
        if len(offered) == 1:
            self.fields["subscription_type"].initial = offered[0].pk


@require_http_methods(["GET", "POST"])
def subscriptions_page(request: HttpRequest) -> HttpResponse:
    offered = subs.types_on_sale(online=True)
    synchronous = get_provider().synchronous
    form = SubscriptionForm(request.POST or None, offered=offered, card_fields=synchronous, initial={"submission": secrets.token_urlsafe(16)})
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            d = form.cleaned_data
            try:
                if not synchronous:
                    # Paid on the provider's page; the order page waits for its confirmation.
                    _, page = pending_sales.start_subscription(d["subscription_type"], form.buyer(), idempotency_key=d["submission"])
                    return redirect(page)
                sub = subs.sell_subscription(d["subscription_type"], form.buyer(), payment=form.payment(), idempotency_key=d["submission"])
            except errors.SaleError as exc:
                if exc.field in FIELDS:
                    form.add_error(exc.field, exc.message)
                else:
                    form.add_error(None, exc.message)
                status = exc.status
            else:
                return redirect(f"/subscriptions/thanks/{sub.order.token}/")
    return render(request, "patrons/public/subscriptions.html", {
        "offered": offered, "form": form, "available": True, "test_provider": settings.PAYMENT_PROVIDER == "test",
    }, status=status)


def subscription_thanks(request: HttpRequest, token: str) -> HttpResponse:
    sub = Subscription.objects.select_related("subscription_type__season", "order", "patron").filter(order__token=token).first()
    if sub is None:
        raise Http404("No such subscription.")
    return render(request, "patrons/public/thanks.html", {"sub": sub})
