"""`wondertix scrub_personal_data`: no personal value survives, and no text field escapes the list.

The full proof on PostgreSQL (a prd copied into stg, every column of every table scanned) is
tests/integration/test_db_refresh.py; these tests pin the classification and the rules.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.utils import timezone

from wondertix.ops import scrub
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import Donation, Patron
from wondertix.payments.models import CheckoutSession, Payment
from wondertix.sales.models import Hold, Order

pytestmark = pytest.mark.django_db


def test_every_text_field_of_every_model_is_scrubbed_emptied_or_declared_not_personal():
    # A new model or field that can hold text must be added to wondertix/ops/scrub.py,
    # as scrubbed or as not personal, before this passes: the scrub cannot fall behind.
    assert scrub.unclassified_fields() == []
    assert scrub.stale_entries() == []


def test_a_text_field_nobody_classified_stops_the_scrub_and_changes_nothing(monkeypatch):
    ada = Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    monkeypatch.setitem(scrub.NOT_PERSONAL, "patrons.patron", set())  # as if `country` were new
    assert scrub.unclassified_fields() == ["patrons.patron.country"]
    with pytest.raises(CommandError, match="patrons.patron.country is neither scrubbed nor declared not personal"):
        call_command("scrub_personal_data", "--noinput")
    ada.refresh_from_db()
    assert ada.email == "ada@example.org"


def test_the_scrub_refuses_a_database_with_real_data(settings):
    settings.DATA_IS_REAL = True
    Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    with pytest.raises(CommandError, match="real data"):
        call_command("scrub_personal_data", "--noinput")
    assert Patron.objects.get().email == "ada@example.org"


def test_names_emails_phones_addresses_notes_payments_staff_and_audit_are_replaced():
    clerk = User.objects.create_user("mholloway", email="m.holloway@theater.example", password="correct horse 1",
                                     first_name="Marguerite", last_name="Holloway", is_staff=True)
    ada = Patron.objects.create(
        first_name="Ada", last_name="Lovelace", email="ada@example.org", phone="(503) 555-2718",
        address_line1="12 Analytical Row", city="Portland", region="OR", postal_code="97209",
        accommodation="wheelchair space", notes="Prefers aisle; allergic to latex",
    )
    quiet = Patron.objects.create(first_name="Grace", last_name="Hopper", email="grace@example.org")
    order = Order.objects.create(patron=ada, buyer_name="Ada Lovelace", buyer_email="ada@example.org",
                                 buyer_phone="(503) 555-2718", status=Order.PAID, created_by=clerk)
    Payment.objects.create(order=order, provider="stripe", reference="pi_3Nreal", amount_cents=0, status="succeeded")
    Donation.objects.create(patron=ada, amount_cents=5000, comment="In memory of Charles Babbage")
    pending = Order.objects.create(patron=ada, buyer_name="Ada Lovelace", buyer_email="ada@example.org", status=Order.PENDING)
    CheckoutSession.objects.create(order=pending, expires_at=timezone.now() + timedelta(minutes=30), priced={
        "tickets": [], "donation": {"cents": 2500, "anonymous": False, "comment": "For Lord Byron's daughter"}})
    Hold.objects.create(expires_at=timezone.now() + timedelta(minutes=5), reason="for Ada's party",
                        client_address="203.0.113.7")
    AuditEntry.objects.create(actor=clerk, actor_label="mholloway", action="patron.updated", object_type="patrons.patron",
                              object_id=str(ada.pk), before={"email": "ada@example.org", "status": "x"},
                              after={"email": "ada@new.example", "tickets": 2})
    AuditEntry.objects.create(actor_label="public", action="order.paid", after={"channel": "online"})
    Session.objects.create(session_key="k" * 32, session_data="secret", expire_date=timezone.now() + timedelta(days=1))

    call_command("scrub_personal_data", "--noinput")

    ada.refresh_from_db()
    assert (ada.first_name, ada.last_name, ada.email) == ("Patron", str(ada.pk), f"patron-{ada.pk}@example.invalid")
    assert ada.phone == "555-0100" and ada.address_line1 == f"{ada.pk} Rehearsal Street"
    assert ada.address_line2 == "", "an empty field stays empty (the copy keeps prd's shape)"
    assert "latex" not in ada.notes and "wheelchair" not in ada.accommodation
    quiet.refresh_from_db()
    assert quiet.email == f"patron-{quiet.pk}@example.invalid" and quiet.phone == ""
    order.refresh_from_db()
    assert (order.buyer_name, order.buyer_email) == (f"Buyer {order.pk}", f"buyer-{order.pk}@example.invalid")
    assert order.status == Order.PAID
    assert Payment.objects.get().reference == f"scrubbed-{Payment.objects.get().pk}"
    assert "Babbage" not in Donation.objects.get().comment
    priced = CheckoutSession.objects.get().priced
    assert "Byron" not in str(priced) and priced["donation"]["cents"] == 2500, priced
    hold = Hold.objects.get()
    assert hold.client_address is None and "Ada" not in hold.reason
    clerk.refresh_from_db()
    assert (clerk.username, clerk.email) == (f"staff-{clerk.pk}", f"staff-{clerk.pk}@example.invalid")
    assert clerk.first_name == "Staff" and not clerk.has_usable_password()
    assert not clerk.check_password("correct horse 1")
    edited = AuditEntry.objects.get(action="patron.updated")
    assert edited.actor_label == f"staff-{clerk.pk}"
    assert edited.before == {"email": "(scrubbed)", "status": "x"} and edited.after == {"email": "(scrubbed)", "tickets": 2}
    assert AuditEntry.objects.get(action="order.paid").actor_label == "public"
    assert not Session.objects.exists()


def test_check_only_changes_nothing():
    Patron.objects.create(first_name="Ada", last_name="Lovelace", email="ada@example.org")
    call_command("scrub_personal_data", "--check")
    assert Patron.objects.get().email == "ada@example.org"


def test_a_database_newer_than_this_release_or_with_a_table_no_model_describes_is_refused():
    # prd may run a newer release than stg: a column stg's models do not know would be
    # copied across unscrubbed, so the scrub refuses instead.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('patrons', '9999_birthday', CURRENT_TIMESTAMP)")
        cursor.execute("CREATE TABLE patrons_outbox (id integer PRIMARY KEY, recipient varchar(254))")
    with pytest.raises(CommandError) as exc:
        call_command("scrub_personal_data", "--noinput")
    assert "migration patrons.9999_birthday (the database is newer than this release)" in str(exc.value)
    assert "column patrons_outbox.recipient (no model field describes it)" in str(exc.value)
