"""Contacts: search, edits (audited), merging duplicates moves their history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from wondertix.catalog.models import Season
from wondertix.ops.models import AuditEntry
from wondertix.patrons import crm
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Donation, Patron, Subscription
from wondertix.sales.errors import SaleError
from wondertix.sales.models import Order
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk():
    return User.objects.create_user("clerk", password="x" * 12, is_staff=True)


def _patron(first, last, email, phone=""):
    return Patron.objects.create(first_name=first, last_name=last, email=email, phone=phone)


def test_search_by_name_email_and_phone_digits(db):
    ada = _patron("Ada", "Lovelace", "ada@example.org", "(555) 010-2000")
    _patron("Grace", "Hopper", "grace@example.org", "555 777 1234")
    assert list(crm.search("ada")) == [ada]
    assert list(crm.search("LOVELACE ada")) == [ada]
    assert list(crm.search("ada@example")) == [ada]
    assert list(crm.search("555-010-2000")) == [ada]
    assert list(crm.search("5550102000")) == [ada]
    assert list(crm.search("nobody")) == []
    assert list(crm.search("")) == []


def test_edit_is_validated_and_audited_with_only_the_changes(db, clerk):
    ada = _patron("Ada", "Lovelace", "ada@example.org")
    crm.update_contact(ada.pk, {"phone": "555 010 9999", "first_name": "Ada"}, actor=clerk)
    entry = AuditEntry.objects.get(action="patron.updated")
    assert entry.before == {"phone": ""} and entry.after == {"phone": "555 010 9999"} and entry.actor == clerk
    with pytest.raises(SaleError) as exc:
        crm.update_contact(ada.pk, {"email": "not-an-email"}, actor=clerk)
    assert exc.value.code == "invalid_email"
    ada.refresh_from_db()
    assert ada.email == "ada@example.org"
    assert AuditEntry.objects.filter(action="patron.updated").count() == 1


def test_notes_are_stamped_and_audited(db, clerk):
    ada = _patron("Ada", "Lovelace", "ada@example.org")
    crm.add_note(ada.pk, "Prefers aisle seats", actor=clerk)
    ada.refresh_from_db()
    assert "clerk: Prefers aisle seats" in ada.notes
    assert AuditEntry.objects.filter(action="patron.note_added", object_id=str(ada.pk)).exists()


def test_merge_moves_orders_donations_and_subscriptions_to_the_kept_contact(make_performance, good_card, clerk):
    perf = make_performance(capacity=10)
    today = timezone.localdate()
    season = Season.objects.create(name="S", slug="s", starts_on=today, ends_on=today + timedelta(days=90))
    st = subs.save_type(subs.TypeInput(season.pk, "Pack", 5000, 3), actor=clerk)
    keep = _patron("Ada", "Lovelace", "ada@example.org")
    dup = _patron("Ada", "Lovelace", "ada.l@example.net", "555 010 2000")
    dup.notes = "Called about parking\n"
    dup.save()
    buyer = Buyer(first_name="Ada", last_name="Lovelace", email="ada.l@example.net")
    order = sell([LineRequest(perf.pk, perf.adult.pk, 2)], CheckoutDetails(buyer=buyer, payment=good_card, donation_cents=1500))
    sub = subs.sell_subscription(st.pk, buyer, payment=good_card)
    assert order.patron_id == dup.pk and sub.patron_id == dup.pk

    result = crm.merge(keep.pk, dup.pk, actor=clerk)

    assert not Patron.objects.filter(pk=dup.pk).exists()
    assert set(Order.objects.values_list("patron_id", flat=True)) == {keep.pk}
    assert Donation.objects.get().patron_id == keep.pk
    assert Subscription.objects.get().patron_id == keep.pk
    keep.refresh_from_db()
    assert keep.phone == "555 010 2000"  # a blank filled from the duplicate
    assert keep.email == "ada@example.org"  # the kept contact's own details win
    assert "Called about parking" in keep.notes
    assert result.moved["sales.order"] == 2 and result.moved["patrons.donation"] == 1
    entry = AuditEntry.objects.get(action="patron.merged")
    assert entry.before["duplicate"]["email"] == "ada.l@example.net" and entry.after["deleted"] == dup.pk
    history = crm.history(keep.pk)
    assert len(history.orders) == 2 and len(history.tickets) == 2 and len(history.donations) == 1 and len(history.subscriptions) == 1


def test_merge_of_a_contact_with_itself_is_refused(db, clerk):
    ada = _patron("Ada", "Lovelace", "ada@example.org")
    with pytest.raises(SaleError) as exc:
        crm.merge(ada.pk, ada.pk, actor=clerk)
    assert exc.value.code == "same_contact"
    assert not AuditEntry.objects.exists()


def test_checkout_with_someone_elses_email_never_overwrites_their_contact(make_performance, good_card):
    perf = make_performance(capacity=10)
    ada = Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org", phone="555 010 2000",
                                address_line1="1 Analytical Way", accommodation="Wheelchair space")
    impostor = Buyer(first_name="Mallory", last_name="Evil", email="ADA@example.org", phone="555 999 9999",
                     address_line1="Elsewhere", accommodation="none")
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=impostor, payment=good_card))
    ada.refresh_from_db()
    assert (ada.first_name, ada.last_name, ada.phone, ada.address_line1, ada.accommodation) == (
        "Ada", "Lovelace", "555 010 2000", "1 Analytical Way", "Wheelchair space")
    # What the buyer typed is kept on the order for the staff to see.
    assert order.buyer_name == "Mallory Evil" and order.buyer_phone == "555 999 9999"
    assert Patron.objects.count() == 1
