"""The public storefront: thin views that parse a form, call one service and render.

Patron journey: events → event → performance (choose quantities; a hold is created) → cart
(hold countdown) → checkout (contact, donation, discount, card) → order page with QR codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from wondertix.catalog import access
from wondertix.catalog import services as catalog
from wondertix.catalog.models import Event
from wondertix.money import format_cents
from wondertix.ops.middleware import client_of
from wondertix.patrons import donations, pending_sales
from wondertix.payments.registry import get_provider
from wondertix.sales import errors, inventory, services, ticket_files
from wondertix.sales.models import Order, Ticket
from wondertix.storefront import cart as carts
from wondertix.storefront import seat_views
from wondertix.storefront.forms import CheckoutForm, DonationForm, TicketSelectionForm

# The ticket selection form's key: the nonce its page was rendered with.
SUBMISSION_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")

# Where a SaleError's `field` (the service's vocabulary) is shown on the checkout form.
CHECKOUT_FIELDS = {
    "name": "first_name",
    "email": "email",
    "phone": "phone",
    "accommodation": "accommodation",
    "donation_cents": "donation_amount",
    "discount_code": "discount_code",
}
DONATION_FIELDS = {"name": "first_name", "email": "email", "phone": "phone", "donation_cents": "amount", "comment": "comment"}
# Refusals after which the cart's seats are gone and the patron is offered "Try again".
HOLD_EXPIRED = "Your seats were held for a limited time and have been released, so this order was not placed."
RELEASED = {"hold_expired", "payment_declined", "insufficient_funds", "invalid_card", "card_declined"}


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    context.setdefault("cart_badge", carts.badge(request.session))
    return render(request, template, context, status=status)


def _add_sale_error(form: Any, exc: errors.SaleError, mapping: dict[str, str]) -> None:
    name = mapping.get(exc.field) or ("discount_code" if exc.code.startswith("discount_") else None)
    if name and name in form.fields:
        form.add_error(name, exc.message)
    else:
        form.add_error(None, exc.message)


# ------------------------------------------------------------------ browsing


@require_GET
def events(request: HttpRequest) -> HttpResponse:
    listing: list[dict[str, Any]] = []
    try:
        wanted = access.parse_filter(request.GET.get("access"))
    except errors.SaleError as exc:
        return _page(request, "storefront/events.html", {"listing": [], "access_tags": access.ACCESS_TAGS, "access_error": exc.message}, 400)
    events_on = list(catalog.public_events())
    perfs = [p for e in events_on for p in e.upcoming]  # type: ignore[attr-defined]
    access.annotate(perfs)
    # One availability read for every listed performance, not one per event.
    all_states = {s.performance.pk: s for s in catalog.states_for(perfs)}
    for event in events_on:
        states = [all_states[p.pk] for p in event.upcoming if not wanted or any(c == wanted for c, _ in p.access)]  # type: ignore[attr-defined]
        if not states:
            continue
        buyable = [s for s in states if s.buyable]
        listing.append(
            {
                "event": event,
                "states": states[:4],
                "more": max(0, len(states) - 4),
                "first": states[0].performance.starts_at,
                "last": states[-1].performance.starts_at,
                "all_sold_out": bool(states) and all(s.status == catalog.SOLD_OUT for s in states),
                "buyable": len(buyable),
            }
        )
    listing.sort(key=lambda item: item["first"])
    return _page(request, "storefront/events.html", {
        "listing": listing, "access_tags": access.ACCESS_TAGS, "access": wanted, "access_label": access.label(wanted) if wanted else "",
    })


@require_GET
def event_detail(request: HttpRequest, slug: str) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("season"), slug=slug, active=True)
    upcoming = list(event.performances.filter(starts_at__gt=timezone.now()).select_related("event").order_by("starts_at"))
    access.annotate(upcoming)
    catalog.mark_own_prices(upcoming)
    states = catalog.states_for(upcoming)
    price_types = list(event.price_types.filter(active=True, staff_only=False))
    return _page(request, "storefront/event.html", {"event": event, "states": states, "price_types": price_types})


def _selection_form(request: HttpRequest, perf: Any, state: catalog.PerformanceState, data: Any = None) -> TicketSelectionForm:
    price_types = catalog.public_price_types(perf)
    left = inventory.price_type_availability(perf, price_types)
    # What the patron already holds for this performance counts as available to them.
    cart = carts.load(request.session)
    mine = {line.price_type.pk: line for line in cart.lines if line.performance.pk == perf.pk}
    mine_total = sum(line.quantity for line in mine.values())
    # "Sold out" may only mean the patron holds the last seats: they can still change them.
    editable = state.buyable or (state.status == catalog.SOLD_OUT and bool(mine))
    limits = {}
    for pt in price_types:
        own = mine[pt.pk].quantity if pt.pk in mine else 0
        cap = state.available + mine_total
        type_left = left[pt.pk]
        most = cap if type_left is None else min(cap, type_left + own)
        limits[pt.pk] = min(most, settings.MAX_TICKETS_PER_ORDER) if editable else 0
    initial: dict[str, Any] = {}
    for pt_id, line in mine.items():
        initial[f"qty_{pt_id}"] = line.quantity
        if line.price_type.pay_what_you_can:
            initial[f"amount_{pt_id}"] = f"{line.unit_price_cents // 100}.{line.unit_price_cents % 100:02d}"
    form = TicketSelectionForm(data, initial=initial, price_types=price_types, limits=limits, performance_id=perf.pk)
    form.editable = editable
    return form


@never_cache
@require_http_methods(["GET", "POST"])
def performance(request: HttpRequest, performance_id: int) -> HttpResponse:
    perf = catalog.get_public_performance(performance_id)
    if perf is None:
        raise Http404("No such performance")
    state = catalog.states_for([perf])[0]
    access.annotate([perf])
    if perf.seating_chart_id is not None:
        # Reserved seats are chosen on the seat map (docs/seating.md); compressed, it is big.
        return gzip_page(seat_views.reserved_performance)(request, perf, state, _page, _hold_selection)
    form = _selection_form(request, perf, state, request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and not form.editable:
        status = 409  # the page explains why (sold out, not yet on sale, closed, canceled)
    elif request.method == "POST":
        if form.is_valid():
            try:
                _hold_selection(request, perf.pk, form.lines(), submission=_submission(request))
            except errors.SaleError as exc:
                form.add_error(None, exc.message)
                status = exc.status
                state = catalog.states_for([perf])[0]
            else:
                return redirect("storefront:cart")
        else:
            status = 422
    return _page(request, "storefront/performance.html", {
        "perf": perf, "state": state, "form": form, "rows": form.rows(),
        "submission": secrets.token_urlsafe(16),  # this page's key for its selection (below)
    }, status)


def _submission(request: HttpRequest) -> str:
    """The selection form's own key (a nonce rendered with the page); '' when absent or malformed."""
    value = request.POST.get("submission", "")
    return value if SUBMISSION_KEY.fullmatch(value) else ""


