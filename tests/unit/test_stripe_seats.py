"""Reserved seats paid on Stripe's page: the hold keeps the chosen seats while the patron is
away, and the signed webhook turns it into an order with exactly those seats — once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from tests.unit.seating_fixtures import make_reserved
from tests.unit.test_stripe_payments import counts, deliver, details, event_for, fake_stripe  # noqa: F401 - fixtures

from wondertix.ops.models import AuditEntry
from wondertix.sales.models import Hold, HoldLine, Order, SeatClaim, Ticket
from wondertix.sales.pending import start_payment
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, create_hold, sell

pytestmark = pytest.mark.django_db

A4, A5 = "Orchestra/A/4", "Orchestra/A/5"


def _hold(r, *labels):
    ids = tuple(r.seats[label] for label in labels)
    return create_hold([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, len(ids), seat_ids=ids)])


def _seats_of(order) -> list[int]:
    return sorted(order.tickets.values_list("seat_id", flat=True))


def _expire(hold) -> None:
    past = timezone.now() - timedelta(seconds=1)
    Hold.objects.filter(pk=hold.pk).update(expires_at=past)
    HoldLine.objects.filter(hold=hold).update(expires_at=past)
    SeatClaim.objects.filter(hold_line__hold=hold).update(expires_at=past)


def test_chosen_seats_stay_held_while_the_patron_is_on_stripes_page(fake_stripe, details):  # noqa: F811
    r = make_reserved()
    hold = _hold(r, A4, A5)
    order, url = start_payment(hold.token, details)
    assert order.status == Order.PENDING and url.startswith("https://checkout.stripe.com/")
    assert order.total_cents == 2 * (4500 + 200)
    claims = SeatClaim.objects.filter(hold_line__hold=hold)
    assert sorted(claims.values_list("seat_id", flat=True)) == sorted([r.seats[A4], r.seats[A5]])
    hold.refresh_from_db()
    # The claims last as long as the hold, which outlives the payment page.
    assert all(c.expires_at == hold.expires_at for c in claims)
    assert hold.expires_at > order.checkout_session.expires_at
    # Another buyer cannot take them meanwhile.
    with pytest.raises(Exception) as exc:
        _hold(r, A5)
    assert getattr(exc.value, "code", "") == "seat_taken"


def test_paid_webhook_issues_the_chosen_seats_once_even_when_delivered_twice(fake_stripe, client, details, django_capture_on_commit_callbacks):  # noqa: F811
    r = make_reserved()
    hold = _hold(r, A4, A5)
    order, _ = start_payment(hold.token, details)
    payload = event_for("event_checkout_session_completed", order)
    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(client, payload)
    after_first = counts()
    second = deliver(client, payload)

    assert first.json()["outcome"] == "order_paid"
    assert second.json()["outcome"] == "duplicate"
    assert counts() == after_first
    order.refresh_from_db()
    assert order.status == Order.PAID
    assert _seats_of(order) == sorted([r.seats[A4], r.seats[A5]])
    # The seats now belong to the tickets for good, not to the (consumed) hold.
    claims = SeatClaim.objects.filter(performance=r.perf)
    assert sorted(claims.values_list("seat_id", flat=True)) == _seats_of(order)
    assert all(c.ticket_id and c.expires_at is None for c in claims)
    r.perf.refresh_from_db()
    assert r.perf.tickets_sold == 2
    assert not [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]


def test_payment_after_the_hold_expired_still_gets_its_seats_when_nobody_took_them(fake_stripe, client, details):  # noqa: F811
    r = make_reserved()
    hold = _hold(r, A4, A5)
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "order_paid"
    order.refresh_from_db()
    assert _seats_of(order) == sorted([r.seats[A4], r.seats[A5]])


def test_payment_after_a_seat_was_taken_is_refunded_and_nothing_is_sold(fake_stripe, client, details, good_card):  # noqa: F811
    r = make_reserved()
    hold = _hold(r, A4, A5)
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    # Someone else buys seat A5 (released with the hold) at the box office.
    other = sell(
        [LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats[A5],))],
        CheckoutDetails(buyer=Buyer("Box", "Office", "box@example.org"), payment=good_card), provider_name="test", staff=True,
    )

    payload = event_for("event_checkout_session_completed", order)
    assert deliver(client, payload).json()["outcome"] == "refunded"
    assert deliver(client, payload).json()["outcome"] == "duplicate"

    refunds = [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]
    assert len(refunds) == 1 and refunds[0]["params"]["amount"] == str(order.total_cents)
    order.refresh_from_db()
    assert order.status == Order.CANCELED
    assert Ticket.objects.filter(order=order).count() == 0
    # A5 is the other buyer's; A4 is free again; only their one ticket is sold.
    claims = dict(SeatClaim.objects.filter(performance=r.perf).values_list("seat_id", "ticket__order_id"))
    assert claims == {r.seats[A5]: other.pk}
    r.perf.refresh_from_db()
    assert r.perf.tickets_sold == 1
    entry = AuditEntry.objects.get(action="order.canceled", object_id=str(order.pk))
    assert "taken" in entry.after["reason"]


def test_the_patron_is_told_on_the_order_page_that_the_payment_was_refunded(fake_stripe, client, details, good_card):  # noqa: F811
    r = make_reserved()
    hold = _hold(r, A4, A5)
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    sell(
        [LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats[A4],))],
        CheckoutDetails(buyer=Buyer("Box", "Office", "box@example.org"), payment=good_card), provider_name="test", staff=True,
    )
    deliver(client, event_for("event_checkout_session_completed", order))
    page = client.get(f"/orders/{order.token}/").content.decode()
    assert "refunded in full" in page


def test_storefront_sends_chosen_seats_to_stripe_and_shows_them_once_paid(fake_stripe, client, django_capture_on_commit_callbacks):  # noqa: F811
    from django.core import mail
    from tests.unit.test_storefront import contact, hold_token, text_of

    r = make_reserved()
    a5, a6 = r.seats["Orchestra/A/5"], r.seats["Orchestra/A/6"]
    assert client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(a5), str(a6)]}).status_code == 302
    sent = client.post("/checkout/", contact(hold=hold_token(client)))
    assert sent.status_code == 302 and sent["Location"].startswith("https://checkout.stripe.com/")
    order = Order.objects.get()
    assert order.status == Order.PENDING
    # While the patron pays, the map shows the seats as taken to everyone else.
    assert "Seat 5 (held by another patron)" in text_of(client.__class__().get(f"/performances/{r.perf.pk}/"))

    with django_capture_on_commit_callbacks(execute=True):
        deliver(client, event_for("event_checkout_session_completed", order))
    page = text_of(client.get(f"/orders/{order.token}/"))
    assert "Orchestra row A seat 5" in page and "Orchestra row A seat 6" in page
    assert "Orchestra row A seat 6" in mail.outbox[-1].body
    assert "Seat 5 (taken)" in text_of(client.__class__().get(f"/performances/{r.perf.pk}/"))


# ---------------------------------------------------------------- per-category limits, paid late


def _sell_box_office(r, category: str, quantity: int, card, seat_ids: tuple[int, ...] = ()):  # noqa: ANN001
    return sell(
        [LineRequest(r.perf.pk, r.prices[category].pk, quantity, seat_ids=seat_ids)],
        CheckoutDetails(buyer=Buyer("Box", "Office", "box@example.org"), payment=card), provider_name="test", staff=True,
    )


def _valid(r, category: str) -> int:
    return Ticket.objects.filter(performance=r.perf, price_type=r.prices[category], status=Ticket.VALID).count()


def test_late_payment_for_standing_places_is_refunded_when_others_filled_the_area_meanwhile(
    fake_stripe, client, details, good_card, django_capture_on_commit_callbacks,  # noqa: F811
):
    from django.core import mail

    from wondertix.payments.models import Payment

    r = make_reserved(standing=4)
    hold = create_hold([LineRequest(r.perf.pk, r.prices["Standing"].pk, 2)])
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    # The two places went back on sale with the hold; the box office sells the whole area.
    _sell_box_office(r, "Standing", 4, good_card)
    mail.outbox.clear()

    payload = event_for("event_checkout_session_completed", order)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, payload).json()["outcome"] == "refunded"
    assert deliver(client, payload).json()["outcome"] == "duplicate"

    # Never more standing tickets than the area holds; the rest of the house was free all along.
    assert _valid(r, "Standing") == 4
    r.perf.refresh_from_db()
    assert r.perf.tickets_sold == 4 and r.perf.capacity > 6
    order.refresh_from_db()
    assert order.status == Order.CANCELED and order.tickets.count() == 0
    refunds = [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]
    assert len(refunds) == 1 and refunds[0]["params"]["amount"] == str(order.total_cents)
    # Recorded like a lost seat: the charge and its refund on the order, the reason audited,
    # the patron told on the order page, and no confirmation email for tickets never issued.
    assert sorted(order.payments.values_list("kind", "amount_cents")) == sorted([(Payment.CHARGE, order.total_cents), (Payment.REFUND, order.total_cents)])
    entry = AuditEntry.objects.get(action="order.canceled", object_id=str(order.pk))
    assert "“Standing” has sold up to its limit" in entry.after["reason"]
    assert "refunded in full" in client.get(f"/orders/{order.token}/").content.decode()
    assert not [m for m in mail.outbox if "ada@example.org" in m.to]


def test_late_payment_for_standing_places_still_gets_them_while_the_area_has_room(fake_stripe, client, details, good_card):  # noqa: F811
    r = make_reserved(standing=4)
    hold = create_hold([LineRequest(r.perf.pk, r.prices["Standing"].pk, 2)])
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    _sell_box_office(r, "Standing", 2, good_card)

    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "order_paid"
    assert _valid(r, "Standing") == 4
    assert not [q for q in fake_stripe.requests if q["path"] == "/v1/refunds"]


def test_late_payment_for_seats_of_a_capped_category_is_refunded_when_the_cap_was_reached(fake_stripe, client, details, good_card):  # noqa: F811
    from wondertix.catalog.models import SeatCategory

    r = make_reserved()
    SeatCategory.objects.filter(pk=r.prices["Orchestra"].seat_category_id).update(limit_per_performance=3)
    hold = _hold(r, A4, A5)
    order, _ = start_payment(hold.token, details)
    _expire(hold)
    # A4 and A5 stay free, but three other Orchestra seats fill the category's cap.
    _sell_box_office(r, "Orchestra", 3, good_card, tuple(r.seats[f"Orchestra/B/{n}"] for n in (1, 2, 3)))

    assert deliver(client, event_for("event_checkout_session_completed", order)).json()["outcome"] == "refunded"
    assert _valid(r, "Orchestra") == 3
    order.refresh_from_db()
    assert order.status == Order.CANCELED
    # Its seats went back on sale, not to the refunded order.
    assert not SeatClaim.objects.filter(performance=r.perf, seat_id__in=[r.seats[A4], r.seats[A5]]).exists()
