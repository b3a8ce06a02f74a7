"""What a new patron does on a phone: find a show, buy two tickets, see them; then a
declined card, which must say so clearly and leave availability alone."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from wondertix.sales import inventory

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"


def available(perf) -> int:
    return inventory.availability_for([perf.pk])[perf.pk].available


def fill_checkout(page, card: str) -> None:
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Phone").fill("555 010 2000")
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry date").fill("12/30")
    page.get_by_label("CVC").fill("123")


def choose_two_adults(page, live_server, perf) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name=perf.event.title).first.click()
    page.get_by_role("link", name=re.compile("Choose tickets")).first.click()
    page.wait_for_url(f"**/performances/{perf.pk}/")
    # The + button (JS) raises the quantity; the running total follows.
    page.get_by_role("button", name="One more Adult").click()
    page.get_by_role("button", name="One more Adult").click()
    assert page.get_by_role("spinbutton", name="Adult").input_value() == "2"
    assert "2 tickets · $54.00" in page.locator(".selection-total").inner_text()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart/")


def test_patron_buys_two_tickets_then_a_declined_card_changes_nothing(phone, live_server, make_performance, artifacts):
    page = phone
    perf = make_performance(capacity=8)
    perf.event.description = "A storm, an island and a magician."
    perf.event.save()
    assert available(perf) == 8

    # ---- buy two Adult tickets with the good card
    choose_two_adults(page, live_server, perf)
    assert page.locator(".countdown__clock").is_visible()  # JS countdown from the server's expiry
    assert re.search(r"\d+:\d\d left to check out", page.locator(".countdown__clock").inner_text())
    page.reload()  # the cart survives a reload
    assert "2 × Adult" in page.locator(".cart-lines").inner_text()
    page.get_by_role("link", name="Check out").click()
    page.wait_for_url("**/checkout/")
    fill_checkout(page, GOOD)
    page.get_by_role("button", name="Pay $54.00").click()
    page.wait_for_url("**/orders/*/")

    assert page.get_by_role("heading", name="Your tickets").is_visible()
    assert "Your order is confirmed" in page.locator(".messages").inner_text()
    qr = page.locator("img.ticket__qr")
    assert qr.count() == 2
    for i in range(2):
        assert qr.nth(i).is_visible()
        qr.nth(i).scroll_into_view_if_needed()
        # The SVG really loaded (not a broken image) and is big enough to scan at the door.
        size = qr.nth(i).evaluate("img => [img.complete, img.naturalWidth, img.getBoundingClientRect().width]")
        assert size[0] and size[1] > 0 and size[2] >= 150, size
    codes = page.locator(".ticket__code .code").all_inner_texts()
    assert len(codes) == 2

    page.evaluate("window.scrollTo(0, 0)")
    shot = artifacts / "confirmation-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    # Nothing wider than the phone: no sideways scrolling on the confirmation page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    assert len(mail.outbox) == 1
    for code in codes:
        assert code in mail.outbox[0].body
    assert page.url.replace(live_server.url, "") in mail.outbox[0].body
    assert available(perf) == 6
    page.goto(f"{live_server.url}/events/{perf.event.slug}/")
    assert "Only 6 left" in page.locator(".perf-list").inner_text()

    # ---- the declined card: a clear message, nothing sold, availability unchanged
    choose_two_adults(page, live_server, perf)
    assert available(perf) == 4  # held while checking out
    page.get_by_role("link", name="Check out").click()
    fill_checkout(page, DECLINED)
    page.get_by_role("button", name="Pay $54.00").click()
    alert = page.get_by_role("alert")
    assert "Your card was declined" in alert.inner_text()
    assert "You have not been charged" in alert.inner_text()
    assert available(perf) == 6
    assert len(mail.outbox) == 1
    page.goto(f"{live_server.url}/events/{perf.event.slug}/")
    assert "Only 6 left" in page.locator(".perf-list").inner_text()

    assert page.problems == []  # type: ignore[attr-defined]


def test_try_again_after_a_decline_keeps_the_patron_details(phone, live_server, make_performance):
    page = phone
    perf = make_performance(capacity=8)
    choose_two_adults(page, live_server, perf)
    page.get_by_role("link", name="Check out").click()
    fill_checkout(page, DECLINED)
    page.get_by_role("button", name="Pay $54.00").click()
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url("**/checkout/")
    assert page.get_by_label("Email").input_value() == "ada@example.org"
    assert page.get_by_label("Card number").input_value() == ""
    page.get_by_label("Card number").fill(GOOD)
    page.get_by_label("Expiry date").fill("12/30")
    page.get_by_label("CVC").fill("123")
    # Adding a donation moves the total on the Pay button as it is typed.
    page.get_by_label("Add a donation").fill("10")
    page.get_by_role("button", name="Pay $64.00").click()
    page.wait_for_url("**/orders/*/")
    assert page.locator("img.ticket__qr").count() == 2
    assert "Donation $10.00" in page.locator(".order-summary").inner_text().replace("\n", " ").replace("\t", " ")
    assert available(perf) == 6
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_discount_code_that_makes_the_order_free_needs_no_card(phone, live_server, make_performance, artifacts):
    from wondertix.catalog.models import PriceType
    from wondertix.payments.models import Payment
    from wondertix.sales.models import DiscountCode, Order

    page = phone
    perf = make_performance(capacity=8)
    PriceType.objects.filter(pk=perf.adult.pk).update(fee_cents=0)
    DiscountCode.objects.create(code="COMPED", kind=DiscountCode.PERCENT, value=100)
    page.goto(f"{live_server.url}/performances/{perf.pk}/")
    page.get_by_role("button", name="One more Adult").click()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart/")
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Discount code").fill("comped")
    page.get_by_role("button", name="Pay $25.00").click()  # no card typed

    notice = page.get_by_role("alert")
    assert "Please check your new total: $0.00" in notice.inner_text()
    assert "Your order is now free" in notice.inner_text()
    assert page.get_by_label("Card number").count() == 0
    page.screenshot(path=str(artifacts / "checkout-free-after-discount-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("button", name="Get my tickets").click()
    page.wait_for_url("**/orders/*/")
    assert page.locator("img.ticket__qr").count() == 1
    order = Order.objects.get()
    assert order.total_cents == 0 and Payment.objects.count() == 0
    assert page.problems == []  # type: ignore[attr-defined]