def selection_key(submission: str, current_hold: str | None, lines: list[services.LineRequest]) -> str | None:
    """The idempotency key of a ticket selection: the same for the same form post while the
    cart is unchanged (a retry across a database failover finds the hold it created), another
    for a new choice or once the cart holds something else."""
    if not submission:
        return None
    chosen = services.request_fingerprint({"lines": [dataclasses.asdict(line) for line in lines]})
    return "web-sel-" + hashlib.sha256(f"{submission}|{current_hold or ''}|{chosen}".encode()).hexdigest()[:40]


def _hold_selection(request: HttpRequest, performance_id: int, new_lines: list[services.LineRequest], *, submission: str = "") -> None:
    """Put the chosen tickets in the cart, keeping what it holds for other performances.

    The old hold is released before the new one is created so the patron's own seats do not
    count against them; if the new hold is refused, the old selection is held again. With the
    form's key the new hold is keyed (selection_key), so running the request again after a
    lost commit answers with that hold rather than a second one.
    """
    session = request.session
    cart = carts.load(session)
    kept = [
        services.LineRequest(line.performance.pk, line.price_type.pk, line.quantity, line.unit_price_cents if line.price_type.pay_what_you_can else None, line.seat_ids)
        for line in cart.lines
        if line.performance.pk != performance_id
    ]
    old = kept + [
        services.LineRequest(line.performance.pk, line.price_type.pk, line.quantity, line.unit_price_cents if line.price_type.pay_what_you_can else None, line.seat_ids)
        for line in cart.lines
        if line.performance.pk == performance_id
    ]
    lines = kept + new_lines
    key = selection_key(submission, carts.hold_token(session), lines)
    if cart.state == carts.ACTIVE and cart.hold is not None:
        services.release_hold(cart.hold.token)
        carts.forget_hold(session)
    try:
        hold = services.create_hold(lines, idempotency_key=key, client=client_of(request))
    except errors.SaleError:
        if cart.state == carts.ACTIVE and old:
            try:
                carts.remember_hold(session, services.create_hold(old, client=client_of(request)), old)
            except errors.SaleError:
                messages.warning(request, "The seats that were in your cart have been released.")
        raise
    carts.remember_hold(session, hold, lines)


