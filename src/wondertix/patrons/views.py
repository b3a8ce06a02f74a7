"""Staff pages for contacts (CRM) and season subscriptions, mounted at /staff/contacts/.

Thin: parse, call one service in patrons.crm / patrons.subscriptions, render. A refusal
re-renders the form with the service's message and a 4xx status; nothing was written.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from wondertix.boxoffice.roles import ADMIN, BOX_OFFICE, require_role
from wondertix.boxoffice.views.pos_card import default_reader
from wondertix.catalog.models import Performance, PriceType, Season
from wondertix.money import MAX_ID, format_cents, parse_amount, parse_id, parse_int
from wondertix.numberfields import WholeNumberField, card_number_characters
from wondertix.patrons import crm, gifts, pending_sales
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Patron, Subscription, SubscriptionType
from wondertix.payments import terminal
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.registry import get_provider
from wondertix.sales import errors
from wondertix.sales.models import Order
from wondertix.sales.services import Buyer

staff_only = require_role(BOX_OFFICE, ADMIN)


class ContactForm(forms.Form):
    first_name = forms.CharField(max_length=80)
    last_name = forms.CharField(max_length=80)
    email = forms.EmailField(max_length=254)
    phone = forms.CharField(max_length=40, required=False)
    address_line1 = forms.CharField(max_length=200, required=False, label="Address")
    address_line2 = forms.CharField(max_length=200, required=False, label="Address (line 2)")
    city = forms.CharField(max_length=100, required=False)
    region = forms.CharField(max_length=100, required=False, label="State / region")
    postal_code = forms.CharField(max_length=20, required=False)
    country = forms.CharField(max_length=2, required=False, initial="US")
    accommodation = forms.CharField(max_length=200, required=False, help_text="Wheelchair space, aisle seat, hearing loop…")
    newsletter = forms.BooleanField(required=False)


def _service_error(request: HttpRequest, form: forms.Form | None, exc: errors.SaleError) -> None:
    if form is not None and exc.field in form.fields:
        form.add_error(exc.field, exc.message)
    else:
        messages.error(request, exc.message)


@staff_only
def contact_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    results = list(crm.search(query)) if query else []
    recent = [] if query else list(Patron.objects.order_by("-updated_at")[:20])
    return render(request, "patrons/staff/search.html", {"q": query, "results": results, "recent": recent})


@staff_only
@require_http_methods(["GET", "POST"])
def contact_new(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patron = crm.create_contact(form.cleaned_data, actor=request.user)  # type: ignore[arg-type]
        except errors.SaleError as exc:
            _service_error(request, form, exc)
            return render(request, "patrons/staff/edit.html", {"form": form, "title": "New contact"}, status=exc.status)
        messages.success(request, f"Added {patron.full_name}.")
        return redirect(f"/staff/contacts/{patron.pk}/")
    status = 422 if request.method == "POST" else 200
    return render(request, "patrons/staff/edit.html", {"form": form, "title": "New contact"}, status=status)


@staff_only
def contact_detail(request: HttpRequest, patron_id: int) -> HttpResponse:
    get_object_or_404(Patron, pk=patron_id)
    history = crm.history(patron_id)
    return render(request, "patrons/staff/contact.html", {"h": history, "patron": history.patron})


@staff_only
@require_http_methods(["GET", "POST"])
def contact_edit(request: HttpRequest, patron_id: int) -> HttpResponse:
    patron = get_object_or_404(Patron, pk=patron_id)
    initial = {name: getattr(patron, name) for name in ContactForm.base_fields}
    form = ContactForm(request.POST or None, initial=initial)
    context = {"form": form, "title": f"Edit {patron.full_name}", "patron": patron}
    if request.method == "POST":
        if form.is_valid():
            try:
                crm.update_contact(patron.pk, form.cleaned_data, actor=request.user)  # type: ignore[arg-type]
            except errors.SaleError as exc:
                _service_error(request, form, exc)
                return render(request, "patrons/staff/edit.html", context, status=exc.status)
            messages.success(request, "Contact saved.")
            return redirect(f"/staff/contacts/{patron.pk}/")
        return render(request, "patrons/staff/edit.html", context, status=422)
    return render(request, "patrons/staff/edit.html", context)


@staff_only
@require_POST
def contact_note(request: HttpRequest, patron_id: int) -> HttpResponse:
    get_object_or_404(Patron, pk=patron_id)
    try:
        crm.add_note(patron_id, request.POST.get("note", ""), actor=request.user)  # type: ignore[arg-type]
    except errors.SaleError as exc:
        history = crm.history(patron_id)
        return render(request, "patrons/staff/contact.html", {"h": history, "patron": history.patron, "note_error": exc.message}, status=exc.status)
    messages.success(request, "Note added.")
    return redirect(f"/staff/contacts/{patron_id}/")


@staff_only
@require_http_methods(["GET", "POST"])
def contact_merge(request: HttpRequest, patron_id: int) -> HttpResponse:
    """Merge another contact INTO this one (this one is kept)."""
    keep = get_object_or_404(Patron, pk=patron_id)
    query = request.GET.get("q", "")
    candidates = [p for p in crm.search(query)] if query else crm.history(keep.pk).possible_duplicates
    candidates = [p for p in candidates if p.pk != keep.pk]
    context: dict[str, Any] = {"keep": keep, "q": query, "candidates": candidates}
    if request.method == "POST":
        dup_id = parse_id(request.POST.get("duplicate", ""))
        if dup_id is None:
            context["error"] = "Choose the contact to merge into this one."
            return render(request, "patrons/staff/merge.html", context, status=422)
        try:
            result = crm.merge(keep.pk, dup_id, actor=request.user)  # type: ignore[arg-type]
        except errors.SaleError as exc:
            context["error"] = exc.message
            return render(request, "patrons/staff/merge.html", context, status=exc.status)
        moved = ", ".join(f"{n} {label.split('.')[-1]}{'s' if n != 1 else ''}" for label, n in result.moved.items()) or "no history"
        messages.success(request, f"Merged: moved {moved} to {keep.full_name}.")
        return redirect(f"/staff/contacts/{keep.pk}/")
    return render(request, "patrons/staff/merge.html", context)


# ---------------------------------------------------------------------------- subscriptions


class SubscriptionTypeForm(forms.Form):
    season = forms.ModelChoiceField(queryset=Season.objects.order_by("-starts_on"))
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=300, required=False)
    price = forms.CharField(help_text="e.g. 120.00")
    tickets_included = WholeNumberField(min_value=1, max_value=100, label="Tickets in the package")
    limit_sold = WholeNumberField(min_value=0, required=False, label="Most that may be sold", help_text="Empty = no limit")
    on_sale_online = forms.BooleanField(required=False, initial=True, label="Sold on the public subscriptions page")
    active = forms.BooleanField(required=False, initial=True)

    def clean_price(self) -> int:
        try:
            return parse_amount(self.cleaned_data["price"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@staff_only
def subscription_types(request: HttpRequest) -> HttpResponse:
    types = SubscriptionType.objects.select_related("season").order_by("-season__starts_on", "name")
    rows = [(t, subs.sold_count(t)) for t in types]
    recent = Subscription.objects.select_related("patron", "subscription_type").order_by("-created_at")[:30]
    return render(request, "patrons/staff/subscription_types.html", {"rows": rows, "recent": recent})


@staff_only
@require_http_methods(["GET", "POST"])
def subscription_type_edit(request: HttpRequest, type_id: int | None = None) -> HttpResponse:
    existing = get_object_or_404(SubscriptionType, pk=type_id) if type_id else None
    initial = {}
    if existing:
        initial = {"season": existing.season_id, "name": existing.name, "description": existing.description,
                   "price": format_cents(existing.price_cents, ""),
                   "tickets_included": existing.tickets_included, "limit_sold": existing.limit_sold,
                   "on_sale_online": existing.on_sale_online, "active": existing.active}
    form = SubscriptionTypeForm(request.POST or None, initial=initial)
    title = f"Edit {existing.name}" if existing else "New subscription type"
    context = {"form": form, "title": title}
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "patrons/staff/edit.html", context, status=422)
        d = form.cleaned_data
        data = subs.TypeInput(season_id=d["season"].pk, name=d["name"], price_cents=d["price"], tickets_included=d["tickets_included"],
                              limit_sold=d["limit_sold"], description=d["description"], on_sale_online=d["on_sale_online"], active=d["active"])
        try:
            subs.save_type(data, type_id=existing.pk if existing else None, actor=request.user)  # type: ignore[arg-type]
        except errors.SaleError as exc:
            _service_error(request, form, exc)
            return render(request, "patrons/staff/edit.html", context, status=exc.status)
        messages.success(request, "Subscription type saved.")
        return redirect("/staff/contacts/subscriptions/")
    return render(request, "patrons/staff/edit.html", context)


class StaffSubscriptionSaleForm(forms.Form):
    subscription_type = forms.ModelChoiceField(queryset=SubscriptionType.objects.none())
    contact = forms.ModelChoiceField(queryset=Patron.objects.all(), required=False, widget=forms.HiddenInput)
    first_name = forms.CharField(max_length=80, required=False)
    last_name = forms.CharField(max_length=80, required=False)
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=40, required=False)
    payment = forms.ChoiceField(choices=[("cash", "Cash"), ("card", "Card")], widget=forms.RadioSelect, initial="cash", label="How they pay")
    card_number = forms.CharField(required=False, max_length=30, validators=[card_number_characters])
    exp_month = WholeNumberField(required=False, min_value=1, max_value=12, label="Expiry month")
    exp_year = WholeNumberField(required=False, min_value=2000, max_value=2100, label="Expiry year")
    cvc = forms.CharField(required=False, max_length=4, label="Security code (CVC)")
    key = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subscription_type"].queryset = SubscriptionType.objects.filter(active=True, season__ends_on__gte=timezone.localdate())  # type: ignore[attr-defined]


@staff_only
@require_http_methods(["GET", "POST"])
def subscription_sell(request: HttpRequest) -> HttpResponse:
    """Sell a subscription at the window, to a chosen contact or a new one."""
    contact = Patron.objects.filter(pk=parse_id(request.GET.get("contact")) or 0).first()
    initial = {"key": uuid.uuid4().hex, "contact": contact.pk if contact else None}
    form = StaffSubscriptionSaleForm(request.POST or None, initial=initial)
    context = {"form": form, "contact": contact, "types": subs.types_on_sale(online=False)}
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "patrons/staff/subscription_sell.html", context, status=422)
        d = form.cleaned_data
        person = d["contact"]
        buyer = Buyer(first_name=person.first_name, last_name=person.last_name, email=person.email) if person else Buyer(
            first_name=d["first_name"], last_name=d["last_name"], email=d["email"] or "", phone=d["phone"])
        card = PaymentDetails(card_number=d["card_number"], exp_month=d["exp_month"], exp_year=d["exp_year"], cvc=d["cvc"])
        try:
            if d["payment"] != "cash" and not get_provider().synchronous:
                # The card is taken on a reader: a pending order the processor completes.
                order = pending_sales.pending_subscription(
                    d["subscription_type"].pk, buyer, idempotency_key=f"staff:{d['key']}", channel=Order.BOX_OFFICE,
                    patron=person, actor=request.user, minutes=terminal.MINUTES,  # type: ignore[arg-type]
                )
                tp = terminal.start_for_order(order, default_reader(request), actor=request.user)  # type: ignore[arg-type]
                return redirect("boxoffice:pos-card", payment_id=tp.pk)
            sub = subs.sell_subscription(
                d["subscription_type"].pk, buyer, payment=card, channel=Order.BOX_OFFICE,
                provider_name="cash" if d["payment"] == "cash" else None, patron_id=person.pk if person else None,
                idempotency_key=f"staff:{d['key']}", actor=request.user,  # type: ignore[arg-type]
            )
        except errors.SaleError as exc:
            _service_error(request, form, exc)
            return render(request, "patrons/staff/subscription_sell.html", context, status=exc.status)
        messages.success(request, f"Sold {sub.subscription_type.name} to {sub.patron.full_name} ({format_cents(sub.price_cents)}).")
        return redirect(f"/staff/contacts/{sub.patron_id}/")
    return render(request, "patrons/staff/subscription_sell.html", context)


@staff_only
@require_http_methods(["GET", "POST"])
def subscription_redeem(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = get_object_or_404(Subscription.objects.select_related("patron", "subscription_type__season"), pk=subscription_id)
    season = sub.subscription_type.season
    performances = list(
        Performance.objects.filter(event__season=season, status=Performance.ON_SALE, starts_at__gt=timezone.now()).select_related("event").order_by("starts_at")
    )
    price_types = list(PriceType.objects.filter(event__season=season, active=True).select_related("event").order_by("event__title", "sort_order"))
    context: dict[str, Any] = {"sub": sub, "performances": performances, "price_types": price_types, "key": uuid.uuid4().hex,
                               "redemptions": sub.redemptions.select_related("performance__event", "order")}
    if request.method == "POST":
        try:
            perf_id = parse_int(request.POST.get("performance", ""), minimum=1, maximum=MAX_ID)
            pt_id = parse_int(request.POST.get("price_type", ""), minimum=1, maximum=MAX_ID)
            qty = parse_int(request.POST.get("quantity", ""), minimum=1)
        except ValueError:
            context["error"] = "Choose a performance, a ticket type and how many tickets."
            return render(request, "patrons/staff/redeem.html", context, status=422)
        try:
            red = subs.redeem(sub.pk, perf_id, pt_id, qty, idempotency_key=request.POST.get("key"), actor=request.user)  # type: ignore[arg-type]
        except errors.SaleError as exc:
            context["error"] = exc.message
            return render(request, "patrons/staff/redeem.html", context, status=exc.status)
        messages.success(request, f"Redeemed {red.quantity} ticket(s) for {red.performance}: order {red.order.reference}.")
        return redirect(f"/staff/contacts/subscriptions/{sub.pk}/redeem/")
    return render(request, "patrons/staff/redeem.html", context)


# ---------------------------------------------------------------------------- gifts at the window


class GiftForm(forms.Form):
    amount = forms.CharField(help_text="e.g. 50.00")
    method = forms.ChoiceField(choices=[("cash", "Cash or cheque"), ("card", "Card")], widget=forms.RadioSelect, initial="cash", label="How they pay")
    card_number = forms.CharField(required=False, max_length=30, validators=[card_number_characters])
    exp_month = WholeNumberField(required=False, min_value=1, max_value=12, label="Expiry month")
    exp_year = WholeNumberField(required=False, min_value=2000, max_value=2100, label="Expiry year")
    cvc = forms.CharField(required=False, max_length=4, label="Security code (CVC)")
    anonymous = forms.BooleanField(required=False, label="Anonymous (left out of acknowledgement lists)")
    comment = forms.CharField(required=False, max_length=500)
    key = forms.CharField(widget=forms.HiddenInput)

    def clean_amount(self) -> int:
        try:
            return parse_amount(self.cleaned_data["amount"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@staff_only
@require_http_methods(["GET", "POST"])
def gift_new(request: HttpRequest, patron_id: int) -> HttpResponse:
    patron = get_object_or_404(Patron, pk=patron_id)
    form = GiftForm(request.POST or None, initial={"key": uuid.uuid4().hex})
    context = {"form": form, "title": f"Record a gift from {patron.full_name}", "patron": patron}
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "patrons/staff/edit.html", context, status=422)
        d = form.cleaned_data
        card = PaymentDetails(card_number=d["card_number"], exp_month=d["exp_month"], exp_year=d["exp_year"], cvc=d["cvc"])
        try:
            if d["method"] == "card" and not get_provider().synchronous:
                # The card is taken on a reader: a pending order the processor completes.
                order = pending_sales.pending_donation(
                    d["amount"], Buyer(first_name=patron.first_name, last_name=patron.last_name, email=patron.email),
                    anonymous=d["anonymous"], comment=d["comment"], idempotency_key=f"gift:{d['key']}", channel=Order.BOX_OFFICE,
                    patron=patron, actor=request.user, minutes=terminal.MINUTES,  # type: ignore[arg-type]
                )
                tp = terminal.start_for_order(order, default_reader(request), actor=request.user)  # type: ignore[arg-type]
                return redirect("boxoffice:pos-card", payment_id=tp.pk)
            gift = gifts.record_gift(patron.pk, d["amount"], method=d["method"], card=card, anonymous=d["anonymous"],
                                     comment=d["comment"], idempotency_key=d["key"], actor=request.user)  # type: ignore[arg-type]
        except errors.SaleError as exc:
            _service_error(request, form, exc)
            return render(request, "patrons/staff/edit.html", context, status=exc.status)
        messages.success(request, f"Recorded a gift of {format_cents(gift.amount_cents)} from {patron.full_name} — thank you noted.")
        return redirect(f"/staff/contacts/{patron.pk}/")
    return render(request, "patrons/staff/edit.html", context)
