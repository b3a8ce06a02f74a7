"""The door on any phone, server side: scans a phone queued while offline arrive later with the
time they were made (recorded, within bounds), duplicates are refused with who and when, the
scanner page answers its script in JSON, and the bundled fallback QR decoder is the vendored
package file with its licence."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from wondertix.boxoffice import checkin
from wondertix.ops import tokens
from wondertix.ops.models import AuditEntry
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Ticket
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CARD = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")
STATIC = Path(checkin.__file__).resolve().parent / "static" / "boxoffice"
VENDOR = STATIC / "vendor" / "jsqr"
JSON = {"HTTP_ACCEPT": "application/json"}


def _usher(name: str = "door-1") -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name="usher"))
    return user


def _codes(perf, n: int = 1) -> list[str]:
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    order = sell([LineRequest(perf.pk, perf.adult.pk, n)], CheckoutDetails(buyer=buyer, payment=CARD))
    return list(order.tickets.order_by("pk").values_list("code", flat=True))


def test_a_scan_sent_later_is_recorded_at_the_time_it_was_scanned(make_performance):
    perf = make_performance()
    (code,) = _codes(perf)
    scanned = timezone.now() - timedelta(minutes=7)
    ticket = checkin.check_in(code, perf, _usher(), scanned_at=scanned)
    assert Ticket.objects.get(pk=ticket.pk).checked_in_at == scanned
    entry = AuditEntry.objects.get(action="ticket.checked_in")
    assert entry.after["checked_in_at"] == scanned.isoformat() and "synced_at" in entry.after


@pytest.mark.parametrize(("offset", "error"), [
    (checkin.CLOCK_SKEW + timedelta(minutes=1), "scanned_at_future"),
    (-(checkin.MAX_SCAN_AGE + timedelta(minutes=1)), "scanned_at_too_old"),
])
def test_a_scan_time_out_of_bounds_is_refused_and_nothing_is_written(make_performance, offset, error):
    perf = make_performance()
    (code,) = _codes(perf)
    with pytest.raises(SaleError) as exc:
        checkin.check_in(code, perf, _usher(), scanned_at=timezone.now() + offset)
    assert exc.value.code == error and exc.value.status == 422
    assert Ticket.objects.get(code=code).checked_in_at is None
    assert not AuditEntry.objects.filter(action="ticket.checked_in").exists()


def test_a_phone_clock_slightly_ahead_is_accepted_as_now(make_performance):
    perf = make_performance()
    (code,) = _codes(perf)
    before = timezone.now()
    ticket = checkin.check_in(code, perf, _usher(), scanned_at=before + checkin.CLOCK_SKEW / 2)
    assert before <= ticket.checked_in_at <= timezone.now()


@pytest.mark.parametrize("text", ["yesterday", "2026-11-28T20:01:00", "2026-13-40T99:00:00Z"])
def test_a_scan_time_without_a_zone_or_malformed_is_refused(text):
    with pytest.raises(SaleError) as exc:
        checkin.parse_scanned_at(text)
    assert exc.value.code == "scanned_at_invalid"


def test_scanner_page_answers_its_script_in_json_and_refuses_a_second_phone(make_performance):
    perf = make_performance()
    code, other = _codes(perf, 2)
    first, second = Client(), Client()
    first.force_login(_usher("door-1"))
    second.force_login(_usher("door-2"))
    url = f"/staff/door/{perf.pk}/checkin/"
    scanned = (timezone.now() - timedelta(minutes=3)).replace(microsecond=0)

    admitted = first.post(url, {"code": code.lower(), "scanned_at": scanned.isoformat()}, **JSON)
    assert admitted.status_code == 200 and admitted["Content-Type"] == "application/json"
    body = admitted.json()
    assert body["ok"] is True and body["code"] == code and body["stats"] == {"sold": 2, "checked_in": 1}
    assert Ticket.objects.get(code=code).checked_in_at == scanned

    # The second phone's queued scan of the same ticket, synced afterwards.
    refused = second.post(url, {"code": code, "scanned_at": timezone.now().isoformat()}, **JSON)
    assert refused.status_code == 409
    assert refused.json()["ok"] is False and refused.json()["error"] == "already_checked_in"
    local = timezone.localtime(scanned)
    assert re.search(rf"Already checked in by door-1 at {local:%-I:%M}", refused.json()["message"]), refused.json()["message"]

    bad = second.post(url, {"code": other, "scanned_at": "tomorrow"}, **JSON)
    assert bad.status_code == 422 and bad.json()["error"] == "scanned_at_invalid"
    assert Ticket.objects.get(code=other).checked_in_at is None
    # Without the JSON header the same POST is the plain page (phones without JavaScript).
    page = second.post(url, {"code": other})
    assert page.status_code == 200 and "text/html" in page["Content-Type"] and "Welcome!" in page.content.decode()


def test_scanner_page_carries_the_queue_and_the_fallback_decoder(make_performance):
    perf = make_performance()
    client = Client()
    client.force_login(_usher())
    html = client.get(f"/staff/door/{perf.pk}/checkin/").content.decode()
    assert '<script src="/static/boxoffice/door-queue.js" defer></script>' in html
    assert 'data-fallback-src="/static/boxoffice/vendor/jsqr/jsQR.js"' in html
    assert "queued (offline)" in html and 'id="offline-queue"' in html


def test_scanner_api_records_the_scan_time_and_documents_it(make_performance):
    perf = make_performance()
    code, other = _codes(perf, 2)
    usher = _usher()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens.mint(usher)}"}
    client = Client()
    scanned = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    ok = client.post("/api/v1/staff/checkin", {"code": code, "performance_id": perf.pk, "scanned_at": scanned.isoformat()},
                     content_type="application/json", **auth)
    assert ok.status_code == 200 and Ticket.objects.get(code=code).checked_in_at == scanned
    old = (timezone.now() - checkin.MAX_SCAN_AGE - timedelta(minutes=5)).isoformat()
    stale = client.post("/api/v1/staff/checkin", {"code": other, "performance_id": perf.pk, "scanned_at": old},
                        content_type="application/json", **auth)
    assert stale.status_code == 422 and stale.json()["code"] == "scanned_at_too_old"
    assert Ticket.objects.get(code=other).checked_in_at is None
    doc = client.get("/api/v1/staff/openapi.json", **auth).json()
    body = doc["paths"]["/api/v1/staff/checkin"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert "scanned_at" in schema["properties"] and "scanned_at" not in schema.get("required", [])


def test_the_fallback_decoder_is_the_vendored_package_file_with_its_licence():
    readme = (VENDOR / "README.md").read_text()
    digest = hashlib.sha256((VENDOR / "jsQR.js").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in readme, "jsQR.js changed: update the version and hash in its README"
    assert re.search(r"version \*\*\d+\.\d+\.\d+\*\*", readme)
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    # Served from our static files: the page never names another host for a script.
    for script in ("scanner.js", "door-queue.js"):
        assert not re.search(r"https?://", (STATIC / script).read_text())
