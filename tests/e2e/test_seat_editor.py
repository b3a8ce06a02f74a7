"""A house manager draws a 3-section seating chart in the editor, with the mouse and with the
keyboard alone, saves it, and the chart's JSON export has exactly what was drawn."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, User

from wondertix.catalog.seating_models import SeatingChart

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "chart-drawer-" + "7" * 8
DESKTOP = {"width": 1400, "height": 1000}


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.problems = problems  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def _centre(page, seat: str) -> tuple[float, float]:
    box = page.locator(f'g.se-seat[data-seat="{seat}"] circle').bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_a_three_section_chart_drawn_with_mouse_and_keyboard_exports_what_was_drawn(desktop, live_server, artifacts):
    page = desktop
    drawer = User.objects.create_user("chart-drawer", password=PASSWORD, is_staff=True)
    drawer.groups.add(Group.objects.get(name="admin"))

    page.goto(live_server.url + "/staff/seating/")
    page.get_by_label("Username").fill("chart-drawer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/staff/seating/")
    page.locator("#new-venue").fill("Riverside")
    page.locator("#new-name").fill("Proscenium")
    page.get_by_role("button", name="Create and edit").click()
    chart = SeatingChart.objects.get(name="Proscenium")
    page.wait_for_url(f"**/staff/seating/{chart.pk}/")

    # Categories: the first renamed by keyboard, two added with the mouse.
    page.get_by_label("Name of category 1").fill("Box")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Add category").click()
    page.get_by_label("Name of category 2").fill("Orchestra")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Add category").click()
    page.get_by_label("Name of category 3").fill("Balcony")
    page.get_by_label("Colour of category 3").fill("#4a7bd0")
    page.get_by_label("Name of category 3").press("Tab")

    # Orchestra rows A and B: 8 seats with an aisle after seat 4; A with the mouse, B by Enter.
    page.get_by_label("Section", exact=True).fill("Orchestra")
    page.get_by_label("Number of seats", exact=True).fill("8")
    page.get_by_label("Aisle after seats").fill("4")
    page.get_by_label("Category", exact=True).first.select_option("Orchestra")
    page.get_by_role("button", name="Add row").click()
    assert page.get_by_label("Row label", exact=True).input_value() == "B"  # the form moves to the next row
    page.get_by_label("Row label", exact=True).press("Enter")
    # Balcony: odd numbers only, right to left, on a curve; all by keyboard.
    page.get_by_label("Section", exact=True).fill("Balcony")
    page.get_by_label("Row label", exact=True).fill("A")
    page.get_by_label("Number of seats", exact=True).fill("5")
    page.get_by_label("Row y").fill("5")
    page.get_by_label("Numbers", exact=True).select_option("2")
    page.get_by_label("Numbering", exact=True).select_option("rtl")
    page.get_by_label("Aisle after seats").fill("")
    page.get_by_label("Curve (units the ends rise)").fill("1")
    page.get_by_label("Category", exact=True).first.select_option("Balcony")
    page.get_by_role("button", name="Add row").focus()
    page.keyboard.press("Enter")
    # Box: three seats off to the side.
    page.get_by_label("Section", exact=True).fill("Box")
    page.get_by_label("Row label", exact=True).fill("1")
    page.get_by_label("Number of seats", exact=True).fill("3")
    page.get_by_label("Numbers", exact=True).select_option("1")
    page.get_by_label("Numbering", exact=True).select_option("ltr")
    page.get_by_label("Curve (units the ends rise)").fill("0")
    page.get_by_label("Left edge x").fill("14")
    page.get_by_label("Row y").fill("0")
    page.get_by_label("Category", exact=True).first.select_option("Box")
    page.get_by_label("Left edge x").press("Enter")
    assert page.locator("#se-count").inner_text() == "24"

    # Mouse: drag a rectangle over Orchestra A1 and A2, mark them accessible.
    (x1, y1), (x2, y2) = _centre(page, "Orchestra/A/1"), _centre(page, "Orchestra/A/2")
    page.mouse.move(x1 - 12, y1 - 12)
    page.mouse.down()
    page.mouse.move(x2 + 12, y2 + 12, steps=4)
    page.mouse.up()
    if page.locator("#se-selected-count").inner_text() != "2":
        page.screenshot(path=str(artifacts / "seat-editor-drag.png"), full_page=True)
    assert page.locator("#se-selected-count").inner_text() == "2", page.locator("#se-status").inner_text()
    page.get_by_label("Accessible").check()
    page.get_by_role("button", name="Set flags").click()
    # Shift+click adds Orchestra B8 to a fresh click on B7; both become restricted view.
    page.locator('g.se-seat[data-seat="Orchestra/B/7"]').click()
    page.locator('g.se-seat[data-seat="Orchestra/B/8"]').click(modifiers=["Shift"])
    assert page.locator("#se-selected-count").inner_text() == "2"
    page.get_by_label("Accessible").uncheck()
    page.get_by_label("Restricted view").check()
    page.get_by_role("button", name="Set flags").click()

    # Keyboard only: from Orchestra B8 the cursor goes right to the box, Escape, R selects
    # the box's row, Shift+Right twice moves it, Space unselects seat 1, then flag house seats.
    seat_map = page.get_by_role("application", name="Seat map")
    seat_map.focus()
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")
    assert page.locator("#se-cursor").inner_text().startswith("Cursor: Box row 1 seat 1")
    page.keyboard.press("r")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Space")
    assert page.locator("#se-selected-count").inner_text() == "2"
    page.get_by_label("Restricted view").focus()
    page.keyboard.press("Space")  # unchecks it
    page.get_by_label("House seat").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Set flags").focus()
    page.keyboard.press("Enter")
    seat_map.focus()
    page.keyboard.press("Control+s")
    page.locator("#se-status").filter(has_text="Saved").wait_for()
    assert "24 seats added" in page.locator("#se-status").inner_text()
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
