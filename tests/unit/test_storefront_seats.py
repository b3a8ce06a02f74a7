"""The patron seat map of a reserved performance: the seat list (the no-JavaScript and
screen-reader form), holding chosen seats, best available, and the seats on the order."""

from __future__ import annotations

import gzip
import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from pypdf import PdfReader
from tests.unit.seating_fixtures import make_reserved
from tests.unit.test_storefront import contact, hold_token, text_of

from wondertix.sales.models import Hold, Order, SeatClaim
from wondertix.sales.services import LineRequest, create_hold

pytestmark = pytest.mark.django_db


def _input(html: str, seat_id: int) -> str:
    return re.search(rf'<input type="checkbox" name="seat" value="{seat_id}"[^>]*>', html).group(0)


def test_the_seat_list_names_every_seat_by_section_and_row_and_disables_taken_ones(client):
    r = make_reserved(flags={("Orchestra", "A", "1"): ["accessible"], ("Orchestra", "A", "8"): ["house_seat"]})
    create_hold([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/B/4"],))])
    page = client.get(f"/performances/{r.perf.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    text = text_of(page)
    assert "Orchestra, row A" in text and "Balcony, row B" in text
    assert "Orchestra: $45.00" in text and "Balcony: $30.00" in text  # the key says the price in words
    for words in ("Taken", "Held by another patron", "Square: wheelchair space", "Not offered online"):
        assert words in text
    assert "Seat 1 (wheelchair space)" in text
    assert "disabled" not in _input(html, r.seats["Orchestra/A/2"])
    assert "disabled" in _input(html, r.seats["Orchestra/B/4"]) and "Seat 4 (held by another patron)" in text
    assert "disabled" in _input(html, r.seats["Orchestra/A/8"]) and "Seat 8 (not offered)" in text
    assert 'data-m="1 0 0 aw"' in _input(html, r.seats["Orchestra/A/1"])  # x y category status+wheelchair
    assert html.count('name="seat"') == 40


def test_the_page_is_served_compressed_when_the_phone_accepts_it(client):
    r = make_reserved()
    page = client.get(f"/performances/{r.perf.pk}/", HTTP_ACCEPT_ENCODING="gzip")
    assert page["Content-Encoding"] == "gzip"
    assert b"Orchestra, row A" in gzip.decompress(page.content)


def test_chosen_seats_are_held_listed_in_the_cart_and_named_on_the_order_ticket_email_and_pdf(client, django_capture_on_commit_callbacks):
    r = make_reserved()
    a5, a6 = r.seats["Orchestra/A/5"], r.seats["Orchestra/A/6"]
    chosen = client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(a5), str(a6)]})
    assert chosen.status_code == 302 and chosen["Location"] == "/cart/"
    assert set(SeatClaim.objects.filter(hold_line__hold__token=hold_token(client)).values_list("seat_id", flat=True)) == {a5, a6}
    cart = text_of(client.get("/cart/"))
    assert "2 × Orchestra at $45.00 + $2.00 fee" in cart
    assert "Orchestra row A seat 5; Orchestra row A seat 6" in cart
    again = client.get(f"/performances/{r.perf.pk}/").content.decode()
    assert "checked" in _input(again, a5) and "disabled" not in _input(again, a5)  # the patron's own seats

    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/checkout/", contact(hold=hold_token(client)))
    assert done.status_code == 302
    order = Order.objects.get()
    assert sorted(order.tickets.values_list("seat_id", flat=True)) == sorted([a5, a6])
    page = text_of(client.get(done["Location"]))
    assert "Orchestra row A seat 5" in page and "Orchestra row A seat 6" in page
    body = mail.outbox[-1].body
    assert "Orchestra row A seat 5" in body and "Orchestra row A seat 6" in body
    html_mail = mail.outbox[-1].alternatives[0][0]
    assert "Orchestra row A seat 6" in html_mail
    pdf = client.get(f"/orders/{order.token}/tickets.pdf")
    assert pdf.status_code == 200
    pdf_text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Orchestra row A seat 5" in pdf_text

    other = client.__class__()
    taken = text_of(other.get(f"/performances/{r.perf.pk}/"))
    assert "Seat 5 (taken)" in taken


def test_a_seat_someone_else_holds_is_refused_with_its_name_and_nothing_is_held(client):
    r = make_reserved()
    b2 = r.seats["Balcony/A/2"]
    create_hold([LineRequest(r.perf.pk, r.prices["Balcony"].pk, 1, seat_ids=(b2,))])
    refused = client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(b2), str(r.seats["Balcony/A/3"])]})
    assert refused.status_code == 409
    assert "Balcony row A seat 2 was just taken by someone else" in text_of(refused)
    assert Hold.objects.count() == 1


def test_nothing_chosen_or_a_foreign_seat_is_refused_clearly(client):
    r = make_reserved()
    other = make_reserved(2)
    empty = client.post(f"/performances/{r.perf.pk}/", {"action": "seats"})
    assert empty.status_code == 422 and "Choose at least one seat" in text_of(empty)
    foreign = client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(other.seats["Orchestra/A/1"])]})
    assert foreign.status_code == 422 and "not a seat of this performance" in text_of(foreign)
    junk = client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": ["1;drop"]})
    assert junk.status_code == 422
    assert Hold.objects.count() == 0


def test_best_available_holds_seats_together_in_the_best_category(client):
    r = make_reserved()
    best = client.post(f"/performances/{r.perf.pk}/", {"action": "best", "quantity": "4"}, follow=True)
    text = text_of(best)
    assert "4 seats together in “Orchestra”" in text
    held = list(SeatClaim.objects.filter(hold_line__hold__token=hold_token(client)).select_related("seat"))
    assert len(held) == 4 and {c.seat.row for c in held} == {"A"}
    xs = sorted(c.seat.x for c in held)
    assert xs == list(range(xs[0], xs[0] + 4))


def test_best_available_without_seats_together_ticks_split_seats_and_says_so(client):
    r = make_reserved(sections=[("Orchestra", "Orchestra", 1, 4)])
    create_hold([LineRequest(r.perf.pk, r.prices["Orchestra"].pk, 1, seat_ids=(r.seats["Orchestra/A/2"],))])
    page = client.post(f"/performances/{r.perf.pk}/", {"action": "best", "quantity": "3"}, follow=True)
    assert page.status_code == 200
    html = page.content.decode()
    assert "No 3 seats are left together" in text_of(page)
    for label in ("1", "3", "4"):
        assert "checked" in _input(html, r.seats[f"Orchestra/A/{label}"])
    assert Hold.objects.count() == 1  # nothing held until the patron adds them


def test_a_performance_not_on_sale_refuses_seat_choice(client):
    r = make_reserved()
    r.perf.on_sale_from = timezone.now() + timedelta(days=1)
    r.perf.save()
    refused = client.post(f"/performances/{r.perf.pk}/", {"action": "seats", "seat": [str(r.seats["Orchestra/A/1"])]})
    assert refused.status_code == 409
    assert Hold.objects.count() == 0


def test_the_api_seat_map_is_sent_compressed_to_clients_that_accept_it(client):
    import json

    r = make_reserved()
    plain = client.get(f"/api/v1/performances/{r.perf.pk}/seats")
    packed = client.get(f"/api/v1/performances/{r.perf.pk}/seats", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in plain and packed["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.content)) == plain.json()
    assert len(packed.content) < len(plain.content) / 4
