"""Door list and check-in: the service, the pages and the scanner API."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from wondertix.boxoffice import checkin
from wondertix.boxoffice.door import door_list
from wondertix.ops import tokens
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Patron
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Ticket
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CARD = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")


def _usher(name="door-1"):
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name="usher"))
    return user


def _sell(perf, lines, email="ada@example.org", first="Ada", last="Lovelace", accommodation=""):
    return sell([LineRequest(perf.pk, pt.pk, n) for pt, n in lines],
                CheckoutDetails(buyer=Buyer(first_name=first, last_name=last, email=email, accommodation=accommodation), payment=CARD))


def test_check_in_admits_once_and_the_second_scan_says_who_and_when(make_performance):
    perf = make_performance()
    ticket = _sell(perf, [(perf.adult, 1)]).tickets.get()
    usher = _usher()
    admitted = checkin.check_in(ticket.code.lower(), perf, usher)  # codes are matched without regard to case
    assert admitted.checked_in_by == usher and admitted.checked_in_at is not None
    with pytest.raises(SaleError) as exc:
        checkin.check_in(ticket.code, perf, _usher("door-2"))
    assert exc.value.code == "already_checked_in" and exc.value.status == 409
    assert "by door-1 at" in exc.value.message
    assert Ticket.objects.get(pk=ticket.pk).checked_in_by == usher
    assert AuditEntry.objects.filter(action="ticket.checked_in").count() == 1


def test_refused_tickets_have_a_clear_reason_and_nothing_changes(make_performance):
    perf = make_performance()
    other = make_performance()
    usher = _usher()
    order = _sell(perf, [(perf.adult, 3)])
    wrong, refunded, exchanged = order.tickets.all()
    Ticket.objects.filter(pk=refunded.pk).update(status=Ticket.REFUNDED)
    Ticket.objects.filter(pk=exchanged.pk).update(status=Ticket.EXCHANGED)
    audits = AuditEntry.objects.count()
    cases = [
        (wrong.code, other, "wrong_performance", "another performance"),
        (refunded.code, perf, "ticket_not_valid", "refunded"),
        (exchanged.code, perf, "ticket_not_valid", "exchanged"),
        ("NOSUCHCODE", perf, "unknown_ticket", "No ticket has the code NOSUCHCODE"),
        ("   ", perf, "code_required", "Enter or scan"),
    ]
    for code, performance, expected, words in cases:
        with pytest.raises(SaleError) as exc:
            checkin.check_in(code, performance, usher)
        assert exc.value.code == expected
        assert words in exc.value.message
    assert Ticket.objects.filter(checked_in_at__isnull=False).count() == 0
    assert AuditEntry.objects.count() == audits


def test_undo_check_in_lets_the_ticket_scan_again(make_performance):
    perf = make_performance()
    ticket = _sell(perf, [(perf.adult, 1)]).tickets.get()
    usher = _usher()
    checkin.check_in(ticket.code, perf, usher)
    checkin.undo_check_in(ticket.code, perf, usher)
    assert Ticket.objects.get(pk=ticket.pk).checked_in_at is None
    with pytest.raises(SaleError) as exc:
        checkin.undo_check_in(ticket.code, perf, usher)
    assert exc.value.code == "not_checked_in"
    checkin.check_in(ticket.code, perf, usher)
    assert [e.action for e in AuditEntry.objects.filter(object_type="sales.ticket", object_id=str(ticket.pk)).order_by("id")] == [
        "ticket.checked_in", "ticket.check_in_undone", "ticket.checked_in"]


def test_scanned_codes_are_normalized():
    assert checkin.normalize_code(" abcd-efgh 2345 ") == "ABCDEFGH2345"
    assert checkin.normalize_code("https://tix.example/t/ABCD2345/") == "ABCD2345"


def test_door_list_groups_by_contact_counts_types_and_shows_accommodations(make_performance):
    perf = make_performance(capacity=30)
    _sell(perf, [(perf.adult, 2), (perf.student, 1)], email="ada@example.org", accommodation="Wheelchair space")
    _sell(perf, [(perf.adult, 1)], email="ADA@example.org", accommodation="Aisle seat")  # the same contact again
    _sell(perf, [(perf.adult, 1)], email="bob@example.org", first="Bob", last="Ames")
    Patron.objects.filter(email="bob@example.org").update(accommodation="Hearing loop")
    other = make_performance()
    _sell(other, [(other.adult, 4)], email="carol@example.org")

    parties = door_list(perf)
    assert [p.name for p in parties] == ["Bob Ames", "Ada Lovelace"]  # by last name
    bob, ada = parties
    assert ada.counts == ["3 x Adult", "1 x Student"]
    assert ada.accommodations == ["Wheelchair space", "Aisle seat"]
    assert len(ada.order_ids) == 2 and ada.total == 4
    assert bob.counts == ["1 x Adult"] and bob.accommodations == ["Hearing loop"]
    assert [p.name for p in door_list(perf, "lovelace")] == ["Ada Lovelace"]
    code = bob.tickets[0].code
    assert [p.name for p in door_list(perf, code.lower())] == ["Bob Ames"]


def test_door_pages_print_and_csv(make_performance):
    perf = make_performance()
    order = _sell(perf, [(perf.adult, 2)], accommodation="Wheelchair space")
    client = Client()
    client.force_login(_usher())
    printable = client.get(f"/staff/door/{perf.pk}/print/")
    assert printable.status_code == 200 and "2 x Adult" in printable.content.decode()
    export = client.get(f"/staff/door/{perf.pk}/export.csv")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:4] == ["Name", "Email", "Phone", "Tickets"]
    assert rows[1][0] == "Ada Lovelace" and rows[1][3] == "2 x Adult" and rows[1][6] == "Wheelchair space"
    assert rows[1][7] == order.reference


def test_csv_export_neutralizes_spreadsheet_formulas(make_performance):
    perf = make_performance()
    _sell(perf, [(perf.adult, 1)], first="=HYPERLINK(1)", last="X")
    client = Client()
    client.force_login(_usher())
    rows = list(csv.reader(io.StringIO(client.get(f"/staff/door/{perf.pk}/export.csv").content.decode())))
    assert rows[1][0].startswith("'=")


def test_name_search_checks_in_a_whole_party(make_performance):
    perf = make_performance()
    order = _sell(perf, [(perf.adult, 3)])
    codes = list(order.tickets.values_list("code", flat=True))
    client = Client()
    client.force_login(_usher())
    page = client.get(f"/staff/door/{perf.pk}/", {"q": "Lovelace"}).content.decode()
    assert "Check in 3" in page
    response = client.post(f"/staff/door/{perf.pk}/admit/", {"code": codes}, follow=True)
    assert "Checked in 3 tickets." in response.content.decode()
    assert Ticket.objects.filter(order=order, checked_in_at__isnull=False).count() == 3
    again = client.post(f"/staff/door/{perf.pk}/admit/", {"code": codes[:1]}, follow=True).content.decode()
    assert "Already checked in by door-1" in again
    client.post(f"/staff/door/{perf.pk}/undo/", {"code": codes[0]})
    assert Ticket.objects.filter(order=order, checked_in_at__isnull=False).count() == 2


def test_scanner_page_serves_the_camera_script_without_inline_code(make_performance):
    perf = make_performance()
    client = Client()
    client.force_login(_usher())
    html = client.get(f"/staff/door/{perf.pk}/checkin/").content.decode()
    assert '<script src="/static/boxoffice/scanner.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html and "onclick" not in html
    assert 'name="code"' in html  # the manual entry that always works


def test_scanner_api_checks_in_refuses_twice_and_undoes(make_performance):
    perf = make_performance()
    ticket = _sell(perf, [(perf.adult, 1)], accommodation="Wheelchair space").tickets.get()
    usher = _usher()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(usher)}"}
    client = Client()
    body = {"code": ticket.code, "performance_id": perf.pk}
    first = client.post("/api/v1/staff/checkin", body, content_type="application/json", **auth)
    assert first.status_code == 200
    assert first.json()["checked_in"] is True and first.json()["accommodation"] == "Wheelchair space"
    second = client.post("/api/v1/staff/checkin", body, content_type="application/json", **auth)
    assert second.status_code == 409
    assert second.json()["code"] == "already_checked_in" and "door-1" in second.json()["message"]
    unknown = client.post("/api/v1/staff/checkin", {"code": "ZZZ", "performance_id": perf.pk}, content_type="application/json", **auth)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_ticket"
    undo = client.post("/api/v1/staff/checkin/undo", body, content_type="application/json", **auth)
    assert undo.status_code == 200 and undo.json()["checked_in"] is False
    listing = client.get(f"/api/v1/staff/door/{perf.pk}", **auth).json()
    assert listing["parties"][0]["tickets"][0]["checked_in"] is False
    assert listing["parties"][0]["accommodations"] == ["Wheelchair space"]
