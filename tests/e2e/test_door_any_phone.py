"""The door on any phone (acceptance 6).

1. Chromium with `BarcodeDetector` deleted before any page script runs (as in iPhone Safari)
   and a fake camera whose picture is the QR of a ticket bought in the test: "Scan with camera"
   checks the ticket in through the bundled fallback decoder.
2. The Wi-Fi drops: two codes typed at the door are queued on the phone ("queued (offline)"),
   another phone checks one of them in meanwhile; the connection returns, the queue is sent,
   one is admitted at the time it was scanned and the other refused with who checked it in.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import qrcode
from django.contrib.auth.models import Group, User
from django.utils import timezone
from PIL import Image
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, EXPECTED_REFUSAL, PHONE

from wondertix.boxoffice import checkin
from wondertix.sales import services
from wondertix.sales.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "door-shift-" + "9" * 8
FRAME = (640, 480)
NO_DETECTOR = "delete window.BarcodeDetector; delete globalThis.BarcodeDetector;"
OFFLINE = re.compile(r"net::ERR_INTERNET_DISCONNECTED")


def sell(perf, quantity: int, card) -> list[str]:
    buyer = services.Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    order = services.sell([services.LineRequest(perf.pk, perf.adult.pk, quantity)], services.CheckoutDetails(buyer=buyer, payment=card))
    return list(order.tickets.order_by("pk").values_list("code", flat=True))


def usher(name: str) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="usher"))
    return user


def sign_in(page, live_server, username: str, perf) -> None:
    page.goto(f"{live_server.url}/staff/door/{perf.pk}/checkin/")
    page.wait_for_url("**/staff/login/**")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/staff/door/{perf.pk}/checkin/")


def camera_file(code: str, path: Path) -> Path:
    """A Y4M video (what Chromium's fake camera plays, looped) of the ticket's QR held up in
    front of the camera: the same QR the ticket carries (its code, error correction M, 4-module
    quiet zone), on a grey background."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=8)
    qr.add_data(code)
    qr.make(fit=True)
    ticket = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    frame = Image.new("RGB", FRAME, (120, 120, 120))
    frame.paste(ticket, ((FRAME[0] - ticket.width) // 2, (FRAME[1] - ticket.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (FRAME[0] // 2, FRAME[1] // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{FRAME[0]} H{FRAME[1]} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            out.write(b"FRAME\n" + planes)
    return path


def test_camera_scan_without_barcode_detector_checks_in_through_the_fallback_decoder(browser, live_server, make_performance, good_card, artifacts, tmp_path):
    perf = make_performance(capacity=10)
    (code,) = sell(perf, 1, good_card)
    usher("cam-usher")
    video = camera_file(code, tmp_path / "ticket-qr.y4m")
    camera = browser.browser_type.launch(executable_path=CHROMIUM, headless=True, args=[
        *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ])
    try:
        context = camera.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        context.set_default_timeout(15_000)
        context.add_init_script(NO_DETECTOR)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        scripts: list[str] = []
        page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)

        sign_in(page, live_server, "cam-usher", perf)
        assert page.evaluate("'BarcodeDetector' in window") is False
        page.get_by_role("button", name="Scan with camera").click()
        result = page.locator("#scan-result.scan-ok")
        result.wait_for()
        assert "Welcome! Adult — Ada Lovelace" in result.inner_text() and code in result.inner_text()
        assert page.locator("#scanner").get_attribute("data-decoder") == "fallback"
        assert any(url.endswith("/boxoffice/vendor/jsqr/jsQR.js") for url in scripts), scripts
        assert all(url.startswith(live_server.url) for url in scripts), scripts  # nothing from another host
        assert "1 of 1 checked in" in page.locator("main").inner_text()
        ticket = Ticket.objects.select_related("checked_in_by").get(code=code)
        assert ticket.checked_in_at is not None and ticket.checked_in_by.username == "cam-usher"
        # The ticket stays in front of the camera: it is not sent again (no "already checked in").
        page.wait_for_timeout(1000)
        assert page.locator("#scan-result.scan-bad").count() == 0
        page.screenshot(path=str(artifacts / "door-camera-fallback-phone.png"), full_page=True)
        page.get_by_role("button", name="Stop camera").click()
        assert page.locator("#camera").is_hidden()
        assert problems == []
        context.close()
    finally:
        camera.close()


def test_scans_while_offline_are_queued_then_synced_and_a_duplicate_is_refused(phone, live_server, make_performance, good_card, artifacts):
    page = phone
    perf = make_performance(capacity=10)
    first, second = sell(perf, 2, good_card)
    usher("jo-usher")
    other_phone = usher("sam-usher")
    sign_in(page, live_server, "jo-usher", perf)

    # ---- the Wi-Fi drops: both codes are kept on the phone with the time they were scanned
    page.context.set_offline(True)
    went_offline = timezone.now()
    for code in (first, second):
        page.get_by_label("Ticket code").fill(code)
        page.get_by_role("button", name="Check in", exact=True).click()
        page.locator("#scan-result.scan-queued", has_text=code).wait_for()
    queue = page.locator("#offline-queue")
    assert re.search(r"\b2 queued \(offline\)", queue.inner_text()), queue.inner_text()
    assert queue.locator("#queue-items li").count() == 2
    assert Ticket.objects.filter(code__in=(first, second), checked_in_at__isnull=False).count() == 0
    page.screenshot(path=str(artifacts / "door-offline-queued-phone.png"), full_page=True)

    # Meanwhile a second phone, still online, admits the second ticket.
    checkin.check_in(second, perf, other_phone)
    sam_at = timezone.localtime(Ticket.objects.get(code=second).checked_in_at)

    # ---- the connection returns: the queue is sent, one admitted, the duplicate refused
    page.context.set_offline(False)
    synced = page.locator("#queue-synced li")
    synced.nth(1).wait_for()
    assert synced.count() == 2
    admitted = page.locator("#queue-synced li.synced-ok")
    refused = page.locator("#queue-synced li.synced-bad")
    assert first in admitted.inner_text() and "Welcome! Adult — Ada Lovelace" in admitted.inner_text()
    assert second in refused.inner_text()
    assert re.search(rf"Already checked in by sam-usher at {sam_at:%-I:%M}", refused.inner_text()), refused.inner_text()
    assert re.search(r"\b0 queued \(offline\)", queue.inner_text())
    assert "All queued scans were sent." in queue.inner_text()
    assert "2 of 2 checked in" in page.locator("main").inner_text()
    assert page.evaluate(f"localStorage.getItem('wtx-door-queue-{perf.pk}')") == "[]"

    mine = Ticket.objects.select_related("checked_in_by").get(code=first)
    assert mine.checked_in_by.username == "jo-usher"
    # Recorded at the time it was scanned on the phone, not when it was sent.
    assert went_offline <= mine.checked_in_at <= Ticket.objects.get(code=second).checked_in_at
    assert Ticket.objects.select_related("checked_in_by").get(code=second).checked_in_by.username == "sam-usher"
    page.screenshot(path=str(artifacts / "door-offline-synced-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The failed requests while offline are the only errors the browser logged.
    unexpected = [p for p in page.problems if not OFFLINE.search(p) and not EXPECTED_REFUSAL.search(p)]  # type: ignore[attr-defined]
    assert unexpected == []