# ------------------------------------------------------------------ cart


@never_cache
@require_GET
def cart_view(request: HttpRequest) -> HttpResponse:
    cart = carts.load(request.session)
    if cart.state == carts.CHECKED_OUT and cart.order is not None:
        carts.forget_hold(request.session)
        return redirect("storefront:order", token=cart.order.token)
    return _page(
        request,
        "storefront/cart.html",
        {"cart": cart, "was_holding": [] if cart.state == carts.ACTIVE else carts.preview(carts.selection(request.session))},
    )


@require_POST
def cart_empty(request: HttpRequest) -> HttpResponse:
    token = carts.hold_token(request.session)
    if token:
        services.release_hold(token)
    carts.forget_hold(request.session)
    messages.info(request, "Your cart is empty now, and the seats were released.")
    return redirect("storefront:events")


@require_POST
def cart_hold_again(request: HttpRequest) -> HttpResponse:
    """Hold the same selection again after a declined card or an expired hold."""
    lines = carts.selection(request.session)
    if not lines:
        messages.info(request, "Your cart is empty. Please choose your tickets again.")
        return redirect("storefront:events")
    old = carts.hold_token(request.session)
    if old:
        services.release_hold(old)
    try:
        hold = services.create_hold(lines, client=client_of(request))
    except errors.SaleError as exc:
        carts.forget_hold(request.session, keep_selection=True)
        messages.error(request, exc.message)
        return redirect("storefront:cart")
    carts.remember_hold(request.session, hold, lines)
    return redirect("storefront:checkout" if request.POST.get("next") == "checkout" else "storefront:cart")


# ------------------------------------------------------------------ checkout


def _provider_is_synchronous() -> bool:
    return bool(get_provider().synchronous)


