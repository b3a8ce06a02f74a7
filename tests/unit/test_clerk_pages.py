"""The small things clerks tripped over: real form labels, Seasons and Discount codes in the
navigation (each link opens a page headed as it reads), seasons that can be deleted when
empty, every delete asked first, a POS confirmation with the payment method, the change due
and a receipt, and no duplicate element ids on the POS page."""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django import forms
from django.forms.utils import pretty_name
from django.test import Client
from django.utils import timezone

import wondertix
from wondertix.catalog.models import Event, Season, SeasonPrice
from wondertix.ops.models import AuditEntry
from wondertix.patrons.models import SubscriptionType
from wondertix.sales.models import DiscountCode, Order

pytestmark = pytest.mark.django_db

# Field names whose made-up label ("First name") is already what a person would write.
PLAIN = {"first_name", "last_name", "card_number", "postal_code", "discount_code", "price_type", "subscription_type"}
# Single words Django would show as they are, that mean nothing to a clerk or a patron.
JARGON = {"cvc", "slug", "kind", "value", "method", "payment"}


def _forms() -> list[type[forms.BaseForm]]:
    for module in pkgutil.walk_packages(wondertix.__path__, "wondertix."):
        # (not the WSGI/ASGI entry points: importing one starts the app with its deploy checks)
        if not any(part in module.name for part in (".migrations", ".management", "wsgi", "asgi")):
            importlib.import_module(module.name)
    found, todo = [], list(forms.BaseForm.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("wondertix."):
            found.append(cls)
    return found


def test_no_form_shows_a_label_django_made_up_from_a_field_name():
    checked, bad = 0, []
    for cls in _forms():
        for name, field in cls.base_fields.items():
            if field.widget.is_hidden:
                continue
            checked += 1
            label = field.label if field.label is not None else pretty_name(name)
            made_up = label.lower() == pretty_name(name).lower()
            if made_up and (name in JARGON or ("_" in name and name not in PLAIN)):
                bad.append(f"{cls.__module__}.{cls.__name__}.{name}: {label!r}")
    assert checked > 80
    assert not bad, "labels Django made up from field names:\n" + "\n".join(bad)


def test_the_event_and_card_forms_say_what_they_mean():
    from wondertix.boxoffice.forms import EventForm, PosPaymentForm

    assert str(EventForm().fields["duration_minutes"].label) == "Running time (minutes)"
    pos = PosPaymentForm()
    assert (pos.fields["exp_month"].label, pos.fields["cvc"].label) == ("Expiry month", "Security code (CVC)")


NAV = re.compile(r'<nav class="staff-nav"[^>]*>(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="([^"]+)"[^>]*>([^<]+)</a>')
H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html).replace("&amp;", "&").strip()


def test_navigation_names_seasons_and_discount_codes_and_every_link_opens_a_page_headed_as_it_reads(admin):
    nav = NAV.search(admin.get("/staff/").content.decode()).group(1)
    links = LINK.findall(nav)
    labels = [_text(label) for _, label in links]
    assert "Seasons" in labels and "Discount codes" in labels and "Patron emails" in labels
    for href, label in links:
        if href == "/staff/":
            continue  # the dashboard is headed by the box office's name
        heading = _text(H1.search(admin.get(href).content.decode()).group(1))
        assert heading.startswith(_text(label)), f"the link “{_text(label)}” opens a page headed “{heading}”"


def test_refunds_and_exchanges_opens_a_page_headed_refunds_and_exchanges(staff):
    page = staff.get("/staff/sales/").content.decode()
    assert _text(H1.search(page).group(1)) == "Refunds & exchanges"


def _season(**kw) -> Season:
    today = timezone.localdate()
    return Season.objects.create(name=kw.pop("name", "2027/28"), slug=kw.pop("slug", "s2728"), starts_on=today, ends_on=today + timedelta(days=200), **kw)


