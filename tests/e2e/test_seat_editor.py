"""A house manager draws a 3-section seating chart in the editor, with the mouse and with the
keyboard alone, saves it, and the chart's JSON export has exactly what was drawn."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User
from tests.e2e.seating_steps import draw_three_section_chart

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "chart-drawer-" + "7" * 8


def test_a_three_section_chart_drawn_with_mouse_and_keyboard_exports_what_was_drawn(desktop, live_server, artifacts):
    page = desktop
    drawer = User.objects.create_user("chart-drawer", password=PASSWORD, is_staff=True)
    drawer.groups.add(Group.objects.get(name="admin"))

    chart = draw_three_section_chart(page, live_server.url, "chart-drawer", PASSWORD, artifacts)
    page.screenshot(path=str(artifacts / "seat-editor.png"), full_page=True)

    exported = page.request.get(live_server.url + f"/staff/seating/{chart.pk}/export/")
    assert exported.ok
    doc = json.loads(exported.text())
    assert [(c["name"], c["rank"]) for c in doc["categories"]] == [("Box", 1), ("Orchestra", 2), ("Balcony", 3)]
    assert next(c for c in doc["categories"] if c["name"] == "Balcony")["color"] == "#4a7bd0"
    sections = {s["name"]: s["seats"] for s in doc["sections"]}
    assert list(sections) == ["Orchestra", "Balcony", "Box"]
    orchestra = {(s["row"], s["label"]): s for s in sections["Orchestra"]}
    assert len(orchestra) == 16 and {s["category"] for s in orchestra.values()} == {"Orchestra"}
    assert [orchestra[("A", str(n))]["x"] for n in range(1, 9)] == [0, 1, 2, 3, 6, 7, 8, 9]  # the aisle after seat 4
    assert [orchestra[("B", str(n))]["y"] for n in (1, 8)] == [1, 1]
    assert orchestra[("A", "1")]["flags"] == ["accessible"] and orchestra[("A", "2")]["flags"] == ["accessible"]
    assert orchestra[("B", "7")]["flags"] == ["restricted_view"] and orchestra[("A", "3")]["flags"] == []
    balcony = sorted(sections["Balcony"], key=lambda s: s["x"])
    assert [s["label"] for s in balcony] == ["9", "7", "5", "3", "1"]  # odd numbers, right to left
    assert [s["y"] for s in balcony] == [4, 5, 5, 5, 4]  # the ends curve towards the stage
    box = sorted(sections["Box"], key=lambda s: s["x"])
    assert [(s["label"], s["x"], s["flags"], s["category"]) for s in box] == [
        ("1", 16, [], "Box"), ("2", 17, ["house_seat"], "Box"), ("3", 18, ["house_seat"], "Box"),
    ]
    assert page.problems == []  # type: ignore[attr-defined]
