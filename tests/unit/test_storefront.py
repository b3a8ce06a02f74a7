"""The storefront as a patron uses it: pages, cart, checkout, order page and QR codes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import qrcode
import qrcode.image.svg
from django.core import mail
from django.utils import timezone

from wondertix.catalog.models import PriceType
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Patron
from wondertix.payments.models import Payment
from wondertix.sales import inventory
from wondertix.sales.models import DiscountCode, Hold, HoldLine, Order, Ticket

pytestmark = pytest.mark.django_db

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"


def contact(**overrides):
    data = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.org",
        "phone": "555-010-2000",
        "address_line1": "12 Analytical Way",
        "city": "Portland",
        "region": "OR",
        "postal_code": "97201",
        "accommodation": "Aisle seat please",
        "card_number": GOOD_CARD,
        "card_expiry": "12/30",
        "card_cvc": "123",
    }
    data.update(overrides)
    return data


def available(perf) -> int:
    return inventory.availability_for([perf.pk])[perf.pk].available


def hold_tickets(client, perf, **quantities):
    data = {f"qty_{getattr(perf, name).pk}": str(q) for name, q in quantities.items()}
    response = client.post(f"/performances/{perf.pk}/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/cart/"
    return response


def hold_token(client) -> str:
    return client.session["storefront.hold"]


def text_of(response) -> str:
    """The page's visible text, whitespace collapsed (what a patron reads)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'").replace("&amp;", "&")


# ------------------------------------------------------------------ browsing


def test_events_list_shows_live_availability(client, make_performance):
    roomy = make_performance(capacity=100)
    nearly = make_performance(capacity=10)
    gone = make_performance(capacity=2)
    nearly.event.title = "Nearly Full"
    nearly.event.save()
    nearly.__class__.objects.filter(pk=nearly.pk).update(tickets_sold=7)
    gone.__class__.objects.filter(pk=gone.pk).update(tickets_sold=2)

    page = text_of(client.get("/"))
    assert roomy.event.title in page
    assert "Only 3 left" in page
    assert "Sold out" in page

    event_page = client.get(f"/events/{nearly.event.slug}/")
    assert event_page.status_code == 200
    assert "Only 3 left" in text_of(event_page)
    assert f'href="/performances/{nearly.pk}/"' in event_page.content.decode()


def test_inactive_or_unknown_pages_are_404(client, make_performance):
    perf = make_performance()
    perf.event.active = False
    perf.event.save()
    assert client.get(f"/events/{perf.event.slug}/").status_code == 404
    assert client.get(f"/performances/{perf.pk}/").status_code == 404
    assert client.get("/performances/999999/").status_code == 404
    assert client.get("/orders/not-a-real-token/").status_code == 404


# ------------------------------------------------------------------ the whole purchase


def test_whole_purchase_through_the_pages(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=50)
    before = available(perf)

    assert f"/events/{perf.event.slug}/" in client.get("/").content.decode()
    assert f"/performances/{perf.pk}/" in client.get(f"/events/{perf.event.slug}/").content.decode()
    page = client.get(f"/performances/{perf.pk}/")
    assert page.status_code == 200
    assert f'name="qty_{perf.adult.pk}"' in page.content.decode()

    hold_tickets(client, perf, adult=2)
    assert available(perf) == before - 2  # held while the patron checks out

    cart = client.get("/cart/")
    again = client.get("/cart/")  # the cart survives a reload
    for response in (cart, again):
        text = text_of(response)
        assert "2 × Adult at $25.00 + $2.00 fee" in text
        assert "Total $54.00" in text
        assert "held for you until" in text
    assert 'data-seconds-left="' in cart.content.decode()
    assert f'href="/performances/{perf.pk}/">Change' in cart.content.decode()

    checkout_page = client.get("/checkout/")
    assert checkout_page.status_code == 200
    assert "Pay $54.00" in text_of(checkout_page)

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/checkout/", contact(hold=hold_token(client)))
    assert done.status_code == 302
    order = Order.objects.get()
    assert done["Location"] == f"/orders/{order.token}/"
    assert order.status == Order.PAID
    assert order.total_cents == 5400
    assert order.buyer_accommodation == "Aisle seat please"

    confirmation = client.get(done["Location"])
    html = confirmation.content.decode()
    tickets = list(order.tickets.all())
    assert len(tickets) == 2
    for t in tickets:
        assert f'src="/tickets/{t.code}/qr.svg"' in html
        assert t.code in html
    assert html.count('class="ticket__qr"') == 2
    assert "Your order is confirmed" in text_of(confirmation)
    assert "Total paid $54.00" in text_of(confirmation)

    perf.refresh_from_db()
    assert perf.tickets_sold == 2
    assert available(perf) == before - 2
    assert len(mail.outbox) == 1
    assert "storefront.hold" not in client.session
    assert "Your cart is empty" in text_of(client.get("/cart/"))


