"""Staff catalog editing: the rules that protect sales already made (acceptance 6, box office
part), season default prices, copying and canceling performances, discount codes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from wondertix.catalog import staff
from wondertix.catalog.models import Event, Performance, PriceType, Season
from wondertix.ops.models import AuditEntry
from wondertix.payments.providers.base import PaymentDetails
from wondertix.sales.errors import SaleError
from wondertix.sales.models import DiscountCode, Ticket
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db

CARD = PaymentDetails(card_number="4242424242424242", exp_month=12, exp_year=2030, cvc="123")


def _sell(perf, price_type, n, email="buyer@example.org"):
    return sell([LineRequest(perf.pk, price_type.pk, n)],
                CheckoutDetails(buyer=Buyer(first_name="Sam", last_name="Buyer", email=email), payment=CARD))


def _state(perf):
    perf.refresh_from_db()
    return (perf.capacity, perf.status, AuditEntry.objects.count())


def test_capacity_below_sold_is_refused_with_a_clear_error_and_nothing_written(make_performance, admin):
    perf = make_performance(capacity=10)
    _sell(perf, perf.adult, 6)
    before = _state(perf)
    response = admin.post(f"/staff/performances/{perf.pk}/edit/", {
        "starts_at": timezone.localtime(perf.starts_at).strftime("%Y-%m-%dT%H:%M"), "capacity": "5", "note": "smaller room",
    })
    assert response.status_code == 422
    assert "Capacity cannot be lower than the 6 tickets already sold" in response.content.decode()
    assert _state(perf) == before
    perf.refresh_from_db()
    assert perf.note == ""


def test_capacity_down_to_exactly_sold_is_allowed_and_audited(make_performance, admin_user):
    perf = make_performance(capacity=10)
    _sell(perf, perf.adult, 6)
    staff.update_performance(perf.pk, {"capacity": 6}, actor=admin_user)
    perf.refresh_from_db()
    assert perf.capacity == 6
    entry = AuditEntry.objects.get(action="performance.updated")
    assert entry.before == {"capacity": 10} and entry.after == {"capacity": 6}
    assert entry.actor == admin_user


def test_deleting_a_performance_with_sales_is_refused_and_nothing_written(make_performance, admin):
    perf = make_performance(capacity=10)
    _sell(perf, perf.adult, 1)
    before = _state(perf)
    response = admin.post(f"/staff/performances/{perf.pk}/delete/", {"confirm": "yes"})
    assert response.status_code == 409
    assert "cannot be deleted" in response.content.decode()
    assert Performance.objects.filter(pk=perf.pk).exists()
    assert _state(perf) == before


def test_a_performance_without_sales_can_be_deleted(make_performance, admin):
    perf = make_performance(capacity=10)
    response = admin.post(f"/staff/performances/{perf.pk}/delete/", {"confirm": "yes"})
    assert response.status_code == 302
    assert not Performance.objects.filter(pk=perf.pk).exists()
    assert AuditEntry.objects.get(action="performance.deleted").before["capacity"] == 10


def test_canceling_stops_sales_and_refunds_the_buyers(make_performance, admin):
    perf = make_performance(capacity=10)
    order = _sell(perf, perf.adult, 2, email="refund-me@example.org")
    page = admin.get(f"/staff/performances/{perf.pk}/cancel/").content.decode()
    assert "refund-me@example.org" in page and order.reference in page  # who will be refunded
    assert admin.post(f"/staff/performances/{perf.pk}/cancel/", {"reason": ""}).status_code == 422
    assert Performance.objects.get(pk=perf.pk).status == Performance.ON_SALE
    response = admin.post(f"/staff/performances/{perf.pk}/cancel/", {"reason": "Lead actor ill"}, follow=True)
    assert response.status_code == 200
    assert "Refunded 2 ticket(s) on 1 order(s), $54.00 in total" in response.content.decode()
    perf.refresh_from_db()
    assert perf.status == Performance.CANCELED and perf.tickets_sold == 0
    assert Ticket.objects.filter(performance=perf, status=Ticket.REFUNDED).count() == 2
    with pytest.raises(SaleError) as exc:
        _sell(perf, perf.adult, 1)
    assert exc.value.code == "performance_canceled"
    assert AuditEntry.objects.get(action="performance.canceled").after["reason"] == "Lead actor ill"


def test_price_edit_never_rewrites_past_sales(make_performance, admin):
    perf = make_performance(capacity=10)
    order = _sell(perf, perf.adult, 2)
    response = admin.post(f"/staff/price-types/{perf.adult.pk}/edit/", {"name": "Adult", "price_cents": "30", "fee_cents": "2.00", "sort_order": "0"})
    assert response.status_code == 302
    assert PriceType.objects.get(pk=perf.adult.pk).price_cents == 3000
    assert set(order.tickets.values_list("price_cents", flat=True)) == {2500}
    order.refresh_from_db()
    assert order.subtotal_cents == 5000
    assert _sell(perf, perf.adult, 1, email="later@example.org").tickets.get().price_cents == 3000
    entry = AuditEntry.objects.get(action="price_type.updated")
    assert entry.before == {"price_cents": 2500} and entry.after == {"price_cents": 3000}


def test_price_type_limit_below_sold_is_refused(make_performance, admin_user):
    perf = make_performance(capacity=10, student_limit=5)
    _sell(perf, perf.student, 3)
    audits = AuditEntry.objects.count()
    with pytest.raises(SaleError) as exc:
        staff.update_price_type(perf.student.pk, {"limit_per_performance": 2}, actor=admin_user)
    assert exc.value.code == "limit_below_sold"
    assert "3 already sold" in exc.value.message
    assert PriceType.objects.get(pk=perf.student.pk).limit_per_performance == 5
    assert AuditEntry.objects.count() == audits
    staff.update_price_type(perf.student.pk, {"limit_per_performance": 3}, actor=admin_user)
    assert PriceType.objects.get(pk=perf.student.pk).limit_per_performance == 3


def test_activation_needs_a_price_type_and_puts_the_event_on_sale(admin):
    event = Event.objects.create(title="Quiet Night", slug="quiet-night")
    response = admin.post(f"/staff/events/{event.pk}/active/", {"active": "1"}, follow=True)
    assert "Add at least one active price type" in response.content.decode()
    assert Event.objects.get(pk=event.pk).active is False
    PriceType.objects.create(event=event, name="General", price_cents=1500)
    admin.post(f"/staff/events/{event.pk}/active/", {"active": "1"})
    assert Event.objects.get(pk=event.pk).active is True
    admin.post(f"/staff/events/{event.pk}/active/", {"active": "0"})
    assert Event.objects.get(pk=event.pk).active is False
    assert list(AuditEntry.objects.filter(object_id=str(event.pk)).order_by("id").values_list("action", flat=True)) == [
        "event.activated", "event.deactivated"]


def test_season_default_prices_are_given_to_new_and_added_events(admin, admin_user):
    today = timezone.localdate()
    response = admin.post("/staff/seasons/new/", {"name": "2027 Season", "slug": "s2027", "starts_on": today.isoformat(),
                                                  "ends_on": (today + timedelta(days=200)).isoformat(), "active": "on"})
    assert response.status_code == 302
    season = Season.objects.get(slug="s2027")
    assert admin.post(f"/staff/seasons/{season.pk}/prices/new/", {"name": "Adult", "price_cents": "32.50", "sort_order": "0"}).status_code == 302
    assert admin.post(f"/staff/seasons/{season.pk}/prices/new/", {"name": "Student", "price_cents": "15", "limit_per_performance": "20", "sort_order": "1"}).status_code == 302

    admin.post("/staff/events/new/", {"title": "Hamlet", "slug": "hamlet", "season": season.pk})
    hamlet = Event.objects.get(slug="hamlet")
    assert {(pt.name, pt.price_cents, pt.limit_per_performance) for pt in hamlet.price_types.all()} == {
        ("Adult", 3250, None), ("Student", 1500, 20)}

    # An existing event added to the season keeps its own Adult price and gains Student.
    lear = Event.objects.create(title="Lear", slug="lear")
    PriceType.objects.create(event=lear, name="Adult", price_cents=4000)
    admin.post(f"/staff/seasons/{season.pk}/add-event/", {"event_id": lear.pk})
    assert Event.objects.get(pk=lear.pk).season_id == season.pk
    assert {(pt.name, pt.price_cents) for pt in lear.price_types.all()} == {("Adult", 4000), ("Student", 1500)}
    assert AuditEntry.objects.filter(action="season_price.created").count() == 2


def test_copy_performance_moves_the_sale_window_and_copies_no_sales(make_performance, admin):
    perf = make_performance(capacity=40)
    Performance.objects.filter(pk=perf.pk).update(on_sale_until=perf.starts_at - timedelta(hours=1), note="Talkback after")
    _sell(perf, perf.adult, 2)
    new_start = timezone.localtime(perf.starts_at + timedelta(days=7)).replace(second=0, microsecond=0)
    response = admin.post(f"/staff/performances/{perf.pk}/copy/", {"starts_at": new_start.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    copy = Performance.objects.exclude(pk=perf.pk).get(event=perf.event)
    assert (copy.capacity, copy.tickets_sold, copy.note) == (40, 0, "Talkback after")
    assert copy.starts_at == new_start
    assert copy.on_sale_until == new_start - timedelta(hours=1)


def test_discount_codes_are_created_limited_and_deactivated(make_performance, admin, admin_user):
    perf = make_performance()
    response = admin.post("/staff/discounts/new/", {"code": "preview", "kind": "percent", "value": "20", "usage_limit": "2",
                                                    "min_tickets": "1", "price_types": [perf.adult.pk]})
    assert response.status_code == 302
    code = DiscountCode.objects.get(code="PREVIEW")
    assert list(code.price_types.all()) == [perf.adult]
    DiscountCode.objects.filter(pk=code.pk).update(times_used=2)
    with pytest.raises(SaleError) as exc:
        staff.update_discount(code.pk, {"usage_limit": 1}, actor=admin_user)
    assert exc.value.code == "limit_below_used"
    assert admin.post("/staff/discounts/new/", {"code": "BAD", "kind": "percent", "value": "150", "min_tickets": "1"}).status_code == 422
    assert not DiscountCode.objects.filter(code="BAD").exists()
    admin.post(f"/staff/discounts/{code.pk}/active/", {"active": "0"})
    assert DiscountCode.objects.get(pk=code.pk).active is False


def test_bad_input_gets_field_errors_and_writes_nothing(make_performance, admin):
    perf = make_performance()
    audits = AuditEntry.objects.count()
    r = admin.post(f"/staff/events/{perf.event_id}/performances/new/", {"starts_at": "not a date", "capacity": "0"})
    assert r.status_code == 422
    assert admin.post(f"/staff/events/{perf.event_id}/price-types/new/", {"name": "Odd", "price_cents": "12.345", "sort_order": "0"}).status_code == 422
    assert admin.post("/staff/events/new/", {"title": "Dup", "slug": perf.event.slug}).status_code == 422
    assert Performance.objects.filter(event=perf.event).count() == 1
    assert not PriceType.objects.filter(name="Odd").exists()
    assert AuditEntry.objects.count() == audits


def test_price_types_and_codes_with_sales_cannot_be_deleted_only_taken_off_sale(make_performance, admin):
    perf = make_performance()
    _sell(perf, perf.adult, 1)
    audits = AuditEntry.objects.count()
    response = admin.post(f"/staff/price-types/{perf.adult.pk}/delete/", {"confirm": "yes"}, follow=True)
    assert "has tickets sold or held and cannot be deleted" in response.content.decode()
    assert PriceType.objects.filter(pk=perf.adult.pk).exists()
    assert AuditEntry.objects.count() == audits
    admin.post(f"/staff/price-types/{perf.student.pk}/delete/", {"confirm": "yes"})
    assert not PriceType.objects.filter(pk=perf.student.pk).exists()
    assert AuditEntry.objects.get(action="price_type.deleted").before["name"] == "Student"

    used = DiscountCode.objects.create(code="USED", kind="amount", value=100, times_used=1)
    unused = DiscountCode.objects.create(code="UNUSED", kind="amount", value=100)
    assert "cannot be deleted" in admin.post(f"/staff/discounts/{used.pk}/delete/", {"confirm": "yes"}, follow=True).content.decode()
    admin.post(f"/staff/discounts/{unused.pk}/delete/", {"confirm": "yes"})
    assert list(DiscountCode.objects.values_list("code", flat=True)) == ["USED"]


def test_an_empty_slug_is_made_from_the_title_and_kept_on_edit(admin):
    Event.objects.create(title="Hamlet", slug="hamlet")
    assert admin.post("/staff/events/new/", {"title": "Hamlet", "slug": ""}).status_code == 302
    second = Event.objects.exclude(slug="hamlet").get(title="Hamlet")
    assert second.slug == "hamlet-2"
    admin.post(f"/staff/events/{second.pk}/edit/", {"title": "Hamlet (revival)", "slug": ""})
    second.refresh_from_db()
    assert (second.title, second.slug) == ("Hamlet (revival)", "hamlet-2")


@pytest.mark.parametrize(("source_day", "copy_day"), [
    ("2027-03-19", "2027-03-26"),  # sales opened in PST for a show in PDT (clocks forward on 2027-03-14)
    ("2027-03-12", "2027-03-26"),  # the show itself moves from PST to PDT
    ("2027-11-12", "2027-11-19"),  # sales opened in PDT for a show in PST (clocks back on 2027-11-07)
    ("2027-11-05", "2027-11-12"),  # the show itself moves from PDT to PST
])
def test_copy_across_a_daylight_saving_change_keeps_the_local_wall_clock(make_performance, admin, settings, source_day, copy_day):
    """7:30 pm stays 7:30 pm, sales still open 10:00 am on the Monday of the week before and close at 5:00 pm on the day,
    on the theater's clock, when the copy lands on the other side of a daylight-saving change."""
    settings.TIME_ZONE = "America/Los_Angeles"
    zone = ZoneInfo("America/Los_Angeles")

    def local(day: str, hh_mm: str) -> datetime:
        return datetime.fromisoformat(f"{day}T{hh_mm}").replace(tzinfo=zone)

    def monday_before(day: str) -> str:
        d = date.fromisoformat(day)
        return (d - timedelta(days=d.weekday() + 7)).isoformat()

    perf = make_performance(capacity=40)
    Performance.objects.filter(pk=perf.pk).update(
        starts_at=local(source_day, "19:30"), on_sale_from=local(monday_before(source_day), "10:00"), on_sale_until=local(source_day, "17:00"))
    response = admin.post(f"/staff/performances/{perf.pk}/copy/", {"starts_at": f"{copy_day}T19:30"})
    assert response.status_code == 302
    copy = Performance.objects.exclude(pk=perf.pk).get(event=perf.event)

    def wall(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    assert wall(copy.starts_at) == f"{copy_day} 19:30"
    assert wall(copy.on_sale_from) == f"{monday_before(copy_day)} 10:00"
    assert wall(copy.on_sale_until) == f"{copy_day} 17:00"
