"""Issue 10, acceptance 2 and 3, as a patron and an usher live them.

2. A purchase in the browser; the confirmation email's PDF is rendered to images (poppler's
   pdftoppm), the QR on each page decoded (zbar's zbarimg), and each decoded code is typed at
   the door by an usher and admitted; the email's .ics is a valid calendar.
3. "Find my tickets" for a known and an unknown address: the same page, the same timing
   class; the known address receives links that open its orders.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from icalendar import Calendar
from playwright.sync_api import expect

from wondertix.ops import outbox
from wondertix.sales.models import Order, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "door-shift-" + "7" * 8


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is missing: .ci/install-deps installs it (Debian: poppler-utils, zbar-tools)")
    return path


def buy_two_adults(page, live_server, perf) -> None:
    page.goto(f"{live_server.url}/performances/{perf.pk}/")
    page.get_by_role("button", name="One more Adult").click()
    page.get_by_role("button", name="One more Adult").click()
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart/")
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry date").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Pay \$")).click()
    page.wait_for_url("**/orders/*/")


def qr_codes_on_pages(pdf: bytes, workdir: Path) -> list[list[str]]:
    """Each page of the PDF as a 150 dpi image, and the QR codes zbar reads on it."""
    (workdir / "tickets.pdf").write_bytes(pdf)
    subprocess.run([tool("pdftoppm"), "-r", "150", "-png", str(workdir / "tickets.pdf"), str(workdir / "page")], check=True, timeout=60)
    pages = sorted(workdir.glob("page-*.png"))
    decoded = []
    for image in pages:
        out = subprocess.run([tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
                             capture_output=True, text=True, timeout=60, check=False)
        decoded.append(out.stdout.split())
    return decoded


def test_the_confirmation_pdf_pages_each_carry_a_qr_the_door_admits_and_a_valid_calendar(phone, browser, live_server, make_performance, artifacts, tmp_path):
    page = phone
    perf = make_performance(capacity=8)
    perf.event.title = "The Tempest"
    perf.event.save()
    buy_two_adults(page, live_server, perf)
    order = Order.objects.get()
    codes = set(order.tickets.values_list("code", flat=True))

    # ---- the confirmation email: a PDF with one page per ticket, each page's QR a ticket code
    assert len(mail.outbox) == 1
    attachments = {name: (content, mimetype) for name, content, mimetype in mail.outbox[0].attachments}
    pdf, pdf_type = attachments[f"tickets-{order.reference}.pdf"]
    assert pdf_type == "application/pdf"
    decoded = qr_codes_on_pages(pdf, tmp_path)
    assert len(decoded) == 2  # one page per ticket
    assert all(len(found) == 1 for found in decoded), decoded  # one QR on each page
    assert {found[0] for found in decoded} == codes
    shutil.copy(tmp_path / "page-1.png", artifacts / "ticket-pdf-page-1.png")

    # ---- and a valid calendar: one event, at the performance's time, in the theater's zone
    ics, ics_type = attachments[f"{order.reference}.ics"]
    assert ics_type == "text/calendar"
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert event.decoded("DTSTART") == perf.starts_at.replace(microsecond=0)  # iCalendar counts whole seconds
    assert "The Tempest" in str(event["SUMMARY"])

    # ---- the order page offers the same PDF for download
    with page.expect_download() as download:
        page.get_by_role("link", name="Download tickets (PDF)").click()
    saved = tmp_path / "downloaded.pdf"
    download.value.save_as(saved)
    (tmp_path / "downloaded").mkdir()
    assert {c[0] for c in qr_codes_on_pages(saved.read_bytes(), tmp_path / "downloaded")} == codes
    page.screenshot(path=str(artifacts / "order-with-ticket-files-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # ---- at the door: an usher types each decoded code and it is admitted
    usher = User.objects.create_user("jo-usher", password=PASSWORD, is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    door = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    door.goto(f"{live_server.url}/staff/door/{perf.pk}/checkin/")
    door.get_by_label("Username").fill("jo-usher")
    door.get_by_label("Password").fill(PASSWORD)
    door.get_by_role("button", name="Sign in").click()
    door.wait_for_url(f"**/staff/door/{perf.pk}/checkin/")
    for found in decoded:
        door.get_by_label("Ticket code").fill(found[0])
        door.get_by_role("button", name="Check in", exact=True).click()
        # The door page answers in place (no reload): wait for this ticket's answer.
        deadline = time.monotonic() + 15
        while not Ticket.objects.filter(code=found[0], checked_in_at__isnull=False).exists():
            assert time.monotonic() < deadline, f"ticket {found[0]} was not admitted within 15 s"
            time.sleep(0.1)
        expect(door.locator("#scan-result")).to_contain_text("Welcome! Adult — Ada Lovelace")
    assert Ticket.objects.filter(order=order, checked_in_at__isnull=False).count() == 2
    door.context.close()
    assert page.problems == []  # type: ignore[attr-defined]


def _ask(page, live_server, email: str) -> tuple[str, float]:
    """Submit the form; the page's text and how long the server took to answer the POST."""
    page.goto(f"{live_server.url}/tickets/find/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me my tickets").click()
    page.locator("#lookup-sent").wait_for()
    seconds = page.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0]; return (n.responseStart - n.requestStart) / 1000; })()")
    return page.locator("main").inner_text().replace(email, "ADDRESS"), float(seconds)


