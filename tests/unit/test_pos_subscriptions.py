"""Subscriptions at the point of sale: a way to sell one, and a contact's subscriptions with
what is left on their POS sale, redeemed through the back office's redeem page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from wondertix.catalog.models import Season
from wondertix.ops.models import AuditEntry
from wondertix.patrons import subscriptions as subs
from wondertix.patrons.models import Patron, Redemption
from wondertix.sales import inventory
from wondertix.sales.models import Order, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture
def window():
    user = User.objects.create_user("window-2", is_staff=True)
    user.groups.add(Group.objects.get(name="box_office"))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def season_perf(make_performance):
    today = timezone.localdate()
    season = Season.objects.create(name="2026/27", slug="s2627", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=300))
    perf = make_performance(capacity=6)
    perf.event.season = season
    perf.event.save()
    return season, perf


def _sub(season, buyer, *, name="Flex 4", tickets=4):
    st = subs.save_type(subs.TypeInput(season_id=season.pk, name=name, price_cents=8000, tickets_included=tickets))
    return subs.sell_subscription(st.pk, buyer, provider_name="cash", channel=Order.BOX_OFFICE)


def _text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def _form(html: str, action: str) -> dict[str, str]:
    """The fields of the form posting to `action`, with the values the page put in them."""
    block = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert block, f"no form posting to {action}"
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', block.group(0)))
    for name, first in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>\s*<option value="([^"]*)"', block.group(0)):
        fields[name] = first
    return fields


def test_pos_and_dashboard_link_to_selling_a_subscription(window):
    for page in ("/staff/pos/", "/staff/"):
        html = window.get(page).content.decode()
        assert 'href="/staff/contacts/subscriptions/sell/"' in html
    assert window.get("/staff/contacts/subscriptions/sell/").status_code == 200


def test_contact_pos_sale_shows_subscriptions_left_and_redeems_for_this_performance(window, season_perf, buyer):
    season, perf = season_perf
    sub = _sub(season, buyer)
    other_season = Season.objects.create(name="2027/28", slug="s2728", starts_on=season.ends_on, ends_on=season.ends_on + timedelta(days=300))
    elsewhere = _sub(other_season, buyer, name="Next year", tickets=2)
    patron = Patron.objects.get(email=buyer.email)

    page = window.get(f"/staff/pos/{perf.pk}/?patron={patron.pk}")
    assert page.status_code == 200
    html, text = page.content.decode(), _text(page)
    assert "Flex 4 (2026/27): 4 of 4 tickets left to redeem" in text
    assert "Next year (2027/28): 2 of 2 tickets left to redeem" in text and "for the 2027/28 season, not this show" in text
    assert f'href="/staff/contacts/subscriptions/sell/?contact={patron.pk}"' in html
    # Only the subscription of this performance's season can be redeemed from here.
    assert f'action="/staff/contacts/subscriptions/{elsewhere.pk}/redeem/"' not in html

    form = _form(html, f"/staff/contacts/subscriptions/{sub.pk}/redeem/")
    assert form["performance"] == str(perf.pk)
    form["quantity"] = "2"
    done = window.post(f"/staff/contacts/subscriptions/{sub.pk}/redeem/", form)
    assert done.status_code == 302
    red = Redemption.objects.get()
    assert (red.subscription_id, red.performance_id, red.quantity) == (sub.pk, perf.pk, 2)
    assert Ticket.objects.filter(order=red.order, performance=perf, price_cents=0).count() == 2
    assert inventory.availability_for([perf.pk])[perf.pk].available == 4
    assert AuditEntry.objects.filter(action="subscription.redeemed", actor_label="window-2").count() == 1
    # A double tap posts the same key: one redemption.
    window.post(f"/staff/contacts/subscriptions/{sub.pk}/redeem/", form)
    assert Redemption.objects.count() == 1

    again = _text(window.get(f"/staff/pos/{perf.pk}/?patron={patron.pk}"))
    assert "Flex 4 (2026/27): 2 of 4 tickets left to redeem" in again


def test_used_up_subscription_shows_nothing_left_and_offers_no_redeem_form(window, season_perf, buyer):
    season, perf = season_perf
    sub = _sub(season, buyer, tickets=1)
    subs.redeem(sub.pk, perf.pk, perf.adult.pk, 1)
    patron = Patron.objects.get(email=buyer.email)
    page = window.get(f"/staff/pos/{perf.pk}/?patron={patron.pk}")
    assert "0 of 1 ticket left to redeem · all tickets redeemed" in _text(page)
    assert f'action="/staff/contacts/subscriptions/{sub.pk}/redeem/"' not in page.content.decode()


def test_walk_up_sale_lists_no_subscriptions(window, season_perf):
    _, perf = season_perf
    html = window.get(f"/staff/pos/{perf.pk}/").content.decode()
    assert "subs-heading" not in html
