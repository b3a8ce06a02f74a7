"""An exchange waiting for its card payment (the difference paid on the processor's page or on
a reader) keeps its places against every limit until it settles: its new tickets are issued
canceled and its old ones marked exchanged, yet one side of it will stand — so neither a price
type's limit, nor a standing area's size, nor a staff edit of a limit may treat those places as
free meanwhile — and canceling the performance it goes to settles it first."""

from __future__ import annotations

import pytest
from django.test import override_settings
from test_patron_account import show  # noqa: F401 (fixture)
from test_seat_editor import _doc, _save, admin  # noqa: F401 (fixture)
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance
from wondertix.catalog.staff import update_price_type
from wondertix.payments.models import Payment
from wondertix.payments.providers.base import ProviderUnavailable
from wondertix.payments.providers.test import TestCardProvider
from wondertix.sales.cancellation import cancel_and_refund
from wondertix.sales.errors import SaleError
from wondertix.sales.exchanges import ExchangeRequest, exchange_tickets, finish_card_payment
from wondertix.sales.models import Order, Ticket
from wondertix.sales.refund_models import Exchange
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def _buy(perf: Performance, price_type, buyer, card, n: int, seat_ids: tuple[int, ...] = ()) -> Order:  # noqa: ANN001
    return sell([LineRequest(perf.pk, price_type.pk, n, seat_ids=seat_ids)], CheckoutDetails(buyer=buyer, payment=card))


