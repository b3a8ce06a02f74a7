"""The audit log page: admins browse and filter who did what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from wondertix.catalog import staff
from wondertix.ops.models import AuditEntry

pytestmark = pytest.mark.django_db


def _admin(name):
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name="admin"))
    return user


def test_admins_filter_the_audit_log_by_actor_action_object_and_date(make_performance):
    perf = make_performance(capacity=10)
    alice, bob = _admin("alice"), _admin("bob")
    staff.update_performance(perf.pk, {"capacity": 12}, actor=alice)
    staff.update_performance(perf.pk, {"note": "Relaxed performance"}, actor=bob)
    staff.set_event_active(perf.event_id, False, actor=bob)
    old = AuditEntry.objects.get(action="event.deactivated")
    AuditEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    client = Client()
    client.force_login(alice)

    def rows(**query):
        html = client.get("/staff/audit/", query).content.decode()
        return html.count("<tr>") - 1  # minus the header row

    assert rows(actor="alice") == 1
    page = client.get("/staff/audit/", {"actor": "alice"}).content.decode()
    assert "performance.updated" in page and "capacity" in page and "12" in page
    assert rows(action="performance.") == 2
    assert rows(object_type="catalog.event") == 1
    assert rows(object_type="catalog.performance", object_id=str(perf.pk)) == 2
    today = timezone.localdate().isoformat()
    assert rows(date_from=today, actor="bob") == 1
    assert rows(date_to=(timezone.localdate() - timedelta(days=5)).isoformat()) == 1
    assert "No entries match" in client.get("/staff/audit/", {"actor": "nobody"}).content.decode()


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01"])
def test_audit_dates_at_the_ends_of_the_calendar_are_refused_not_a_server_error(value):
    client = Client(raise_request_exception=False)
    client.force_login(_admin("alice"))
    response = client.get("/staff/audit/", {"date_to": value, "date_from": value})
    assert response.status_code == 200
    assert "Ensure this value is" in response.content.decode()