@never_cache
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    session = request.session
    token = carts.hold_token(session)
    posted = ""
    if request.method == "POST":
        # The form carries the hold it was shown for. A replay of a form whose hold this
        # session already turned into an order (double submit, back button) shows that order.
        posted = request.POST.get("hold", "")
        placed = carts.order_placed_from(session, posted)
        if placed is not None and placed.status != Order.PENDING:
            return redirect("storefront:order", token=placed.token)
    cart = carts.load(session)
    if cart.state == carts.CHECKED_OUT:
        # Back button or a second click after the order was placed: show the order.
        if cart.order is not None:
            carts.forget_hold(session)
            return redirect("storefront:order", token=cart.order.token)
    if cart.state == carts.EMPTY:
        messages.info(request, "Your cart is empty. Choose a performance to start.")
        return redirect("storefront:events")
    if cart.state == carts.EXPIRED and request.method == "GET":
        return redirect("storefront:cart")

    synchronous = _provider_is_synchronous()
    form_kwargs: dict[str, Any] = {"cart_total_cents": cart.total_cents, "card_fields": synchronous}
    if request.method == "GET":
        form = CheckoutForm(initial=session.get(carts.CONTACT_KEY, {}), **form_kwargs)
        return _page(request, "storefront/checkout.html", _checkout_context(request, cart, form, synchronous))

    form = CheckoutForm(request.POST, **form_kwargs)
    if cart.state == carts.ACTIVE and posted and posted != token:
        # The cart changed in another tab since this form was shown: never charge for
        # something other than what the patron saw.
        form.add_error(None, "Your cart changed in another window. Please check your order below and submit again.")
        return _page(request, "storefront/checkout.html", _checkout_context(request, cart, form, synchronous), status=409)
    if cart.state != carts.ACTIVE:
        # The hold ran out while the patron was typing: refuse before anything else.
        return _refused(request, form, errors.conflict("hold_expired", HOLD_EXPIRED), synchronous)
    valid = form.is_valid()  # every field but the card, which waits for the total
    quote, refusal = _price(form, cart)
    if refusal is not None:
        _add_sale_error(form, refusal, CHECKOUT_FIELDS)
    if not valid or refusal is not None or quote is None:
        # Report every problem at once, the card's too when there is something to pay.
        form.check_card(quote.total_cents if quote is not None else cart.total_cents)
        status = refusal.status if refusal is not None and valid else 422
        return _page(request, "storefront/checkout.html", _checkout_context(request, cart, form, synchronous, quote=quote), status=status)
    shown = request.POST.get("expected_total")
    if shown is not None and shown != str(quote.total_cents):
        # The total changed from the one on the button (a discount code, a donation): show
        # the new total and let the patron confirm it. Nobody is charged an amount they
        # have not seen. A total that is now $0 is confirmed as a free order: no card.
        ctx = _checkout_context(request, cart, form, synchronous, quote=quote)
        ctx["confirm_total"] = True
        return _page(request, "storefront/checkout.html", ctx)
    # The server has priced the order and the patron has seen that total: a card is asked
    # for only when there is something to charge.
    if not form.check_card(quote.total_cents):
        return _page(request, "storefront/checkout.html", _checkout_context(request, cart, form, synchronous, quote=quote), status=422)
    details = form.details()
    try:
        if synchronous:
            order = services.checkout(token, details, idempotency_key=f"web-{token}")
            redirect_to = reverse("storefront:order", kwargs={"token": order.token})
        else:
            from wondertix.sales.pending import start_payment  # type: ignore[import-not-found,unused-ignore]

            order, redirect_to = start_payment(token, details)
    except errors.SaleError as exc:
        if exc.code == "cart_already_checked_out":
            existing = carts.order_for_hold(session, token)
            if existing is not None:
                carts.forget_hold(session)
                return redirect("storefront:order", token=existing.token)
        if exc.code in RELEASED or exc.status == 402:
            return _refused(request, form, exc, synchronous)
        _add_sale_error(form, exc, CHECKOUT_FIELDS)
        return _page(request, "storefront/checkout.html", _checkout_context(request, carts.load(session), form, synchronous), status=exc.status)

    carts.remember_order(session, token, order)
    if synchronous:
        carts.forget_hold(session)
    # Otherwise the cart stays: its hold keeps the seats while the patron pays on the
    # provider's page, and a patron who comes back from that page finds their cart as it was
    # (start_payment answers a second submit with the same payment page).
    if order.status == Order.PAID:
        messages.success(request, f"Thank you! Your order is confirmed. We emailed your tickets to {order.buyer_email}.")
    return redirect(redirect_to)