def test_confirmation_email_lists_ticket_codes_and_order_link(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=20)
    hold_tickets(client, perf, adult=1, student=1)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/checkout/", contact(hold=hold_token(client)))
    order = Order.objects.get()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ada@example.org"]
    assert order.reference in message.subject
    link = f"/orders/{order.token}/"
    html = message.alternatives[0][0]
    for t in order.tickets.all():
        assert t.code in message.body
        assert t.code in html
    assert link in message.body and link in html
    assert "Total paid: $39.00" in message.body
    assert perf.event.title in message.body
    order.refresh_from_db()
    assert order.email_sent_at is not None


# ------------------------------------------------------------------ refusals


def test_declined_card_shows_message_keeps_availability_and_try_again_reholds(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    before = available(perf)
    hold_tickets(client, perf, adult=2)

    declined = client.post("/checkout/", contact(card_number=DECLINED_CARD, hold=hold_token(client)))
    assert declined.status_code == 402
    text = text_of(declined)
    assert "Your card was declined" in text
    assert "You have not been charged" in text
    assert ">Try again</button>" in declined.content.decode()
    # The declined payment released the seats; nothing was written.
    assert available(perf) == before
    assert Order.objects.count() == 0 and Ticket.objects.count() == 0 and Payment.objects.count() == 0
    assert Patron.objects.count() == 0

    # One button holds the same selection again and brings back the details already typed.
    retry = client.post("/cart/hold-again/", {"next": "checkout"})
    assert retry.status_code == 302 and retry["Location"] == "/checkout/"
    assert available(perf) == before - 2
    form = client.get("/checkout/").content.decode()
    assert 'value="ada@example.org"' in form
    card_input = re.search(r'<input[^>]*name="card_number"[^>]*>', form).group(0)
    assert "value=" not in card_input  # card data is never kept

    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post("/checkout/", contact(hold=hold_token(client)))
    assert paid.status_code == 302
    assert Order.objects.get().tickets.count() == 2
    assert available(perf) == before - 2


def test_expired_hold_is_refused_clearly_and_writes_nothing(client, make_performance):
    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=2)
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.update(expires_at=past)
    HoldLine.objects.update(expires_at=past)
    before = available(perf)
    assert before == 10  # an expired hold holds nothing

    cart = text_of(client.get("/cart/"))
    assert "Your hold has expired" in cart
    assert "Hold these seats again" in cart

    refused = client.post("/checkout/", contact(hold=hold_token(client)))
    assert refused.status_code == 409
    text = text_of(refused)
    assert "held for a limited time and have been released" in text
    assert "no order was placed" in text
    assert Order.objects.count() == 0 and Patron.objects.count() == 0 and Payment.objects.count() == 0
    assert available(perf) == before


def test_double_submit_and_back_button_replay_create_one_order(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=2)
    data = contact(hold=hold_token(client))
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/checkout/", data)
        second = client.post("/checkout/", data)
    order = Order.objects.get()
    assert first["Location"] == second["Location"] == f"/orders/{order.token}/"
    assert Ticket.objects.count() == 2
    assert Payment.objects.count() == 1
    assert len(mail.outbox) == 1
    perf.refresh_from_db()
    assert perf.tickets_sold == 2


