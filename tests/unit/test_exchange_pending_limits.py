"""An exchange waiting for its card payment (the difference paid on the processor's page or on
a reader) keeps its places against every limit until it settles: its new tickets are issued
canceled and its old ones marked exchanged, yet one side of it will stand — so neither a price
type's limit, nor a standing area's size, nor a staff edit of a limit may treat those places as
free meanwhile."""

from __future__ import annotations

import pytest
from django.test import override_settings
from test_patron_account import show  # noqa: F401 (fixture)
from test_seat_editor import _doc, _save, admin  # noqa: F401 (fixture)
from tests.unit.seating_fixtures import make_reserved

from wondertix.catalog import performance_prices
from wondertix.catalog.models import Performance
from wondertix.catalog.staff import update_price_type
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
