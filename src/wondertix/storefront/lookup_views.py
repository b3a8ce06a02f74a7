""""Find my tickets" (storefront.lookup): the form, and one answer for every address."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from wondertix.ops.middleware import client_of
from wondertix.sales import errors
from wondertix.storefront import cart as carts
from wondertix.storefront.lookup import request_ticket_links


class FindTicketsForm(forms.Form):
    email = forms.EmailField(
        label="Email address", max_length=254,
        help_text="The address you gave when you bought the tickets.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def find_tickets(request: HttpRequest) -> HttpResponse:
    form = FindTicketsForm(request.POST if request.method == "POST" else None, label_suffix="")
    context: dict[str, object] = {"form": form, "cart_badge": carts.badge(request.session)}
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            try:
                request_ticket_links(form.cleaned_data["email"], client=client_of(request))
            except errors.SaleError as exc:
                context["refusal"] = exc.message
                response = _render(request, context, exc.status)
                response["Retry-After"] = str(exc.details.get("retry_after", 60))
                return response
            # The same page whether or not the address has orders (and whatever the caps did).
            context["sent_to"] = form.cleaned_data["email"]
    return _render(request, context, status)


def _render(request: HttpRequest, context: dict[str, object], status: int) -> HttpResponse:
    response = render(request, "storefront/find_tickets.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    return response