def test_service_refusing_a_consumed_hold_lands_on_the_order(client, make_performance, buyer, good_card):
    """A second request that slipped past the page's own check is refused by the service
    (cart_already_checked_out) and shown the order instead of an error."""
    from wondertix.sales.services import CheckoutDetails, checkout

    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=1)
    order = checkout(hold_token(client), CheckoutDetails(buyer=buyer, payment=good_card))
    # The session still holds the consumed hold (the other request has not answered yet).
    response = client.post("/checkout/", contact(hold=hold_token(client)))
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.token}/"
    assert Order.objects.count() == 1


def test_invalid_email_is_shown_next_to_the_field_and_nothing_is_written(client, make_performance):
    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=1)
    response = client.post("/checkout/", contact(email="ada-at-example", hold=hold_token(client)))
    assert response.status_code == 422
    html = response.content.decode()
    assert re.search(r'<ul class="errorlist" id="id_email_error"><li>Please enter a valid email address', html)
    assert re.search(r'<input type="email" name="email"[^>]*aria-invalid="true"', html)
    assert 'aria-describedby="id_email_helptext id_email_error"' in html
    assert Order.objects.count() == 0 and Patron.objects.count() == 0
    # The seats are still held: the patron only has to fix the email.
    assert available(perf) == 9


def test_bad_discount_code_is_shown_next_to_its_field(client, make_performance):
    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=1)
    response = client.post("/checkout/", contact(discount_code="nope", hold=hold_token(client), expected_total="2700"))
    assert response.status_code == 422
    html = response.content.decode()
    assert re.search(r'id="id_discount_code_error"><li>The discount code “NOPE” does not exist', html)
    assert Order.objects.count() == 0 and Patron.objects.count() == 0 and Payment.objects.count() == 0
    assert available(perf) == 9

    DiscountCode.objects.create(code="GROUP4", kind=DiscountCode.AMOUNT, value=500, min_tickets=4)
    below = client.post("/checkout/", contact(discount_code="group4", hold=hold_token(client)))
    assert below.status_code == 422
    assert "needs at least 4 eligible tickets" in text_of(below)
    assert Order.objects.count() == 0


def test_valid_discount_code_and_donation_are_applied(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=10)
    DiscountCode.objects.create(code="WELCOME10", kind=DiscountCode.PERCENT, value=10)
    hold_tickets(client, perf, adult=2)
    data = contact(discount_code="welcome10", donation_amount="15", donation_anonymous="on", hold=hold_token(client))
    # The button promised $54.00: the new total is shown for confirmation, nothing charged.
    confirm = client.post("/checkout/", {**data, "expected_total": "5400"})
    assert confirm.status_code == 200
    text = text_of(confirm)
    assert "Please check your new total: $64.00" in text
    assert "Discount −$5.00" in text and "Donation $15.00" in text
    assert "Pay $64.00" in text
    assert 'name="expected_total" value="6400"' in confirm.content.decode()
    assert Order.objects.count() == 0 and Payment.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/checkout/", {**data, "expected_total": "6400"})
    assert done.status_code == 302
    order = Order.objects.get()
    assert order.discount_cents == 500 and order.donation_cents == 1500
    assert order.total_cents == 5000 + 400 - 500 + 1500
    assert order.donations.get().anonymous is True
    text = text_of(client.get(done["Location"]))
    assert "Discount (WELCOME10) −$5.00" in text
    assert "Donation $15.00" in text


def test_malformed_card_number_is_caught_before_the_seats_are_touched(client, make_performance):
    perf = make_performance(capacity=10)
    hold_tickets(client, perf, adult=1)
    response = client.post("/checkout/", contact(card_number="4242 4242 4242 4243", hold=hold_token(client)))
    assert response.status_code == 422
    assert "That card number is not valid" in text_of(response)
    assert available(perf) == 9  # still held: a typo does not cost the patron their seats


def test_quantity_above_what_is_left_is_refused_on_the_performance_page(client, make_performance):
    perf = make_performance(capacity=10, student_limit=3)
    response = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.student.pk}": "4"})
    assert response.status_code == 422
    assert "Only 3 “Student” tickets can be chosen." in text_of(response)
    nothing = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "0"})
    assert nothing.status_code == 422
    assert "Choose at least one ticket." in text_of(nothing)
    assert Hold.objects.count() == 0


