"""Contacts and subscriptions as staff (and patrons, for /subscriptions/) use them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from wondertix.catalog.models import Season
from wondertix.ops.models import AuditEntry
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Patron, Subscription
from wondertix.sales.models import Order, Ticket
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def season_pack(make_performance, clerk):
    today = timezone.localdate()
    season = Season.objects.create(name="Spring", slug="spring", starts_on=today, ends_on=today + timedelta(days=120))
    perf = make_performance(capacity=4)
    perf.event.season = season
    perf.event.save()
    pack = subs.save_type(subs.TypeInput(season.pk, "Three-pack", 6000, 3, limit_sold=10), actor=clerk)
    return season, perf, pack


def test_contact_search_page_and_contact_history(make_performance, buyer, good_card, staff):
    perf = make_performance(capacity=10)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card, donation_cents=700))
    patron = order.patron
    Patron.objects.filter(pk=patron.pk).update(accommodation="Wheelchair space")
    found = staff.get("/staff/contacts/", {"q": "555-010-2000"}).content.decode()
    assert f"/staff/contacts/{patron.pk}/" in found
    page = staff.get(f"/staff/contacts/{patron.pk}/").content.decode()
    assert order.reference in page and "Wheelchair space" in page and "$7.00" in page
    assert page.count("<code>") >= 2  # both tickets listed


def test_edit_contact_form_is_audited_and_bad_email_is_a_422(staff):
    patron = Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    form = {"first_name": "Ada", "last_name": "King", "email": "ada@example.org", "country": "GB"}
    assert staff.post(f"/staff/contacts/{patron.pk}/edit/", form).status_code == 302
    patron.refresh_from_db()
    assert patron.last_name == "King" and patron.country == "GB"
    entry = AuditEntry.objects.get(action="patron.updated")
    assert entry.before["last_name"] == "Lovelace" and entry.after["last_name"] == "King"
    bad = staff.post(f"/staff/contacts/{patron.pk}/edit/", {**form, "email": "nope"})
    assert bad.status_code == 422
    assert AuditEntry.objects.filter(action="patron.updated").count() == 1


def test_merge_page_moves_history(make_performance, good_card, staff):
    from wondertix.sales.services import Buyer

    perf = make_performance(capacity=10)
    keep = Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=Buyer("Ada", "Lovelace", "ada.other@example.org"), payment=good_card))
    dup = order.patron
    page = staff.get(f"/staff/contacts/{keep.pk}/merge/").content.decode()
    assert "ada.other@example.org" in page  # suggested as a duplicate by name
    done = staff.post(f"/staff/contacts/{keep.pk}/merge/", {"duplicate": str(dup.pk)}, follow=True)
    assert "Merged: moved 1 order" in done.content.decode()
    order.refresh_from_db()
    assert order.patron_id == keep.pk and not Patron.objects.filter(pk=dup.pk).exists()


def test_staff_sell_and_redeem_subscription_pages(season_pack, staff, buyer):
    _season, perf, pack = season_pack
    patron = Patron.objects.create(first_name="Sub", last_name="Scriber", email="sub@example.org")
    form = staff.get(f"/staff/contacts/subscriptions/sell/?contact={patron.pk}")
    key = form.context["form"].initial["key"]
    sold = staff.post("/staff/contacts/subscriptions/sell/", {"subscription_type": pack.pk, "contact": patron.pk, "payment": "cash", "key": key}, follow=True)
    assert "Sold Three-pack to Sub Scriber ($60.00)" in sold.content.decode()
    sub = Subscription.objects.get()
    assert sub.order.channel == Order.BOX_OFFICE and sub.order.payments.get().provider == "cash"

    page = staff.get(f"/staff/contacts/subscriptions/{sub.pk}/redeem/")
    too_many = staff.post(f"/staff/contacts/subscriptions/{sub.pk}/redeem/", {"performance": perf.pk, "price_type": perf.adult.pk, "quantity": 4, "key": page.context["key"]})
    assert too_many.status_code == 422 and "3 tickets left to redeem" in too_many.content.decode()
    ok = staff.post(f"/staff/contacts/subscriptions/{sub.pk}/redeem/", {"performance": perf.pk, "price_type": perf.adult.pk, "quantity": 2, "key": page.context["key"]}, follow=True)
    assert '<strong id="remaining">1</strong>' in ok.content.decode()
    assert Ticket.objects.filter(performance=perf, status=Ticket.VALID).count() == 2


def test_subscription_type_form_creates_and_refuses_a_duplicate(season_pack, staff):
    season, _perf, _pack = season_pack
    form = {"season": season.pk, "name": "Five-pack", "price": "95.00", "tickets_included": 5, "limit_sold": "", "active": "on", "on_sale_online": "on"}
    assert staff.post("/staff/contacts/subscriptions/new/", form).status_code == 302
    assert staff.post("/staff/contacts/subscriptions/new/", form).status_code == 422
    listing = staff.get("/staff/contacts/subscriptions/").content.decode()
    assert "Five-pack" in listing and "$95.00" in listing


def test_public_subscription_page_sells_online(season_pack):
    _season, _perf, pack = season_pack
    client = Client()
    page = client.get("/subscriptions/")
    assert page.status_code == 200 and "Three-pack" in page.content.decode()
    submission = page.context["form"].initial["submission"]
    form = {"subscription_type": pack.pk, "first_name": "Web", "last_name": "Buyer", "email": "web@example.org",
            "card_number": "4242 4242 4242 4242", "card_expiry": "12/30", "card_cvc": "123", "submission": submission}
    done = client.post("/subscriptions/", form, follow=True)
    assert "You have <strong>3</strong> of 3 tickets" in done.content.decode()
    client.post("/subscriptions/", form)  # a double submit sells nothing more
    sub = Subscription.objects.get()
    assert sub.order.channel == Order.ONLINE and sub.order.total_cents == 6000
    declined = client.post("/subscriptions/", {**form, "card_number": "4000 0000 0000 0002", "submission": "another"})
    assert declined.status_code == 402 and Subscription.objects.count() == 1
