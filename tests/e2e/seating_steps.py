"""Steps shared by the seating journeys: drawing a chart in the seat-map editor (mouse and
keyboard), putting it on sale through the staff pages, and a patron choosing seats on a phone,
paying, and the views that name them."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from django.utils import timezone

from wondertix.catalog.models import Performance
from wondertix.catalog.seating_models import SeatingChart


def sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _centre(page, seat: str) -> tuple[float, float]:
    box = page.locator(f'g.se-seat[data-seat="{seat}"] circle').bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def draw_three_section_chart(page, base_url: str, username: str, password: str, artifacts: Path) -> SeatingChart:
    """Sign in, create "Riverside / Proscenium" and draw it: Orchestra rows A and B (8 seats,
    aisle after seat 4; A1–A2 accessible, B7–B8 restricted view), Balcony A (odd numbers,
    right to left, curved) and Box 1 (3 seats; 2 and 3 house seats); saved with Ctrl+S."""
    page.goto(base_url + "/staff/seating/")
    sign_in(page, username, password)
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
    return chart


def put_chart_on_sale(page, base_url: str, title: str, chart: SeatingChart, prices: dict[str, str], curtain: datetime) -> Performance:
    """Through the staff pages, as the signed-in house manager: a new event, a price type for
    each of the chart's categories (name = category, in dollars), a performance whose Seating
    is the chart, then the event put on sale. Returns the performance."""
    chart_label = f"{chart.venue.name} — {chart.name}"
    page.goto(base_url + "/staff/events/new/")
    page.get_by_label("Title").fill(title)
    page.get_by_role("button", name="Create event").click()
    page.wait_for_url(re.compile(r"/staff/events/\d+/$"))
    event_url = page.url
    for category, dollars in prices.items():
        page.get_by_role("link", name="Add price type").click()
        page.get_by_label("Name:", exact=True).fill(category)
        page.get_by_label("Seats it sells").select_option(label=f"{chart_label} — {category}")
        page.get_by_label("Price:", exact=True).fill(dollars)
        page.get_by_role("button", name="Add price type").click()
        page.wait_for_url(event_url)
    page.get_by_role("link", name="Add performance").click()
    page.get_by_label("Curtain (date and time)").fill(timezone.localtime(curtain).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Seating").select_option(label=chart_label)
    page.get_by_role("button", name="Add performance").click()
    page.wait_for_url(event_url)
    page.get_by_role("button", name="Activate (put on sale)").click()
    page.get_by_text("is now active and on sale").wait_for()
    listing = page.locator("main").inner_text()
    for category in prices:
        assert f"{chart_label} — {category}" in listing  # each price names its seats
    return Performance.objects.get(event__title=title, seating_chart=chart)


def map_index(page, seat_id: int) -> int:
    """The seat's shape on the map is drawn from its checkbox: same position in the list."""
    return page.evaluate(f"Array.from(document.querySelectorAll('input[data-m]')).findIndex(i => i.value === '{seat_id}')")


def tap_seats_into_cart(page, seat_ids: list[int]) -> None:
    """On the performance page (a phone): tap each seat on the map, add them to the cart."""
    for seat_id in seat_ids:
        page.locator(f'.seatmap__svg [data-i="{map_index(page, seat_id)}"]').tap()
    for seat_id in seat_ids:
        assert page.locator(f'input[value="{seat_id}"]').is_checked()  # the list follows the map
    page.get_by_role("button", name="Add chosen seats to cart").click()
    page.wait_for_url("**/cart/")


def pay_with_simulated_card(page, first: str, last: str, email: str) -> None:
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry date").fill("12/30")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile(r"^Pay \$")).click()
    page.wait_for_url("**/orders/*/")


def assert_taken_on_map(page, url: str, seat_ids: list[int]) -> None:
    page.goto(url)
    for seat_id in seat_ids:
        assert page.locator(f'.seatmap__svg [data-i="{map_index(page, seat_id)}"]').get_attribute("class") == "sm-seat sm-s"
        assert page.locator(f'input[value="{seat_id}"]').is_disabled()


def door_list(browser, base_url: str, performance_id: int, username: str, password: str) -> str:
    """The door list of a performance as an usher sees it on a phone."""
    door = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    try:
        door.goto(f"{base_url}/staff/door/{performance_id}/")
        sign_in(door, username, password)
        door.wait_for_url(f"**/staff/door/{performance_id}/")
        return door.locator("main").inner_text()
    finally:
        door.context.close()