def test_pay_what_you_can_needs_an_amount_of_at_least_the_minimum(client, make_performance):
    perf = make_performance(capacity=10)
    low = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.pwyc.pk}": "1", f"amount_{perf.pwyc.pk}": "2"})
    assert low.status_code == 422
    assert "Please enter an amount from $5.00 to $50.00." in text_of(low)
    assert Hold.objects.count() == 0
    ok = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.pwyc.pk}": "2", f"amount_{perf.pwyc.pk}": "12.50"})
    assert ok.status_code == 302
    assert HoldLine.objects.get().unit_price_cents == 1250
    assert "2 × Pay what you can at $12.50" in text_of(client.get("/cart/"))


def test_sold_out_performance_offers_no_form(client, make_performance):
    perf = make_performance(capacity=2)
    perf.__class__.objects.filter(pk=perf.pk).update(tickets_sold=2)
    page = client.get(f"/performances/{perf.pk}/")
    assert "This performance is sold out." in text_of(page)
    assert "<form" not in page.content.decode().split("<main", 1)[1]


def test_changing_tickets_replaces_the_selection_without_counting_own_seats(client, make_performance):
    perf = make_performance(capacity=3)
    hold_tickets(client, perf, adult=2)
    # Asking for 3 must succeed: the patron's own 2 held seats are theirs to change.
    page = client.get(f"/performances/{perf.pk}/").content.decode()
    assert f'name="qty_{perf.adult.pk}" value="2"' in page
    hold_tickets(client, perf, adult=3)
    assert HoldLine.objects.filter(expires_at__gt=timezone.now()).count() == 1
    assert HoldLine.objects.get(expires_at__gt=timezone.now()).quantity == 3
    assert available(perf) == 0


def test_empty_cart_releases_the_seats(client, make_performance):
    perf = make_performance(capacity=5)
    hold_tickets(client, perf, adult=2)
    assert available(perf) == 3
    response = client.post("/cart/empty/")
    assert response.status_code == 302
    assert available(perf) == 5
    assert "Your cart is empty" in text_of(client.get("/cart/"))


def test_free_tickets_skip_payment(client, make_performance, django_capture_on_commit_callbacks):
    perf = make_performance(capacity=5)
    free = PriceType.objects.create(event=perf.event, name="Preview", price_cents=0, fee_cents=0)
    client.post(f"/performances/{perf.pk}/", {f"qty_{free.pk}": "2"})
    page = client.get("/checkout/")
    assert 'name="card_number"' not in page.content.decode()
    assert "Get my tickets" in text_of(page)
    data = {k: v for k, v in contact(hold=hold_token(client)).items() if not k.startswith("card_")}
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/checkout/", data)
    assert done.status_code == 302
    order = Order.objects.get()
    assert order.total_cents == 0 and order.tickets.count() == 2
    assert Payment.objects.count() == 0


def test_pending_provider_redirects_to_payment_and_order_shows_awaiting(client, make_performance, monkeypatch):
    """With a redirect provider (stripe), checkout hands over to start_payment and the order
    page says the payment is awaited."""
    import sys
    import types

    from wondertix.storefront import views

    perf = make_performance(capacity=5)
    hold_tickets(client, perf, adult=1)
    seen = {}

    def start_payment(token, details):
        seen["token"], seen["email"] = token, details.buyer.email
        seen["calls"] = seen.get("calls", 0) + 1
        order = Order.objects.filter(hold__token=token).first() or Order.objects.create(
            status=Order.PENDING, hold=Hold.objects.get(token=token), buyer_name="Ada Lovelace",
            buyer_email=details.buyer.email, subtotal_cents=2500, fees_cents=200, total_cents=2700,
        )
        return order, "https://checkout.example.test/pay/abc"

    monkeypatch.setitem(sys.modules, "wondertix.sales.pending", types.SimpleNamespace(start_payment=start_payment))
    monkeypatch.setattr(views, "_provider_is_synchronous", lambda: False)
    page = client.get("/checkout/")
    assert 'name="card_number"' not in page.content.decode()
    assert "Continue to payment" in text_of(page)
    token = hold_token(client)
    data = {k: v for k, v in contact(hold=token).items() if not k.startswith("card_")}
    response = client.post("/checkout/", data)
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.example.test/pay/abc"
    assert seen == {"token": token, "email": "ada@example.org", "calls": 1}
    order = Order.objects.get()
    text = text_of(client.get(f"/orders/{order.token}/"))
    assert "Awaiting payment confirmation" in text
    assert 'http-equiv="refresh"' in client.get(f"/orders/{order.token}/").content.decode()
    # Back from the payment page without paying: the cart (and its seats) are still there,
    # and submitting again goes back to the same payment page, never a second order.
    assert "1 × Adult" in text_of(client.get("/cart/"))
    again = client.post("/checkout/", data)
    assert again["Location"] == "https://checkout.example.test/pay/abc"
    assert seen["calls"] == 2 and Order.objects.count() == 1
    # Once paid (the provider's confirmation consumed the hold), the cart leads to the order.
    Order.objects.filter(pk=order.pk).update(status=Order.PAID)
    Hold.objects.filter(token=token).update(consumed_at=timezone.now())
    assert client.get("/cart/")["Location"] == f"/orders/{order.token}/"
    assert client.post("/checkout/", data)["Location"] == f"/orders/{order.token}/"