def _price(form: CheckoutForm, cart: carts.Cart) -> tuple[Any, errors.SaleError | None]:
    """What this checkout would charge (read-only), once the donation and the discount code
    are readable; (None, None) while they are not, (None, error) for a bad discount code."""
    data = form.cleaned_data
    if "discount_code" not in data or ("donation_amount" in form.fields and "donation_amount" not in data):
        return None, None
    try:
        return carts.quote(cart, donation_cents=data.get("donation_amount") or 0, discount_code=data["discount_code"]), None
    except errors.SaleError as exc:
        return None, exc


def _refused(request: HttpRequest, form: CheckoutForm, exc: errors.SaleError, synchronous: bool) -> HttpResponse:
    """The cart's seats are gone (hold expired, or released by a declined payment).

    Keep what the patron typed (never the card) and offer one button that holds the same
    selection again, so they do not start over.
    """
    session = request.session
    session[carts.CONTACT_KEY] = form.remembered()
    carts.forget_hold(session, keep_selection=True)
    ctx = _checkout_context(request, carts.load(session), None, synchronous)
    ctx.update({"refusal": exc, "declined": exc.status == 402, "can_hold_again": bool(ctx["was_holding"])})
    return _page(request, "storefront/checkout.html", ctx, status=exc.status)


def _checkout_context(
    request: HttpRequest, cart: carts.Cart, form: CheckoutForm | None, synchronous: bool, *, quote: Any = None
) -> dict[str, Any]:
    pay_total = quote.total_cents if quote is not None else cart.total_cents
    if pay_total == 0:
        submit_label = "Get my tickets"
    elif synchronous:
        submit_label = f"Pay {format_cents(pay_total)}"
    else:
        submit_label = "Continue to payment"
    return {
        "cart": cart,
        # The totals to show and to ask the patron to pay (with discount and donation once known).
        "totals": quote or cart,
        "pay_total": pay_total,
        # Nothing to pay: either free tickets, or a discount the server has priced to $0.
        "free": pay_total == 0,
        "submit_label": submit_label,
        "donation_in_total": quote.donation_cents if quote is not None else 0,
        "form": form,
        "synchronous": synchronous,
        "test_provider": settings.PAYMENT_PROVIDER == "test",
        # What the patron had chosen, shown while its seats are not held.
        "was_holding": [] if cart.state == carts.ACTIVE else carts.preview(carts.selection(request.session)),
    }


# ------------------------------------------------------------------ orders and tickets


def _auto_refunded_cents(order: Order) -> int:
    from wondertix.payments.models import Payment

    return sum(order.payments.filter(kind=Payment.REFUND, status=Payment.SUCCEEDED).values_list("amount_cents", flat=True))


@never_cache
@require_GET
def order_detail(request: HttpRequest, token: str) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("discount_code"), token=token)
    tickets = list(order.tickets.select_related("performance__event", "price_type", "seat__section").order_by("performance__starts_at", "id"))
    groups: list[dict[str, Any]] = []
    for ticket in tickets:
        if not groups or groups[-1]["performance"].pk != ticket.performance_id:
            groups.append({"performance": ticket.performance, "tickets": []})
        groups[-1]["tickets"].append(ticket)
    gifts = list(order.donations.all())
    response = _page(
        request,
        "storefront/order.html",
        {
            "order": order,
            "groups": groups,
            "ticket_count": len(tickets),
            "valid_count": sum(1 for t in tickets if t.status == Ticket.VALID),
            "gifts": gifts,
            "pending": order.status == Order.PENDING,
            # A season subscription bought online (its package, as priced when it was bought).
            "season_package": _season_package(order) if not tickets else None,
            "keepable": bool(ticket_files.keepable_tickets(order, tickets)),
            # Money that arrived after the order could not be fulfilled (seats taken after the
            # hold ran out) and was sent back at once: the patron is told on this page.
            "auto_refunded_cents": _auto_refunded_cents(order) if order.status == Order.CANCELED else 0,
        },
    )
    # An order page is reached by its secret link: keep it out of shared caches and indexes.
    response["X-Robots-Tag"] = "noindex"
    return response


