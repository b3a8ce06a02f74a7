"""Accessibility tags on performances and alt text on event images, as a patron and staff see them."""

from __future__ import annotations

import re

import pytest

from wondertix.catalog import access
from wondertix.catalog.models import Event, Performance, PerformanceTag
from wondertix.ops.models import AuditEntry
from wondertix.sales import ticket_files
from wondertix.sales.errors import SaleError
from wondertix.sales.services import CheckoutDetails, LineRequest, sell

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def asl_night(make_performance, admin_user):
    """Two shows; one performance of the second is ASL-interpreted and captioned."""
    plain = make_performance()
    other = make_performance()
    tagged = Performance.objects.create(event=other.event, starts_at=other.starts_at, capacity=10)
    access.set_tags(tagged.pk, ["captioned", "asl"], actor=admin_user)
    return plain, other, tagged


# ---------------------------------------------------------------------------- tags


def test_staff_tick_tags_on_the_performance_page_and_it_is_audited(make_performance, admin):
    perf = make_performance()
    page = admin.get(f"/staff/performances/{perf.pk}/prices/")
    assert "ASL-interpreted" in page.content.decode() and "Audio-described" in page.content.decode()
    response = admin.post(f"/staff/performances/{perf.pk}/access/", {"access-tags": ["asl", "relaxed"]})
    assert response.status_code == 302
    assert sorted(PerformanceTag.objects.filter(performance=perf).values_list("tag", flat=True)) == ["asl", "relaxed"]
    entry = AuditEntry.objects.get(action="performance.access_tags")
    assert entry.after == {"tags": ["asl", "relaxed"]} and entry.before == {"tags": []}
    # Unticking all removes them.
    admin.post(f"/staff/performances/{perf.pk}/access/", {})
    assert not PerformanceTag.objects.exists()


def test_an_unknown_tag_is_refused_and_nothing_changes(make_performance, admin, admin_user):
    perf = make_performance()
    access.set_tags(perf.pk, ["asl"], actor=admin_user)
    response = admin.post(f"/staff/performances/{perf.pk}/access/", {"access-tags": ["asl", "sign-dance"]})
    assert response.status_code == 422 and "not one of the available choices" in response.content.decode()
    with pytest.raises(SaleError) as refused:
        access.set_tags(perf.pk, ["asl", "sign-dance"], actor=admin_user)
    assert refused.value.code == "unknown_access_tag"
    assert list(PerformanceTag.objects.values_list("tag", flat=True)) == ["asl"]


def test_storefront_shows_tags_in_words_on_event_and_performance_pages(client, asl_night):
    _, other, tagged = asl_night
    event_page = text_of(client.get(f"/events/{other.event.slug}/"))
    assert event_page.count("ASL-interpreted") == 1 and event_page.count("Captioned") == 1
    perf_page = text_of(client.get(f"/performances/{tagged.pk}/"))
    assert "ASL-interpreted" in perf_page and "Captioned" in perf_page
    assert "ASL-interpreted" not in text_of(client.get(f"/performances/{other.pk}/"))


def test_storefront_listing_filters_by_access(client, asl_night):
    plain, other, tagged = asl_night
    everything = client.get("/").content.decode()
    assert f"/performances/{plain.pk}/" in everything and f"/performances/{other.pk}/" in everything
    asl = client.get("/?access=asl")
    html = asl.content.decode()
    assert asl.status_code == 200
    assert f"/performances/{tagged.pk}/" in html
    assert f"/performances/{plain.pk}/" not in html and f"/performances/{other.pk}/" not in html
    assert "Showing ASL-interpreted performances only" in text_of(asl)
    none = client.get("/?access=relaxed")
    assert none.status_code == 200 and "No upcoming performance is Relaxed performance yet" in text_of(none)
    unknown = client.get("/?access=loud")
    assert unknown.status_code == 400 and "is not an accessibility filter" in text_of(unknown)


def test_api_gives_tags_and_filters_by_them(client, asl_night):
    plain, other, tagged = asl_night
    perf = client.get(f"/api/v1/performances/{tagged.pk}").json()
    assert perf["access"] == [{"code": "asl", "label": "ASL-interpreted"}, {"code": "captioned", "label": "Captioned"}]
    assert [p["id"] for p in client.get("/api/v1/performances?access=asl").json()] == [tagged.pk]
    events = client.get("/api/v1/events?access=captioned").json()
    assert [e["slug"] for e in events] == [other.event.slug]
    assert [p["id"] for p in events[0]["performances"]] == [tagged.pk]
    for path in ("/api/v1/performances?access=loud", "/api/v1/events?access=loud"):
        refused = client.get(path)
        assert refused.status_code == 422 and refused.json()["code"] == "unknown_access_tag"


def test_ticket_pdf_faces_carry_the_performance_accessibility(asl_night, buyer, good_card):
    _, _, tagged = asl_night
    order = sell([LineRequest(tagged.pk, tagged.event.price_types.get(name="Adult").pk, 1)], CheckoutDetails(buyer=buyer, payment=good_card))
    [face] = ticket_files.faces(order, list(order.tickets.select_related("performance__event", "price_type")))
    assert face.accessibility[:2] == ["Accessibility: ASL-interpreted", "Accessibility: Captioned"]


# ---------------------------------------------------------------------------- alt text


def _event_form(**overrides):
    data = {"title": "Hamlet", "slug": "", "description": "", "image_url": "", "image_alt": "", "duration_minutes": ""}
    data.update(overrides)
    return data


def test_an_event_image_needs_alt_text(admin):
    refused = admin.post("/staff/events/new/", _event_form(image_url="storefront/img/tempest.svg"))
    assert refused.status_code == 422
    assert "Describe the image for patrons who cannot see it" in refused.content.decode()
    assert not Event.objects.exists()
    assert admin.post("/staff/events/new/", _event_form()).status_code == 302  # no image, no alt text needed
    made = admin.post("/staff/events/new/", _event_form(title="Lear", image_url="storefront/img/tempest.svg", image_alt="A king in a storm"))
    assert made.status_code == 302
    assert Event.objects.get(title="Lear").image_alt == "A king in a storm"


def test_editing_in_an_image_without_alt_text_is_refused(make_performance, admin):
    perf = make_performance()
    response = admin.post(f"/staff/events/{perf.event.pk}/edit/", _event_form(title=perf.event.title, slug=perf.event.slug, image_url="x.svg"))
    assert response.status_code == 422 and "Describe the image for patrons who cannot see it" in response.content.decode()
    perf.event.refresh_from_db()
    assert perf.event.image_url == ""


def test_storefront_and_api_give_the_alt_text(client, make_performance):
    perf = make_performance()
    Event.objects.filter(pk=perf.event.pk).update(image_url="storefront/img/tempest.svg", image_alt="A ship in a storm")
    assert 'alt="A ship in a storm"' in client.get(f"/events/{perf.event.slug}/").content.decode()
    assert client.get(f"/api/v1/events/{perf.event.slug}").json()["image_alt"] == "A ship in a storm"
