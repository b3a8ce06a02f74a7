"""The box office exchanges a ticket to a seat it clicks on the seat map: the staff order page
leads to the POS's seat picker for the target performance, the clerk clicks a free seat on the
map, sees the price difference, confirms, and the ticket has the new seat. The seat page passes
axe's WCAG A/AA rules, and its zoom buttons look exactly like the patron map's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from tests.e2e.seating_steps import map_index
from tests.support.a11y_world import sign_in
from tests.support.axe import add_axe, audit
from tests.unit.seating_fixtures import make_reserved

pytestmark = pytest.mark.django_db(transaction=True)

# (Padding is in rem, and the two sites' root font sizes differ: not compared.)
ZOOM_LOOK = ["borderTopColor", "borderTopWidth", "borderTopStyle", "backgroundColor", "color", "minHeight", "minWidth", "borderRadius", "fontWeight", "display"]


def _zoom_look(page) -> dict:  # noqa: ANN001
    return page.evaluate(f"(() => {{ const s = getComputedStyle(document.querySelector('[data-zoom=in]')); return Object.fromEntries({ZOOM_LOOK!r}.map(k => [k, s[k]])); }})()")


def test_a_clerk_exchanges_a_ticket_to_a_seat_clicked_on_the_map(desktop, live_server):
    from wondertix.catalog import seating
    from wondertix.catalog.models import Performance
    from wondertix.payments.providers.base import PaymentDetails
    from wondertix.sales.models import Ticket
    from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

    r = make_reserved()
    other = seating.use_chart(Performance.objects.create(event=r.perf.event, starts_at=r.perf.starts_at + timedelta(days=1), capacity=1), r.perf.seating_chart)
    order = sell([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/A/1"],))],
                 CheckoutDetails(buyer=Buyer("Ada", "Lovelace", "ada@example.org"), payment=PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2099, cvc="123")))
    clerk = User.objects.create_user("exchange-clerk", is_staff=True)
    clerk.groups.add(Group.objects.get(name="box_office"))
    page, base = desktop, live_server.url
    add_axe(page.context)

    # The patron's map, for the look of its zoom buttons.
    page.goto(f"{base}/performances/{other.pk}/")
    patron_look = _zoom_look(page)

    sign_in(page.context, base, "exchange-clerk")
    page.goto(f"{base}/staff/sales/orders/{order.pk}/")
    page.locator('form[action$="/exchange/"] input[name="ticket"]').first.check()
    page.locator("#to_performance").select_option(str(other.pk))
    page.get_by_role("button", name="See the price difference").click()
    page.wait_for_load_state("load")
    assert "Seats for the exchange to" in page.locator("h1").inner_text()
    assert page.locator(".seatmap__svg").is_visible()
    assert _zoom_look(page) == patron_look
    problems = audit(page, "staff exchange seats")
    assert not problems, "\n".join(problems)

    c5 = r.seats["Orchestra/C/5"]
    page.locator(f'.seatmap__svg [data-i="{map_index(page, c5)}"]').click()
    assert page.locator(f'input[name="seat"][value="{c5}"]').is_checked()  # the list follows the map
    assert "Orchestra row C seat 5" in page.locator("[data-chosen-list]").inner_text()
    page.get_by_role("button", name="See the price difference").click()
    page.wait_for_load_state("load")
    assert "No price difference" in page.locator("main").inner_text()
    page.get_by_role("button", name="Exchange 1 ticket").click()
    page.wait_for_url(f"**/staff/sales/orders/{order.pk}/")
    [moved] = Ticket.objects.filter(order=order, status=Ticket.VALID)
    assert (moved.performance_id, moved.seat_id) == (other.pk, c5)

    # The window's own map has the same zoom buttons.
    page.goto(f"{base}/staff/pos/{other.pk}/")
    assert _zoom_look(page) == patron_look
    assert not page.problems, page.problems  # type: ignore[attr-defined]
