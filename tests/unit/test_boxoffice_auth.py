"""Staff sign-in: roles as groups, the create_staff command, login throttling, sessions."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client

from wondertix.boxoffice.roles import ROLES, roles_of
from wondertix.ops.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def quick_hashing(settings):
    """The production hasher is slow on purpose; these tests are about the flow, not the hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_the_three_role_groups_exist_after_migrate():
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == {"admin", "box_office", "usher"}


def test_create_staff_makes_a_staff_user_with_one_role_and_can_change_it():
    out = io.StringIO()
    call_command("create_staff", "jo", "--role", "usher", "--password", PASSWORD, stdout=out)
    assert "Created staff user jo with role usher" in out.getvalue()
    jo = User.objects.get(username="jo")
    assert jo.is_staff and jo.check_password(PASSWORD) and roles_of(jo) == {"usher"}
    call_command("create_staff", "jo", "--role", "box_office", "--password", PASSWORD, stdout=io.StringIO())
    jo = User.objects.get(username="jo")
    assert roles_of(jo) == {"box_office"}
    entries = list(AuditEntry.objects.filter(action__startswith="staff.").order_by("id"))
    assert [e.action for e in entries] == ["staff.created", "staff.updated"]
    assert PASSWORD not in str([e.after for e in entries])


def test_create_staff_refuses_a_weak_password_or_unknown_role():
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_staff", "weak", "--role", "usher", "--password", "12345", stdout=io.StringIO())
    assert not User.objects.filter(username="weak").exists()
    with pytest.raises(CommandError):
        call_command("create_staff", "odd", "--role", "director", "--password", PASSWORD, stdout=io.StringIO())


def _staff(role="box_office") -> User:
    call_command("create_staff", "pat", "--role", role, "--password", PASSWORD, stdout=io.StringIO())
    return User.objects.get(username="pat")


def test_login_goes_to_the_dashboard_and_logout_ends_the_session():
    _staff()
    client = Client()
    response = client.post("/staff/login/", {"username": "pat", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/staff/"
    dashboard = client.get("/staff/")
    assert dashboard.status_code == 200
    html = dashboard.content.decode()
    for link in ("/staff/pos/", "/staff/door/", "/staff/contacts/", "/staff/sales/", "/staff/reports/"):
        assert f'href="{link}"' in html
    for admin_only in ("/staff/events/", "/staff/audit/"):  # box office does not see what it cannot open
        assert f'href="{admin_only}"' not in html
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert client.get("/staff/logout/").status_code == 405  # sign-out is a POST (no cross-site logout links)
    assert client.post("/staff/logout/").status_code == 302
    assert client.get("/staff/").status_code == 302
    assert set(AuditEntry.objects.filter(action__in=["staff.login", "staff.logout"]).values_list("action", flat=True)) == {
        "staff.login", "staff.logout"}


def test_navigation_follows_the_role():
    usher = User.objects.create_user("u1", is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    admin = User.objects.create_user("a1", is_staff=True)
    admin.groups.add(Group.objects.get(name="admin"))
    links = ("/staff/events/", "/staff/pos/", "/staff/door/", "/staff/contacts/", "/staff/sales/", "/staff/reports/", "/staff/audit/")
    for user, visible in ((usher, {"/staff/door/"}), (admin, set(links))):
        client = Client()
        client.force_login(user)
        nav = client.get("/staff/").content.decode().split('<nav class="staff-nav"')[1].split("</nav>")[0]
        assert {link for link in links if f'href="{link}"' in nav} == visible


def test_login_keeps_the_next_page():
    _staff()
    client = Client()
    redirect = client.get("/staff/pos/")
    assert redirect["Location"] == "/staff/login/?next=/staff/pos/"
    response = client.post("/staff/login/?next=/staff/pos/", {"username": "pat", "password": PASSWORD, "next": "/staff/pos/"})
    assert response["Location"] == "/staff/pos/"


def test_repeated_failures_lock_the_account_with_a_clear_message():
    _staff()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/staff/login/", {"username": "pat", "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    locked = client.post("/staff/login/", {"username": "pat", "password": "wrong"})
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and f"after {settings.AXES_FAILURE_LIMIT} failed attempts" in text
    # Even the right password is refused while locked.
    still = client.post("/staff/login/", {"username": "pat", "password": PASSWORD})
    assert still.status_code == 429
    assert client.get("/staff/").status_code == 302


def test_a_patron_account_signed_in_is_refused_staff_pages():
    User.objects.create_user("patron")
    client = Client()
    client.force_login(User.objects.get(username="patron"))
    assert client.get("/staff/").status_code == 403
    assert client.get("/staff/door/").status_code == 403


def test_session_cookie_age_is_bounded():
    assert 0 < settings.SESSION_COOKIE_AGE <= 12 * 3600


def test_an_expired_session_sends_staff_back_to_sign_in():
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    _staff()
    client = Client()
    client.post("/staff/login/", {"username": "pat", "password": PASSWORD})
    assert client.get("/staff/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/staff/")
    assert response.status_code == 302 and response["Location"].startswith("/staff/login/")


def test_dashboard_lists_todays_performances_with_sold_and_capacity(make_performance):
    from datetime import datetime, time, timedelta

    from django.utils import timezone

    today_evening = timezone.make_aware(datetime.combine(timezone.localdate(), time(23, 30)))
    tonight = make_performance(capacity=80, starts_in=timedelta(0))
    tonight.__class__.objects.filter(pk=tonight.pk).update(starts_at=today_evening, tickets_sold=0)
    later = make_performance(capacity=50, starts_in=timedelta(days=3))
    usher = User.objects.create_user("u2", is_staff=True)
    usher.groups.add(Group.objects.get(name="usher"))
    client = Client()
    client.force_login(usher)
    html = client.get("/staff/").content.decode()
    assert tonight.event.title in html and "0 / 80" in html
    assert later.event.title not in html
    assert f'href="/staff/door/{tonight.pk}/checkin/"' in html
    assert f'href="/staff/pos/{tonight.pk}/"' not in html  # ushers do not sell


def test_wrong_passwords_from_one_client_behind_the_proxy_do_not_lock_out_another():
    """Behind HAProxy every request comes from the proxy's address: the lockout must follow the
    client the proxy names in X-Forwarded-For, so an attacker cannot lock a clerk out."""
    _staff()
    proxy = settings.TRUSTED_PROXY_NETWORKS[0].split("/")[0]
    attacker = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.7")
    clerk = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.20")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attacker.post("/staff/login/", {"username": "pat", "password": "wrong"})
    assert attacker.post("/staff/login/", {"username": "pat", "password": PASSWORD}).status_code == 429
    signed_in = clerk.post("/staff/login/", {"username": "pat", "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/staff/"
    assert clerk.get("/staff/").status_code == 200