# ------------------------------------------------------------------ QR codes


def test_qr_endpoint_serves_svg_of_the_ticket_code_and_404_for_unknown(client, make_performance, buyer, good_card):
    from wondertix.sales.services import CheckoutDetails, LineRequest, sell

    perf = make_performance(capacity=5)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    ticket = order.tickets.get()
    response = client.get(f"/tickets/{ticket.code}/qr.svg")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    body = response.content.decode()
    assert "<svg" in body
    # The image is exactly the QR of the code and nothing else.
    expected = qrcode.make(ticket.code, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2).to_string(encoding="unicode")
    assert body == expected
    assert client.get("/tickets/NOSUCHTICKET0000/qr.svg").status_code == 404
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.REFUNDED)
    assert client.get(f"/tickets/{ticket.code}/qr.svg").status_code == 404


def test_pages_carry_no_inline_script_or_style(client, make_performance):
    """CSP is script-src 'self' / style-src 'self': inline code would simply not run."""
    perf = make_performance(capacity=5)
    hold_tickets(client, perf, adult=1)
    for url in ("/", f"/events/{perf.event.slug}/", f"/performances/{perf.pk}/", "/cart/", "/checkout/", "/donate/"):
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), url
        assert "<style" not in html and " style=" not in html, url
        assert " onclick=" not in html, url


def test_audit_entry_written_for_web_order(client, make_performance):
    perf = make_performance(capacity=5)
    hold_tickets(client, perf, adult=1)
    client.post("/checkout/", contact(hold=hold_token(client)))
    assert AuditEntry.objects.filter(action="order.paid").count() == 1


def test_error_pages_are_friendly_and_carry_the_request_id(client, rf):
    from wondertix.ops import requestid
    from wondertix.ops.errors import server_error

    missing = client.get("/no-such-page/", headers={"X-Request-Id": "req-abcdef123456"})
    assert missing.status_code == 404
    text = text_of(missing)
    assert "We could not find that page" in text
    assert "req-abcdef123456" in text
    assert "Traceback" not in text

    _, token = requestid.begin("req-987654321")
    try:
        crashed = server_error(rf.get("/checkout/"))
    finally:
        requestid.end(token)
    assert crashed.status_code == 500
    body = crashed.content.decode()
    assert "Something went wrong on our side" in body and "req-987654321" in body
    assert "Traceback" not in body and "<script" not in body


def test_holder_of_the_last_seats_can_still_change_them(client, make_performance):
    perf = make_performance(capacity=2)
    hold_tickets(client, perf, adult=2)
    page = client.get(f"/performances/{perf.pk}/")
    assert "Add to cart" in text_of(page)  # sold out to others, not to the patron holding them
    hold_tickets(client, perf, adult=1)
    assert available(perf) == 1
    other = client.__class__()
    other.get("/")
    hold_tickets(other, perf, adult=1)
    refused = client.__class__().post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "1"})
    assert refused.status_code == 409
    assert "This performance is sold out." in text_of(refused)
    assert Hold.objects.filter(expires_at__gt=timezone.now(), consumed_at__isnull=True).count() == 2