def test_find_my_tickets_answers_alike_for_known_and_unknown_and_the_links_open_the_orders(phone, live_server, make_performance, good_card, artifacts, capsys, settings):
    from wondertix.ops.models import OutboxEmail
    from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

    settings.SITE_URL = live_server.url  # the emailed links point at this server
    page = phone
    perf, later = make_performance(capacity=8), make_performance(capacity=8)
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    orders = [sell([LineRequest(p.pk, p.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card)) for p in (perf, later)]
    mail.outbox.clear()

    known, unknown = [], []
    for _ in range(5):  # alternate, so the machine's load falls on both alike
        known.append(_ask(page, live_server, "ada@example.org"))
        unknown.append(_ask(page, live_server, "nobody@example.org"))
    assert {text for text, _ in known} == {text for text, _ in unknown}  # the very same page
    page.screenshot(path=str(artifacts / "find-my-tickets-sent-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    k, u = statistics.median(s for _, s in known), statistics.median(s for _, s in unknown)
    with capsys.disabled():
        print(f"\nfind my tickets, server answer median of 5: known {k * 1000:.1f} ms, unknown {u * 1000:.1f} ms")
    # Same timing class: neither answer waits on the other's extra work (no email is made in
    # the request; the unit test proves the statements are identical). Loose on purpose.
    assert k < 2 * u + 0.05 and u < 2 * k + 0.05, (known, unknown)
    assert mail.outbox == []  # nothing was sent by the requests

    # ---- the jobs program's pass sends the known address its links (3 a hour: 3 emails)
    outbox.send_due()
    assert OutboxEmail.objects.filter(kind=OutboxEmail.ORDER_LINKS, recipient="nobody@example.org").exists()
    links_mail = [m for m in mail.outbox if m.to == ["ada@example.org"]]
    assert len(links_mail) == 3 and not [m for m in mail.outbox if m.to == ["nobody@example.org"]]
    links = re.findall(r"https?://\S+/orders/[\w-]+/", links_mail[0].body)
    assert len(links) == 2
    assert all(link.startswith(live_server.url) for link in links)
    for link in links:
        page.goto(link)
        heading = page.get_by_role("heading", name="Your tickets")
        assert heading.is_visible()
        assert page.locator("img.ticket__qr").count() == 1
    shown = {o.reference for o in orders}
    assert all(ref in links_mail[0].body for ref in shown)
    assert page.problems == []  # type: ignore[attr-defined]
