"""Reserved seats at the window: the POS picks seats on the same seat list/map or by best
available, sells house seats, and holds and releases house seats with a note shown to staff."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from tests.unit.seating_fixtures import make_reserved

from wondertix.ops.models import AuditEntry
from wondertix.sales.models import Hold, Order, SeatClaim, Ticket
from wondertix.sales.services import LineRequest, create_hold

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    user = User.objects.create_user("window-2", is_staff=True)
    user.groups.add(Group.objects.get(name="box_office"))
    return user


@pytest.fixture
def window(clerk):
    client = Client()
    client.force_login(clerk)
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _input(html: str, seat_id: int) -> str:
    return re.search(rf'<input type="checkbox" name="seat" value="{seat_id}"[^>]*>', html).group(0)


def test_the_window_sells_ticked_seats_at_their_category_price_house_seats_included(window):
    r = make_reserved(flags={("Orchestra", "A", "1"): ["house_seat"]})
    a1, a2 = r.seats["Orchestra/A/1"], r.seats["Orchestra/A/2"]
    page = window.get(f"/staff/pos/{r.perf.pk}/")
    html = page.content.decode()
    assert "disabled" not in _input(html, a1) and "Seat 1 (house seat)" in _text(page)  # staff may sell it
    sold = window.post(f"/staff/pos/{r.perf.pk}/", {"seat": [str(a1), str(a2)], "payment_method": "cash"})
    assert sold.status_code == 302, _text(sold)[:3000]
    order = Order.objects.get()
    assert sorted(order.tickets.values_list("seat_id", flat=True)) == sorted([a1, a2])
    assert order.total_cents == 9000  # 2 × Orchestra $45, no online fees at the window
    done = _text(window.get(sold["Location"]))
    assert "Orchestra row A seat 1, Orchestra" in done and "Orchestra row A seat 2, Orchestra" in done  # the receipt
    entry = AuditEntry.objects.get(action="pos.sale")
    assert entry.after["seat_ids"] == sorted([a1, a2])
    again = window.get(f"/staff/pos/{r.perf.pk}/").content.decode()
    assert "disabled" in _input(again, a1)


def test_quantities_take_ticked_seats_of_their_category_and_a_mismatch_sells_nothing(window):
    r = make_reserved()
    b1, b2 = r.seats["Balcony/A/1"], r.seats["Balcony/A/2"]
    short = window.post(f"/staff/pos/{r.perf.pk}/", {f"qty_{r.prices['Balcony'].pk}": "2", "seat": [str(b1)], "payment_method": "cash"})
    assert short.status_code == 422 and "Tick 1 more “Balcony” seat(s)" in _text(short)
    extra = window.post(f"/staff/pos/{r.perf.pk}/", {f"qty_{r.prices['Balcony'].pk}": "1", "seat": [str(b1), str(r.seats["Orchestra/A/1"])], "payment_method": "cash"})
    assert extra.status_code == 422 and "have no ticket: Orchestra row A seat 1" in _text(extra)
    assert Order.objects.count() == 0 and SeatClaim.objects.count() == 0
    ok = window.post(f"/staff/pos/{r.perf.pk}/", {f"qty_{r.prices['Balcony'].pk}": "2", "seat": [str(b1), str(b2)], "payment_method": "cash"})
    assert ok.status_code == 302
    assert set(Ticket.objects.values_list("seat_id", flat=True)) == {b1, b2}


def test_a_seat_taken_online_is_refused_at_the_window(window):
    r = make_reserved()
    a3 = r.seats["Orchestra/A/3"]
    create_hold([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(a3,))])
    refused = window.post(f"/staff/pos/{r.perf.pk}/", {"seat": [str(a3)], "payment_method": "cash"})
    assert refused.status_code == 409 and "Orchestra row A seat 3 was just taken" in _text(refused)
    assert Order.objects.count() == 0


def test_best_available_at_the_window_ticks_adjacent_seats(window):
    r = make_reserved()
    page = window.get(f"/staff/pos/{r.perf.pk}/?best=3")
    html = page.content.decode()
    ticked = [sid for key, sid in r.seats.items() if "checked" in _input(html, sid)]
    assert len(ticked) == 3 and "3 seats together in “Orchestra”" in _text(page)
    assert Hold.objects.count() == 0  # ticked, not held


def test_house_seats_are_held_with_a_note_shown_to_staff_and_released_for_sale(window, clerk):
    r = make_reserved()
    c4, c5 = r.seats["Orchestra/C/4"], r.seats["Orchestra/C/5"]
    refused = window.post(f"/staff/pos/{r.perf.pk}/hold/", {"seat": [str(c4), str(c5)], "reason": ""})
    assert refused.status_code == 302 and Hold.objects.count() == 0  # no reason, no hold
    window.post(f"/staff/pos/{r.perf.pk}/hold/", {"seat": [str(c4), str(c5)], "reason": "Director's guests"})
    hold = Hold.objects.get()
    assert hold.created_by == clerk and hold.reason == "Director's guests"
    assert set(SeatClaim.objects.filter(hold_line__hold=hold).values_list("seat_id", flat=True)) == {c4, c5}
    page = window.get(f"/staff/pos/{r.perf.pk}/")
    text = _text(page)
    assert "Seat 4 (held by staff: Director's guests)" in text.replace("&#x27;", "'")
    assert "Orchestra row C seat 4; Orchestra row C seat 5" in text
    assert "disabled" in _input(page.content.decode(), c4)
    # The public map shows them held, and nobody can buy them online.
    public = Client().post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(c4)]})
    assert public.status_code == 409
    window.post(f"/staff/pos/holds/{hold.pk}/release/", {"reason": "Guests did not come", "back": f"/staff/pos/{r.perf.pk}/"})
    assert SeatClaim.objects.count() == 0
    assert "disabled" not in _input(window.get(f"/staff/pos/{r.perf.pk}/").content.decode(), c4)
    assert list(AuditEntry.objects.filter(action__startswith="hold.").order_by("id").values_list("action", flat=True)) == ["hold.created", "hold.released"]
    assert AuditEntry.objects.get(action="hold.created").after["seat_ids"] == sorted([c4, c5])


def test_the_windows_zoom_buttons_share_the_patron_maps_style_rule(window, client):
    """The zoom buttons carry one class whose rule lives in seatmap.css, the stylesheet both the
    storefront's and the window's seat pages load (the window loads no storefront site.css)."""
    from django.contrib.staticfiles import finders

    r = make_reserved()
    zoom = re.compile(r'<button type="button" class="([^"]*)" data-zoom="(in|out|reset)"')
    pages = {"window": window.get(f"/staff/pos/{r.perf.pk}/").content.decode(), "patron": client.get(f"/performances/{r.perf.pk}/").content.decode()}
    for html in pages.values():
        assert sorted(zoom.findall(html)) == [("seatmap__zoom", "in"), ("seatmap__zoom", "out"), ("seatmap__zoom", "reset")]
        assert "storefront/seatmap" in html and ".css" in html.split("storefront/seatmap", 1)[1][:40]
    css = {name: open(finders.find(path), encoding="utf-8").read() for name, path in
           (("seatmap", "storefront/seatmap.css"), ("site", "storefront/site.css"), ("staff", "boxoffice/staff.css"))}
    rule = re.search(r"\.seatmap__zoom \{([^}]*)\}", css["seatmap"])
    assert rule and "border" in rule.group(1) and "min-height" in rule.group(1)
    # Defined once: not copied into the storefront's or the staff stylesheet.
    assert "seatmap__zoom" not in css["site"] and "seatmap__zoom" not in css["staff"]
