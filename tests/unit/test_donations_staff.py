"""Donations for staff: the list and its CSV respect anonymous donors."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from wondertix.patrons.donations import donate
from wondertix.reports import services
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    user = User.objects.create_user("window", is_staff=True)
    user.groups.add(Group.objects.get(name="box_office"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def gifts(make_performance, good_card):
    perf = make_performance(capacity=5)
    shy = Buyer(first_name="Shy", last_name="Patron", email="shy@example.org")
    loud = Buyer(first_name="Loud", last_name="Patron", email="loud@example.org")
    sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=shy, payment=good_card, donation_cents=2500, donation_anonymous=True))
    donate(10000, loud, payment=good_card, comment="Break a leg")
    return shy, loud


def test_donation_list_and_csv_show_anonymous_donors_as_anonymous(gifts, staff):
    page = staff.get("/staff/reports/donations/").content.decode()
    assert "Anonymous" in page and "Loud Patron" in page
    assert "Shy Patron" not in page and "shy@example.org" not in page
    rows = list(csv.reader(io.StringIO(staff.get("/staff/reports/donations.csv").content.decode())))
    by_donor = {r[1]: r for r in rows[1:-1]}
    assert set(by_donor) == {"Anonymous", "Loud Patron"}
    assert by_donor["Anonymous"][2] == "" and by_donor["Anonymous"][3] == "25.00"
    assert by_donor["Loud Patron"][2] == "loud@example.org" and by_donor["Loud Patron"][6] == "Break a leg"
    assert rows[-1][3] == "125.00"


def test_the_contact_page_still_knows_who_gave(gifts, staff):
    from wondertix.patrons.models import Patron

    shy = Patron.objects.get(email="shy@example.org")
    page = staff.get(f"/staff/contacts/{shy.pk}/").content.decode()
    assert "$25.00" in page and "yes" in page  # anonymous gift listed on the donor's own record


def test_internal_donation_rows_can_name_the_donor(gifts):
    named = {r.donor for r in services.donation_rows(services.Period(), acknowledgement=False)}
    assert named == {"Shy Patron", "Loud Patron"}


def test_a_gift_recorded_at_the_window_is_paid_audited_and_reported(staff):
    from wondertix.ops.models import AuditEntry
    from wondertix.patrons.models import Donation, Patron
    from wondertix.sales.models import Order

    patron = Patron.objects.create(first_name="Cash", last_name="Giver", email="cash@example.org")
    form = staff.get(f"/staff/contacts/{patron.pk}/gift/")
    key = form.context["form"].initial["key"]
    post = {"amount": "40.00", "method": "cash", "comment": "In memory of Nan", "key": key}
    done = staff.post(f"/staff/contacts/{patron.pk}/gift/", post, follow=True)
    assert "Recorded a gift of $40.00" in done.content.decode()
    staff.post(f"/staff/contacts/{patron.pk}/gift/", post)  # a double submit records nothing more
    gift = Donation.objects.get()
    assert gift.patron_id == patron.pk and gift.order.channel == Order.BOX_OFFICE
    assert gift.order.payments.get().provider == "cash"
    entry = AuditEntry.objects.get(action="donation.recorded")
    assert entry.actor.username == "window" and entry.after["amount_cents"] == 4000
    summary = services.summary(services.Period())
    assert summary.total.donations.gross_cents == 4000 and summary.reconciles
    bad = staff.post(f"/staff/contacts/{patron.pk}/gift/", {**post, "amount": "abc", "key": "other"})
    assert bad.status_code == 422 and Donation.objects.count() == 1