def test_an_empty_season_is_deleted_after_confirming(admin):
    season = _season()
    SeasonPrice.objects.create(season=season, name="Adult", price_cents=2500)
    page = admin.get(f"/staff/seasons/{season.pk}/delete/")
    assert page.status_code == 200 and "Delete the season “2027/28”?" in page.content.decode()
    assert admin.post(f"/staff/seasons/{season.pk}/delete/").status_code == 400  # no confirmation: nothing happens
    assert Season.objects.filter(pk=season.pk).exists()
    response = admin.post(f"/staff/seasons/{season.pk}/delete/", {"confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == "/staff/seasons/"
    assert not Season.objects.exists() and not SeasonPrice.objects.exists()
    entry = AuditEntry.objects.get(action="season.deleted")
    assert entry.before["name"] == "2027/28" and entry.before["default_prices"] == ["Adult"]


def test_a_season_in_use_is_refused_with_the_reason_and_nothing_written(admin, admin_user):
    with_event = _season(name="With events", slug="with-events")
    Event.objects.create(title="Hamlet", slug="hamlet", season=with_event)
    with_subs = _season(name="With subscriptions", slug="with-subs")
    SubscriptionType.objects.create(season=with_subs, name="Flex", price_cents=8000, tickets_included=4)
    audits = AuditEntry.objects.count()
    for season, why in ((with_event, "has events (“Hamlet”)"), (with_subs, "has 1 subscription type")):
        page = admin.get(f"/staff/seasons/{season.pk}/delete/").content.decode()
        assert why in page and "Yes, delete it" not in page
        response = admin.post(f"/staff/seasons/{season.pk}/delete/", {"confirm": "yes"})
        assert response.status_code == 409 and why in response.content.decode()
    assert Season.objects.count() == 2 and AuditEntry.objects.count() == audits


def test_every_delete_asks_first_and_a_post_without_the_confirmation_deletes_nothing(admin, make_performance):
    perf = make_performance()
    season = _season()
    price = SeasonPrice.objects.create(season=season, name="Adult", price_cents=2500)
    code = DiscountCode.objects.create(code="SPRING", kind="percent", value=10)
    # The pages that list these offer a link to the question, never a one-click delete form.
    for page in (f"/staff/events/{perf.event_id}/", f"/staff/seasons/{season.pk}/", "/staff/discounts/"):
        html = admin.get(page).content.decode()
        assert not re.search(r'<form[^>]*action="[^"]*/delete/"', html), page
        assert "/delete/" in html
    urls = [f"/staff/performances/{perf.pk}/delete/", f"/staff/price-types/{perf.student.pk}/delete/",
            f"/staff/season-prices/{price.pk}/delete/", f"/staff/discounts/{code.pk}/delete/", f"/staff/seasons/{season.pk}/delete/"]
    for url in urls:
        question = admin.get(url).content.decode()
        assert 'name="confirm" value="yes"' in question and "Keep it" in question, url
        assert admin.post(url).status_code == 400, url
    assert (perf.__class__.objects.filter(pk=perf.pk).exists(), perf.student.__class__.objects.filter(pk=perf.student.pk).exists(),
            SeasonPrice.objects.filter(pk=price.pk).exists(), DiscountCode.objects.filter(pk=code.pk).exists(),
            Season.objects.filter(pk=season.pk).exists()) == (True, True, True, True, True)
    for url in urls[1:]:  # the season after its default price (deleting it would take the price along)
        assert admin.post(url, {"confirm": "yes"}).status_code == 302, url
    assert admin.post(urls[0], {"confirm": "yes"}).status_code == 302
    assert not SeasonPrice.objects.exists() and not DiscountCode.objects.exists() and not Season.objects.exists()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids.extend(value for name, value in attrs if name == "id" and value)


def _duplicate_ids(html: str) -> list[str]:
    parser = _Ids()
    parser.feed(html)
    return sorted({i for i in parser.ids if parser.ids.count(i) > 1})


@pytest.fixture
def seller(clerk):
    client = Client()
    client.force_login(clerk)
    return client


def test_the_pos_page_has_no_duplicate_element_ids(seller, make_performance, buyer, good_card):
    from wondertix.sales.services import CheckoutDetails, LineRequest, sell

    perf = make_performance(capacity=20)
    order = sell([LineRequest(perf.pk, perf.adult.pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    for url in (f"/staff/pos/{perf.pk}/", f"/staff/pos/{perf.pk}/?patron={order.patron_id}", f"/staff/pos/orders/{order.pk}/"):
        html = seller.get(url).content.decode()
        parser = _Ids()
        parser.feed(html)
        assert len(parser.ids) > 3, url
        assert _duplicate_ids(html) == [], url


def _sell(seller, perf, **data):
    form = {"payment_method": "cash", f"qty_{perf.adult.pk}": "2", "idempotency_key": data.pop("key", "k1")} | data
    return seller.post(f"/staff/pos/{perf.pk}/", form)


def test_a_cash_sale_confirmation_shows_the_method_the_change_due_and_a_receipt(seller, make_performance):
    perf = make_performance(capacity=20)
    response = _sell(seller, perf, cash_tendered="60")
    assert response.status_code == 302
    page = seller.get(response["Location"]).content.decode()
    assert '<dd id="paid-by">Cash</dd>' in page
    assert '<dd id="cash-received">$60.00</dd>' in page and '<dd id="change-due" class="change-due">$10.00</dd>' in page
    assert 'class="receipt panel"' in page and "data-print" in page and "boxoffice/print" in page
    order = Order.objects.get()
    assert order.reference in page and order.total_cents == 5000  # no online fees at the window
    assert AuditEntry.objects.get(action="pos.sale").after["change_cents"] == 1000


def test_too_little_cash_is_refused_and_nothing_is_sold(seller, make_performance):
    perf = make_performance(capacity=20)
    audits = AuditEntry.objects.count()
    response = _sell(seller, perf, cash_tendered="40")
    assert response.status_code == 422
    assert "The total is $50.00; $40.00 in cash is not enough." in response.content.decode()
    perf.refresh_from_db()
    assert not Order.objects.exists() and perf.tickets_sold == 0 and AuditEntry.objects.count() == audits


def test_card_and_comp_sales_say_how_they_were_paid(seller, make_performance):
    perf = make_performance(capacity=20)
    card = _sell(seller, perf, payment_method="card", card_number="4242424242424242", exp_month="12", exp_year="2031", cvc="123", key="k2")
    assert '<dd id="paid-by">Card</dd>' in seller.get(card["Location"]).content.decode()
    comp = _sell(seller, perf, payment_method="comp", reason="Press night", key="k3")
    page = seller.get(comp["Location"]).content.decode()
    assert '<dd id="paid-by">Comp (no charge)</dd>' in page and 'id="change-due"' not in page
