"""Tickets a patron keeps: the PDF (one page per ticket) and the calendar file, in the
confirmation email, on the order page and from the box office's print button."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from icalendar import Calendar
from pypdf import PdfReader

from wondertix.ops.models import AuditEntry
from wondertix.sales import refunds, ticket_files
from wondertix.sales.models import Order, Ticket
from wondertix.sales.notifications import send_order_confirmation
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

ZONE = "America/New_York"


@pytest.fixture
def theater(settings):
    settings.TIME_ZONE = ZONE
    settings.SITE_URL = "https://tickets.example.org/"
    settings.THEATER_VENUE = "The Old Mill Stage"
    settings.THEATER_ADDRESS = "12 River Road, Millbrook"
    settings.THEATER_ACCESSIBILITY = "Step-free entrance on River Road; assistive listening at the box office."
    return settings


@pytest.fixture
def two_shows(make_performance):
    """An order with 2 Adult + 1 Student for one evening and 1 Adult for a later matinee."""
    evening = make_performance(capacity=20)
    evening.starts_at = datetime(2030, 3, 9, 19, 30, tzinfo=ZoneInfo(ZONE))
    evening.note = "ASL-interpreted performance"
    evening.save()
    evening.event.title = "Café Society — “The Musical”"
    evening.event.duration_minutes = 150
    evening.event.save()
    matinee = make_performance(capacity=20)
    matinee.starts_at = datetime(2030, 3, 15, 14, 0, tzinfo=ZoneInfo(ZONE))  # after the DST change
    matinee.save()
    return evening, matinee


def _buy(evening, matinee, good_card, **details) -> Order:
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org", accommodation="Wheelchair space for one")
    return sell(
        [LineRequest(evening.pk, evening.adult.pk, 2), LineRequest(evening.pk, evening.student.pk, 1), LineRequest(matinee.pk, matinee.adult.pk, 1)],
        CheckoutDetails(buyer=buyer, payment=good_card, **details),
    )


def pdf_pages(content: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(content))
    return [page.extract_text() for page in reader.pages]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_pdf_has_one_page_per_ticket_with_everything_the_door_and_patron_need(theater, two_shows, good_card):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    tickets = ticket_files.keepable_tickets(order)
    pages = [flat(p) for p in pdf_pages(ticket_files.ticket_pdf(order, tickets))]

    assert len(pages) == 4
    for page, ticket in zip(pages, tickets, strict=True):
        spaced = " ".join(ticket.code[i : i + 4] for i in range(0, 16, 4))
        assert spaced in page  # the code under the QR, as a person reads it out
        assert order.reference in page
        assert "Ada Lovelace" in page
        assert "The Old Mill Stage, 12 River Road, Millbrook" in page
        assert "Seating accommodation: Wheelchair space for one" in page
        assert "Step-free entrance on River Road" in page
    # the title's dashes and quotes survive (Windows-1252 core fonts)
    assert "Café Society — “The Musical”" in pages[0]
    # date and time in the theater's zone, daylight saving included
    assert "Saturday, March 9, 2030 · 7:30 PM EST" in pages[0]
    assert "Friday, March 15, 2030 · 2:00 PM EDT" in pages[3]
    assert "Adult, $27.00 (1 of 3)" in pages[0]
    assert "Student, $12.00 (3 of 3)" in pages[2]
    assert "ASL-interpreted performance" in pages[0] and "ASL-interpreted" not in pages[3]
    assert "TEST — NOT VALID" in pages[0]  # payments are simulated in the tests


def test_refunded_tickets_are_not_printed_and_an_unpaid_order_has_no_tickets_to_keep(theater, two_shows, good_card, clerk):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    first = order.tickets.order_by("id").first()
    refunds.refund_order(order.pk, refunds.RefundRequest(tickets=[refunds.TicketRefund(first.pk, None)], method="original", reason="test"),
                         idempotency_key="r1", actor=clerk)
    order.refresh_from_db()
    kept = ticket_files.keepable_tickets(order)
    assert first.pk not in [t.pk for t in kept] and len(kept) == 3
    assert len(pdf_pages(ticket_files.ticket_pdf(order, kept))) == 3

    order.status = Order.PENDING
    assert ticket_files.keepable_tickets(order) == []


def test_text_the_core_fonts_lack_is_shown_as_plain_letters_not_an_error(theater, two_shows, good_card):
    evening, matinee = two_shows
    evening.event.title = "Łódź Ballet: Dvořák ✨"
    evening.event.save()
    order = _buy(evening, matinee, good_card)
    pages = pdf_pages(ticket_files.ticket_pdf(order, ticket_files.keepable_tickets(order)))
    # kept where Windows-1252 has the letter (ó, á), the plain letter where not (Ł, ź, ř)
    assert "Lódz Ballet: Dvorák ?" in flat(pages[0])


def test_ticket_stock_layout_is_one_landscape_ticket_per_page_of_the_configured_size(theater, two_shows, good_card):
    theater.TICKET_STOCK_SIZE_IN = "5.5x2"
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    tickets = ticket_files.keepable_tickets(order)
    reader = PdfReader(io.BytesIO(ticket_files.ticket_pdf(order, tickets, layout="stock")))
    assert len(reader.pages) == 4
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (396, 144)
    text = flat(reader.pages[0].extract_text())
    assert tickets[0].code in text and order.reference in text and "7:30 PM EST" in text


def test_a_bad_ticket_size_is_a_clear_configuration_error_that_refuses_to_start(settings):
    from django.core.checks import run_checks
    from django.core.exceptions import ImproperlyConfigured

    for bad in ("8 by 3", "3.25x8", "0x0", "40x30", "nanxnan"):
        settings.TICKET_STOCK_SIZE_IN = bad
        with pytest.raises(ImproperlyConfigured, match="TICKET_STOCK_SIZE_IN"):
            ticket_files.stock_size()
        assert [e.msg for e in run_checks() if e.id == "wondertix.E021"] == [f"TICKET_STOCK_SIZE_IN must be {'WIDTHxHEIGHT in inches, like 8x3.25' if bad == '8 by 3' else 'landscape, 1 to 17 inches a side'} (got {bad!r})"]
    settings.TICKET_STOCK_SIZE_IN = "8x3.25"
    settings.TICKET_PAGE_SIZE = "legal"
    assert [e.id for e in run_checks() if e.id == "wondertix.E021"] == ["wondertix.E021"]
    settings.TICKET_PAGE_SIZE = "A4"
    assert not [e for e in run_checks() if e.id == "wondertix.E021"]


def test_the_calendar_has_one_event_per_performance_in_the_theaters_zone(theater, two_shows, good_card):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    url = f"https://tickets.example.org/orders/{order.token}/"
    raw = ticket_files.calendar_file(order, ticket_files.keepable_tickets(order), order_url=url)

    cal = Calendar.from_ical(raw)
    assert cal["VERSION"] == "2.0" and cal["PRODID"]
    events = cal.walk("VEVENT")
    assert len(events) == 2
    zones = cal.walk("VTIMEZONE")
    assert [str(z["TZID"]) for z in zones] == [ZONE]
    first, second = events
    assert first.decoded("DTSTART") == evening.starts_at
    assert first["DTSTART"].params["TZID"] == ZONE
    assert first.decoded("DTEND") - first.decoded("DTSTART") == timedelta(minutes=150)
    assert second.decoded("DTSTART") == matinee.starts_at
    assert second.decoded("DTEND") - second.decoded("DTSTART") == timedelta(minutes=120)  # no running time entered
    assert str(first["SUMMARY"]).startswith("Café Society — “The Musical”")
    assert str(first["LOCATION"]) == "The Old Mill Stage, 12 River Road, Millbrook"
    assert "3 tickets: 2 × Adult, 1 × Student" in str(first["DESCRIPTION"])
    assert url in str(first["DESCRIPTION"]) and str(first["URL"]) == url
    assert str(first["UID"]) != str(second["UID"]) and order.reference in str(first["UID"])
    assert order.token not in str(first["UID"])
    for ev in events:
        for prop in ("UID", "DTSTAMP", "DTSTART"):  # required by RFC 5545
            assert prop in ev
    # RFC 5545: lines end with CRLF and are folded at 75 octets
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)


def test_the_confirmation_email_carries_the_pdf_and_the_calendar(theater, two_shows, good_card):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    mail.outbox.clear()
    assert send_order_confirmation(order.pk)
    message = mail.outbox[0]
    names = {a[0]: a for a in message.attachments}
    pdf = names[f"tickets-{order.reference}.pdf"]
    ics = names[f"{order.reference}.ics"]
    assert pdf[2] == "application/pdf" and len(pdf_pages(pdf[1])) == 4
    assert ics[2] == "text/calendar" and len(Calendar.from_ical(ics[1]).walk("VEVENT")) == 2
    assert f"tickets-{order.reference}.pdf" in message.body
    # the message really serializes with them (what an SMTP or file backend sends)
    assert b"application/pdf" in message.message().as_bytes()


def test_a_gift_receipt_has_no_ticket_files(theater, good_card):
    from wondertix.patrons.donations import donate

    order = donate(2500, Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org"), payment=good_card, idempotency_key="g1")
    mail.outbox.clear()
    assert send_order_confirmation(order.pk)
    assert mail.outbox[0].attachments == []


def test_the_order_page_offers_both_files_by_its_secret_link_only(theater, two_shows, good_card):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    client = Client()
    page = client.get(f"/orders/{order.token}/").content.decode()
    assert f'href="/orders/{order.token}/tickets.pdf"' in page
    assert f'href="/orders/{order.token}/calendar.ics"' in page

    pdf = client.get(f"/orders/{order.token}/tickets.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert f'filename="tickets-{order.reference}.pdf"' in pdf["Content-Disposition"]
    assert "no-store" in pdf["Cache-Control"]
    assert len(pdf_pages(pdf.content)) == 4
    ics = client.get(f"/orders/{order.token}/calendar.ics")
    assert ics.status_code == 200 and ics["Content-Type"].startswith("text/calendar")
    assert f"http://testserver/orders/{order.token}/" in flat(str(Calendar.from_ical(ics.content).walk("VEVENT")[0]["DESCRIPTION"]))

    assert client.get("/orders/not-a-real-token/tickets.pdf").status_code == 404
    Order.objects.filter(pk=order.pk).update(status=Order.PENDING)
    assert client.get(f"/orders/{order.token}/tickets.pdf").status_code == 404
    assert client.get(f"/orders/{order.token}/calendar.ics").status_code == 404
    assert "tickets.pdf" not in client.get(f"/orders/{order.token}/").content.decode()


def test_box_office_prints_the_same_tickets_on_ticket_stock_and_it_is_audited(theater, two_shows, good_card, staff, clerk):
    evening, matinee = two_shows
    order = _buy(evening, matinee, good_card)
    page = staff.get(f"/staff/sales/orders/{order.pk}/").content.decode()
    assert f'href="/staff/sales/orders/{order.pk}/tickets.pdf?layout=stock"' in page
    assert "4 valid tickets" in page

    response = staff.get(f"/staff/sales/orders/{order.pk}/tickets.pdf?layout=stock")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 4
    codes = [t.code for t in ticket_files.keepable_tickets(order)]
    assert [c for c, p in zip(codes, reader.pages, strict=True) if c in p.extract_text()] == codes
    entry = AuditEntry.objects.get(action="order.tickets_printed")
    assert entry.actor == clerk and entry.after["layout"] == "stock" and len(entry.after["tickets"]) == 4

    assert len(PdfReader(io.BytesIO(staff.get(f"/staff/sales/orders/{order.pk}/tickets.pdf?layout=page").content)).pages) == 4
    Ticket.objects.filter(order=order).update(status=Ticket.REFUNDED)
    refused = staff.get(f"/staff/sales/orders/{order.pk}/tickets.pdf")
    assert refused.status_code == 409 and "no valid tickets" in refused.content.decode()
    assert Client().get(f"/staff/sales/orders/{order.pk}/tickets.pdf").status_code in (302, 403)