def _pending(order: Order, tickets: list[Ticket], target: Performance, price_type, key: str = "pending-1") -> Exchange:  # noqa: ANN001
    """The difference is to be paid on the processor's page: the exchange stays pending."""
    request = ExchangeRequest([t.pk for t in tickets], target.pk, price_type.pk, method="card", hosted=True)
    with override_settings(PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_fixture_key"):
        exchange = exchange_tickets(order.pk, request, idempotency_key=key)
    assert exchange.status == Exchange.PENDING
    return exchange


def _refused(perf: Performance, price_type, buyer, card, n: int = 1) -> SaleError:  # noqa: ANN001
    with pytest.raises(SaleError) as exc:
        _buy(perf, price_type, buyer, card, n)
    return exc.value


def test_a_pending_exchange_holds_its_new_places_against_the_price_type_limit(show, buyer, good_card):  # noqa: F811
    first, second, premium = show
    premium.limit_per_performance = 3
    premium.save()
    order = _buy(first, first.adult, buyer, good_card, 2)
    exchange = _pending(order, list(order.tickets.all()), second, premium)

    # Two of the three Premium places are the exchange's: one is left, not three.
    err = _refused(second, premium, buyer, good_card, 2)
    assert err.code == "sold_out" and "only 1 “Premium” ticket left" in err.message
    _buy(second, premium, buyer, good_card, 1)
    assert _refused(second, premium, buyer, good_card).code == "sold_out"

    # Paid: the exchange completes into the places it kept, and the limit holds exactly.
    finish_card_payment(exchange.pk, ok=True, reference="pi_test_paid")
    assert Ticket.objects.filter(performance=second, price_type=premium, status=Ticket.VALID).count() == 3


def test_a_pending_exchange_holds_the_places_it_would_give_back_until_it_is_paid(show, buyer, good_card):  # noqa: F811
    first, second, premium = show
    adult = first.adult
    adult.limit_per_performance = 3
    adult.save()
    order = _buy(first, adult, buyer, good_card, 3)
    exchange = _pending(order, list(order.tickets.all()[:2]), second, premium)

    # The old tickets may be valid again (the payment is refused): their places stay taken.
    assert _refused(first, adult, buyer, good_card).code == "sold_out"
    finish_card_payment(exchange.pk, ok=False, message="Your card was declined.")
    assert Exchange.objects.get(pk=exchange.pk).status == Exchange.FAILED
    assert Ticket.objects.filter(performance=first, price_type=adult, status=Ticket.VALID).count() == 3
    assert _refused(first, adult, buyer, good_card).code == "sold_out"

    # Exchanged and paid this time: now the two places go back on sale.
    paid = _pending(order, list(Ticket.objects.filter(order=order, status=Ticket.VALID)[:2]), second, premium, key="pending-2")
    finish_card_payment(paid.pk, ok=True, reference="pi_test_paid")
    _buy(first, adult, buyer, good_card, 2)
    assert Ticket.objects.filter(performance=first, price_type=adult, status=Ticket.VALID).count() == 3


def test_an_undone_exchange_gives_its_new_places_back(show, buyer, good_card):  # noqa: F811
    first, second, premium = show
    premium.limit_per_performance = 2
    premium.save()
    order = _buy(first, first.adult, buyer, good_card, 2)
    exchange = _pending(order, list(order.tickets.all()), second, premium)
    assert _refused(second, premium, buyer, good_card).code == "sold_out"
    finish_card_payment(exchange.pk, ok=False, message="Your card was declined.")
    _buy(second, premium, buyer, good_card, 2)


def test_staff_cannot_lower_a_limit_below_the_places_a_pending_exchange_keeps(show, buyer, good_card, admin_user):  # noqa: F811
    first, second, premium = show
    order = _buy(first, first.adult, buyer, good_card, 2)
    _pending(order, list(order.tickets.all()), second, premium)

    with pytest.raises(SaleError) as exc:
        performance_prices.set_override(second.pk, premium.pk, {"limit_per_performance": 1}, actor=admin_user)
    assert exc.value.code == "limit_below_sold" and "2 already sold" in exc.value.message
    with pytest.raises(SaleError) as exc:
        update_price_type(premium.pk, {"limit_per_performance": 1}, actor=admin_user)
    assert exc.value.code == "limit_below_sold"
    # Exactly the places kept is allowed.
    performance_prices.set_override(second.pk, premium.pk, {"limit_per_performance": 2}, actor=admin_user)


def test_a_pending_exchange_into_a_standing_area_keeps_its_places(admin, buyer, good_card):  # noqa: ANN001, F811
    r = make_reserved(standing=3)
    standing = r.prices["Standing"]
    order = _buy(r.perf, r.prices["Orchestra"], buyer, good_card, 2, seat_ids=(r.seats["Orchestra/A/1"], r.seats["Orchestra/A/2"]))
    # A difference to pay (so a pending exchange): standing costs more than the seats here.
    standing.price_cents = 9000
    standing.save()
    _pending(order, list(order.tickets.all()), r.perf, standing)

    err = _refused(r.perf, standing, buyer, good_card, 2)
    assert err.code == "sold_out" and "only 1 “Standing” ticket left" in err.message
    # Nor can the editor shrink the area under the two places the exchange keeps.
    chart = r.perf.seating_chart
    doc = _doc(chart)
    next(c for c in doc["categories"] if c["name"] == "Standing")["limit_per_performance"] = 1
    answer = _save(admin, chart, doc)
    assert answer.status_code == 422 and "2 “Standing” places are sold or held" in answer.json()["message"]


def test_canceling_the_target_undoes_an_exchange_still_waiting_for_its_payment(show, buyer, good_card, admin_user, admin):  # noqa: F811
    first, second, premium = show
    order = _buy(first, first.adult, buyer, good_card, 2)
    exchange = _pending(order, list(order.tickets.all()), second, premium)
    bystander = _buy(second, second.adult, buyer, good_card, 1)
    page = admin.get(f"/staff/performances/{second.pk}/cancel/").content.decode()
    assert "1 exchange into this performance is waiting for a payment" in page

    result = cancel_and_refund(second.pk, "Lead actor ill", actor=admin_user)

    exchange.refresh_from_db()
    assert exchange.status == Exchange.FAILED and "canceled" in exchange.message
    # The patron keeps the tickets they had; nothing of theirs is on the canceled performance.
    assert list(Ticket.objects.filter(order=order).values_list("performance_id", "status")) == [(first.pk, Ticket.VALID)] * 2
    assert result.refunded_orders == [bystander.pk] and not result.failed
    assert Performance.objects.get(pk=second.pk).tickets_sold == 0
    assert Payment.objects.get(pk=exchange.charge_id).status == Payment.FAILED
    # A payment arriving now finds the exchange undone (and is refunded: payments.services).
    assert finish_card_payment(exchange.pk, ok=True, reference="pi_late").status == Exchange.FAILED
    assert "waiting for a payment" not in admin.get(f"/staff/performances/{second.pk}/cancel/").content.decode()


def test_canceling_the_target_finishes_an_exchange_waiting_for_its_refund_then_refunds_it(show, buyer, good_card, admin_user, monkeypatch):  # noqa: F811
    first, second, premium = show
    order = _buy(first, premium, buyer, good_card, 2)
    real_refund = TestCardProvider.refund

    def no_answer(self, **kwargs):  # noqa: ANN001, ANN003, ANN202
        raise ProviderUnavailable("no answer")

    monkeypatch.setattr(TestCardProvider, "refund", no_answer)
    request = ExchangeRequest([t.pk for t in order.tickets.all()], second.pk, second.adult.pk, method="original")
    with pytest.raises(SaleError) as exc:
        exchange_tickets(order.pk, request, idempotency_key="cheaper-1")
    assert exc.value.code == "exchange_pending"
    exchange = Exchange.objects.get(status=Exchange.PENDING)

    monkeypatch.setattr(TestCardProvider, "refund", real_refund)
    result = cancel_and_refund(second.pk, "Lead actor ill", actor=admin_user)

    exchange.refresh_from_db()
    assert exchange.status == Exchange.SUCCEEDED
    # The exchanged tickets landed on the canceled performance and were refunded with the rest.
    assert set(Ticket.objects.filter(order=order, performance=second).values_list("status", flat=True)) == {Ticket.REFUNDED}
    assert result.refunded_orders == [order.pk] and not result.failed
    assert Performance.objects.get(pk=second.pk).tickets_sold == 0
