"""The one strict parser for money and whole numbers (wondertix.money), and the forms using it.

The values are the ones found attacking the storefront: `9e999997` in one 8-character field
froze a worker for tens of seconds, `NaN` and `9e999999` gave 500s, and "²" passed
`str.isdigit()` and then failed in `int()`.
"""

from __future__ import annotations

import re
import time

import pytest

from wondertix.money import (
    MAX_AMOUNT_CENTS,
    MAX_INT,
    parse_amount,
    parse_count,
    parse_id,
    parse_int,
)

HOSTILE = ["9e999997", "9e999999", "1e3", "1E+5", "NaN", "nan", "-NaN", "Infinity", "-inf", "sNaN", "²", "٣", "１２",
           "12.5.1", "1,23", "$", ".", "", "  ", "0x10", "1_000", "12.345", "--5", "+5", "5-", "1 000", "9" * 5000,
           "1" + "0" * 30, "$" * 40, "\x00", "12\n", "1,000,000,000.00"]


@pytest.mark.parametrize(("text", "cents"), [
    ("12", 1200), ("12.5", 1250), ("12.50", 1250), ("$12.50", 1250), (" 7 ", 700), ("0.05", 5), (".5", 50),
    ("12.", 1200), ("1,250", 125_000), ("$1,000,000.00", MAX_AMOUNT_CENTS), ("0", 0), ("007", 700),
])
def test_amounts_as_people_type_them_are_read_exactly(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize(("text", "says"), [
    ("9e999997", "plain digits"), ("9e999999", "plain digits"), ("NaN", "not an amount"), ("Infinity", "not an amount"),
    ("²", "not an amount"), ("٣٤", "not an amount"), ("-5", "cannot be negative"), ("12.345", "two decimal places"),
    ("1,000,000.01", "above $1,000,000.00"), ("9" * 5000, "too long"), ("", "enter an amount"),
])
def test_hostile_amounts_are_refused_with_a_readable_message(text, says):
    with pytest.raises(ValueError) as exc:
        parse_amount(text)
    assert says.lower() in str(exc.value).lower()
    assert len(str(exc.value)) < 120  # a huge input is never echoed back whole


@pytest.mark.parametrize(("text", "value"), [("3", 3), (" 12 ", 12), ("0", 0), (str(MAX_INT), MAX_INT)])
def test_whole_numbers_are_read_exactly(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize(("text", "says"), [
    ("²", "digits 0–9"), ("٣", "digits 0–9"), ("１２", "digits 0–9"), ("9e999997", "digits 0–9"), ("NaN", "digits 0–9"),
    ("1.0", "digits 0–9"), ("+3", "digits 0–9"), ("-3", "cannot be negative"), (str(MAX_INT + 1), "at most"),
    ("9" * 5000, "digits 0–9"), ("", "enter"),
])
def test_hostile_whole_numbers_are_refused_with_a_readable_message(text, says):
    with pytest.raises(ValueError) as exc:
        parse_int(text)
    assert says.lower() in str(exc.value).lower()


def test_signs_bounds_counts_and_ids():
    assert parse_int("-3", minimum=-10) == -3
    with pytest.raises(ValueError, match="at least 1"):
        parse_int("0", minimum=1)
    assert parse_count("") == 0 and parse_count(" 4 ") == 4
    with pytest.raises(ValueError):
        parse_count("²")
    assert parse_id("42") == 42
    assert [parse_id(v) for v in ("0", "-1", "²", "abc", "", None, "9" * 30)] == [None] * 7


def test_every_hostile_value_is_answered_in_microseconds():
    """Figures, not a timed assertion: the parser looks at a bounded number of characters."""
    worst = 0.0
    for text in HOSTILE * 20:
        for parse in (parse_amount, parse_int):
            start = time.perf_counter()
            try:
                parse(text)
            except ValueError:
                pass
            worst = max(worst, time.perf_counter() - start)
    print(f"slowest parse of {len(HOSTILE)} hostile values: {worst * 1e6:.1f} µs")


# ------------------------------------------------------------------ the forms that use it


@pytest.fixture
def donate_form(client, db):
    def build(amount: str) -> dict:
        page = client.get("/donate/").content.decode()
        submission = re.search(r'name="submission" value="([^"]+)"', page).group(1)
        return {"amount": amount, "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.org",
                "card_number": "4242424242424242", "card_expiry": "11/31", "card_cvc": "321", "submission": submission}
    return build


@pytest.mark.parametrize("amount", ["9e999997", "NaN", "9e999999", "²"])
def test_donate_page_refuses_hostile_amounts_with_a_message_and_writes_nothing(client, donate_form, amount):
    from wondertix.sales.models import Order

    response = client.post("/donate/", donate_form(amount))
    assert response.status_code == 422
    assert re.search(r'id="id_amount_error"><li>Gift amount: ', response.content.decode())
    assert Order.objects.count() == 0


@pytest.mark.parametrize("expiry", ["²²/²²", "١٢/٣٠", "1e1/30"])
def test_donate_page_refuses_unicode_digits_in_the_card_expiry(client, donate_form, expiry):
    data = donate_form("50")
    data["card_expiry"] = expiry
    response = client.post("/donate/", data)
    assert response.status_code == 422
    assert "Enter the expiry date as MM/YY" in response.content.decode()


def test_ticket_quantity_in_unicode_digits_is_refused(client, make_performance):
    perf = make_performance(capacity=10)
    response = client.post(f"/performances/{perf.pk}/", {f"qty_{perf.adult.pk}": "٣"})
    assert response.status_code == 422
    assert "digits 0–9" in response.content.decode()