def _season_package(order: Order) -> dict[str, Any] | None:
    sub = order.subscriptions.select_related("subscription_type").first()
    if sub is not None:
        return {"name": sub.subscription_type.name, "tickets_included": sub.tickets_included}
    checkout = getattr(order, "checkout_session", None) if order.status == Order.PENDING else None
    package = checkout.priced.get("subscription") if checkout is not None else None
    return {"name": package.get("name", ""), "tickets_included": package.get("tickets_included", 0)} if package else None


def _keepable(token: str) -> tuple[Order, list[Ticket]]:
    order = get_object_or_404(Order.objects.select_related("patron"), token=token)
    tickets = ticket_files.keepable_tickets(order)
    if not tickets:
        raise Http404("This order has no valid tickets.")
    return order, tickets


def _file(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # Reached by the order's secret link, like the order page: never in a shared cache or index.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_GET
def order_tickets_pdf(request: HttpRequest, token: str) -> HttpResponse:
    """The order's valid tickets, one PDF page each (the file the confirmation email carries)."""
    order, tickets = _keepable(token)
    return _file(ticket_files.ticket_pdf(order, tickets), "application/pdf", ticket_files.pdf_filename(order))


@require_GET
def order_calendar(request: HttpRequest, token: str) -> HttpResponse:
    order, tickets = _keepable(token)
    url = request.build_absolute_uri(reverse("storefront:order", kwargs={"token": order.token}))
    return _file(ticket_files.calendar_file(order, tickets, order_url=url), "text/calendar; charset=utf-8", ticket_files.calendar_filename(order))


@require_GET
def ticket_qr(request: HttpRequest, code: str) -> HttpResponse:
    """The ticket's QR code as SVG. It encodes the ticket code and nothing else."""
    if not Ticket.objects.filter(code=code, status=Ticket.VALID).exists():
        raise Http404("No such ticket")
    image = qrcode.make(code, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    response = HttpResponse(image.to_string(encoding="unicode"), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Robots-Tag"] = "noindex"
    return response


# ------------------------------------------------------------------ donations


@never_cache
@require_http_methods(["GET", "POST"])
def donate(request: HttpRequest) -> HttpResponse:
    synchronous = _provider_is_synchronous()
    if request.method == "GET":
        form = DonationForm(initial={"submission": secrets.token_urlsafe(16)}, card_fields=synchronous)
        return _page(request, "storefront/donate.html", _donate_context(form, synchronous))
    form = DonationForm(request.POST, card_fields=synchronous)
    status = 422
    if form.is_valid():
        d = form.cleaned_data
        try:
            if not synchronous:
                # Paid on the provider's page; the order page waits for its confirmation.
                order, page = pending_sales.start_donation(
                    d["amount"], form.buyer(), anonymous=bool(d.get("anonymous")), comment=d.get("comment", ""), idempotency_key=d["submission"],
                )
                return redirect(page)
            order = donations.donate(
                d["amount"], form.buyer(), payment=form.payment(), anonymous=bool(d.get("anonymous")),
                comment=d.get("comment", ""), idempotency_key=d["submission"],
            )
        except errors.SaleError as exc:
            _add_sale_error(form, exc, DONATION_FIELDS)
            status = exc.status
        else:
            messages.success(request, f"Thank you for your gift! A receipt is on its way to {order.buyer_email}.")
            return redirect("storefront:order", token=order.token)
    return _page(request, "storefront/donate.html", _donate_context(form, synchronous), status)


def _donate_context(form: DonationForm, synchronous: bool) -> dict[str, Any]:
    return {"form": form, "available": True, "presets": DonationForm.PRESETS, "test_provider": settings.PAYMENT_PROVIDER == "test"}
