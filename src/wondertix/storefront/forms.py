"""Storefront forms: they parse and check what a patron typed, nothing more.

Every business rule (capacity, prices, discount codes, the charge) stays in the services;
a form only turns text into the typed values a service takes, and says what is malformed
before a service is called (so, for example, a mistyped card number never releases seats).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from wondertix.catalog.models import PriceType
from wondertix.money import format_cents, parse_amount, parse_int
from wondertix.numberfields import WholeNumberField
from wondertix.payments.providers.base import PaymentDetails
from wondertix.payments.providers.test import luhn_ok, normalize_card
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest

MAX_DONATION_CENTS = 10_000_000


def _amount(text: str, *, label: str) -> int:
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise forms.ValidationError(f"{label}: {exc}") from None


class AmountField(forms.CharField):
    """Dollars as typed ("25", "25.50", "$25") → integer cents. Empty → None."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 12)
        super().__init__(*args, **kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off", "class": "amount"})

    def clean(self, value: Any) -> int | None:  # type: ignore[override]
        text = super().clean(value)  # required and length checks on the text as typed
        if not text:
            return None
        return _amount(text, label=str(self.label or "Amount"))


# ------------------------------------------------------------------ choosing tickets


class TicketSelectionForm(forms.Form):
    """One quantity field per price type (`qty_<id>`), plus an amount for pay-what-you-can."""

    def __init__(self, *args: Any, price_types: list[PriceType], limits: dict[int, int], performance_id: int, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.price_types = price_types
        self.performance_id = performance_id
        #: Whether the patron may choose tickets here at all (set by the view).
        self.editable = True
        for pt in price_types:
            most = max(0, limits.get(pt.pk, 0))
            field = WholeNumberField(
                label=pt.name, min_value=0, max_value=most, required=False, initial=0,
                error_messages={
                    "max_value": f"Only {most} “{pt.name}” ticket{'s' if most != 1 else ''} can be chosen.",
                    "min_value": "The quantity cannot be negative.",
                    "invalid": "Enter a whole number of tickets.",
                },
            )
            field.widget.attrs.update({"inputmode": "numeric", "class": "qty", "data-max": str(most)})
            if most == 0:
                field.disabled = True
            self.fields[f"qty_{pt.pk}"] = field
            if pt.pay_what_you_can:
                amount = AmountField(
                    label=f"Your price per “{pt.name}” ticket", required=False,
                    help_text=f"Any amount from {format_cents(pt.min_price_cents)} to {format_cents(pt.max_price_cents)}.",
                )
                amount.widget.attrs["placeholder"] = format_cents(pt.min_price_cents, "")
                self.fields[f"amount_{pt.pk}"] = amount

    def rows(self) -> list[dict[str, Any]]:
        """Each price type with its bound fields, for the template."""
        return [
            {
                "price_type": pt,
                "qty": self[f"qty_{pt.pk}"],
                "amount": self[f"amount_{pt.pk}"] if pt.pay_what_you_can else None,
            }
            for pt in self.price_types
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        total = 0
        for pt in self.price_types:
            qty = data.get(f"qty_{pt.pk}") or 0
            total += qty
            if pt.pay_what_you_can and qty:
                cents = data.get(f"amount_{pt.pk}")
                if cents is None:
                    self.add_error(f"amount_{pt.pk}", f"Please enter what you would like to pay (at least {format_cents(pt.min_price_cents)}).")
                elif not pt.min_price_cents <= cents <= pt.max_price_cents:
                    self.add_error(
                        f"amount_{pt.pk}",
                        f"Please enter an amount from {format_cents(pt.min_price_cents)} to {format_cents(pt.max_price_cents)}.",
                    )
        if total == 0 and not self.errors:
            raise forms.ValidationError("Choose at least one ticket.", code="invalid_quantity")
        return data

    def lines(self) -> list[LineRequest]:
        out = []
        for pt in self.price_types:
            qty = self.cleaned_data.get(f"qty_{pt.pk}") or 0
            if qty:
                price = self.cleaned_data.get(f"amount_{pt.pk}") if pt.pay_what_you_can else None
                out.append(LineRequest(self.performance_id, pt.pk, qty, price))
        return out


# ------------------------------------------------------------------ contact and card


class ContactFields(forms.Form):
    first_name = forms.CharField(label="First name", max_length=80)
    last_name = forms.CharField(label="Last name", max_length=80)
    email = forms.EmailField(
        label="Email", max_length=254, help_text="Your tickets are sent here.",
        error_messages={"invalid": "Please enter a valid email address, like name@example.com."},
    )
    phone = forms.CharField(label="Phone", max_length=40, required=False, help_text="Optional. Only used if a performance changes.")
    address_line1 = forms.CharField(label="Street address", max_length=200, required=False)
    address_line2 = forms.CharField(label="Apartment, suite, etc.", max_length=200, required=False)
    city = forms.CharField(label="City", max_length=100, required=False)
    region = forms.CharField(label="State / region", max_length=100, required=False)
    postal_code = forms.CharField(label="ZIP / postal code", max_length=20, required=False)

    AUTOCOMPLETE = {
        "first_name": "given-name", "last_name": "family-name", "email": "email", "phone": "tel",
        "address_line1": "address-line1", "address_line2": "address-line2", "city": "address-level2",
        "region": "address-level1", "postal_code": "postal-code",
    }

    REQUIRED = {
        "first_name": "Please enter your first name.",
        "last_name": "Please enter your last name.",
        "email": "Please enter your email address.",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for name, message in self.REQUIRED.items():
            self.fields[name].error_messages["required"] = message
        for name, token in self.AUTOCOMPLETE.items():
            if name in self.fields:
                self.fields[name].widget.attrs["autocomplete"] = token
        if "phone" in self.fields:
            self.fields["phone"].widget.input_type = "tel"  # type: ignore[attr-defined]
            self.fields["phone"].widget.attrs["inputmode"] = "tel"

    def clean_phone(self) -> str:
        phone = self.cleaned_data.get("phone", "").strip()
        if phone and sum(ch.isdigit() for ch in phone) < 7:
            raise forms.ValidationError("Please enter a phone number with at least 7 digits.")
        return phone

    def buyer(self) -> Buyer:
        d = self.cleaned_data
        return Buyer(
            first_name=d["first_name"], last_name=d["last_name"], email=d["email"], phone=d.get("phone", ""),
            address_line1=d.get("address_line1", ""), address_line2=d.get("address_line2", ""),
            city=d.get("city", ""), region=d.get("region", ""), postal_code=d.get("postal_code", ""),
            accommodation=d.get("accommodation", ""), newsletter=bool(d.get("newsletter")),
        )


class CardFields(forms.Form):
    """Card fields for the in-process `test` provider. Never stored, never logged."""

    card_number = forms.CharField(label="Card number", max_length=23, required=False)
    card_expiry = forms.CharField(label="Expiry date", max_length=7, required=False)
    card_cvc = forms.CharField(label="CVC", max_length=4, required=False)

    #: Set by the view: False when nothing will be charged (free tickets, no donation).
    card_required = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        w = self.fields["card_number"].widget.attrs
        w.update({"autocomplete": "cc-number", "inputmode": "numeric", "placeholder": "1234 1234 1234 1234", "spellcheck": "false"})
        self.fields["card_expiry"].widget.attrs.update({"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "MM/YY"})
        self.fields["card_cvc"].widget.attrs.update({"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"})

    def _card_needed(self) -> bool:
        return self.card_required

    def clean_card_number(self) -> str:
        raw = self.cleaned_data.get("card_number", "")
        if not self._card_needed():
            return ""
        if not raw.isascii():  # "²" is a digit to str.isdigit() but not to int()
            raise forms.ValidationError("That card number is not valid. Please check it and try again.")
        number = normalize_card(raw)
        if not number:
            raise forms.ValidationError("Please enter your card number.")
        if not luhn_ok(number):
            raise forms.ValidationError("That card number is not valid. Please check it and try again.")
        return number

    def clean_card_expiry(self) -> tuple[int, int] | None:
        raw = (self.cleaned_data.get("card_expiry") or "").replace(" ", "")
        if not self._card_needed():
            return None
        if not raw:
            raise forms.ValidationError("Please enter the card's expiry date.")
        month_text, sep, year_text = raw.partition("/")
        try:
            if not sep or len(year_text) not in (2, 4):
                raise ValueError
            month, year = parse_int(month_text, maximum=99), parse_int(year_text, maximum=9999)
        except ValueError:
            raise forms.ValidationError("Enter the expiry date as MM/YY, for example 08/29.") from None
        year = year + 2000 if year < 100 else year
        if not 1 <= month <= 12:
            raise forms.ValidationError("The expiry month must be from 01 to 12.")
        today = date.today()
        if (year, month) < (today.year, today.month):
            raise forms.ValidationError("This card has expired.")
        return month, year

    def clean_card_cvc(self) -> str:
        cvc = (self.cleaned_data.get("card_cvc") or "").strip()
        if not self._card_needed():
            return ""
        if not cvc.isascii() or not cvc.isdigit() or len(cvc) not in (3, 4):
            raise forms.ValidationError("The security code is the 3 or 4 digits on your card.")
        return cvc

    def payment(self) -> PaymentDetails:
        expiry = self.cleaned_data.get("card_expiry")
        return PaymentDetails(
            card_number=self.cleaned_data.get("card_number", ""),
            exp_month=expiry[0] if expiry else None,
            exp_year=expiry[1] if expiry else None,
            cvc=self.cleaned_data.get("card_cvc", ""),
        )


class CheckoutForm(ContactFields, CardFields):
    accommodation = forms.CharField(
        label="Seating accommodation", max_length=200, required=False,
        help_text="Optional. For example: wheelchair space, aisle seat, hearing loop.",
    )
    newsletter = forms.BooleanField(label="Send me news about upcoming shows", required=False)
    donation_amount = AmountField(label="Add a donation", required=False, help_text="Optional. Any amount helps keep tickets affordable.")
    donation_anonymous = forms.BooleanField(label="Keep my gift anonymous", required=False)
    donation_comment = forms.CharField(label="Comment with your gift", max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    discount_code = forms.CharField(label="Discount code", max_length=40, required=False, help_text="Optional.")

    #: Fields kept in the session after a declined card so the patron does not retype them.
    REMEMBERED = (
        "first_name", "last_name", "email", "phone", "address_line1", "address_line2", "city", "region",
        "postal_code", "accommodation", "newsletter", "donation_amount", "donation_anonymous",
        "donation_comment", "discount_code",
    )

    field_order = [
        "first_name", "last_name", "email", "phone", "address_line1", "address_line2", "city", "region",
        "postal_code", "accommodation", "newsletter", "donation_amount", "donation_anonymous",
        "donation_comment", "discount_code", "card_number", "card_expiry", "card_cvc",
    ]

    CARD_FIELDS = ("card_number", "card_expiry", "card_cvc")

    def __init__(self, *args: Any, cart_total_cents: int = 0, card_fields: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cart_total_cents = cart_total_cents
        self.card_fields = card_fields
        # The card is checked only once the amount to charge is known (check_card), after
        # the discount code and the donation are priced: a code that makes the order free
        # needs no card.
        self.card_required = False
        self.fields["discount_code"].widget.attrs.update({"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})
        if not card_fields:
            for name in ("card_number", "card_expiry", "card_cvc"):
                del self.fields[name]
        if cart_total_cents == 0:
            # Free tickets skip payment entirely; a gift can be made on the donation page.
            for name in ("donation_amount", "donation_anonymous", "donation_comment"):
                del self.fields[name]

    def _card_needed(self) -> bool:
        return self.card_fields and self.card_required

    def check_card(self, charge_cents: int) -> bool:
        """Check the card fields for a charge of `charge_cents`, after is_valid().

        Nothing to check when nothing will be charged. Returns False when a card field is
        wrong; its message is then on the field, as for any other field.
        """
        self.card_required = self.card_fields and charge_cents > 0
        if not self.card_required:
            return True
        cleaned = self.cleaned_data
        for name in self.CARD_FIELDS:
            field = self.fields[name]
            try:
                cleaned[name] = field.clean(field.widget.value_from_datadict(self.data, self.files, self.add_prefix(name)))
                cleaned[name] = getattr(self, f"clean_{name}")()
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        return not any(name in self.errors for name in self.CARD_FIELDS)

    def clean_donation_amount(self) -> int:
        cents = self.cleaned_data.get("donation_amount") or 0
        if cents > MAX_DONATION_CENTS:
            raise forms.ValidationError("For gifts this large, please contact the box office.")
        return cents

    def clean_discount_code(self) -> str:
        return (self.cleaned_data.get("discount_code") or "").strip().upper()

    def details(self) -> CheckoutDetails:
        d = self.cleaned_data
        return CheckoutDetails(
            buyer=self.buyer(),
            donation_cents=d.get("donation_amount") or 0,
            donation_anonymous=bool(d.get("donation_anonymous")),
            donation_comment=d.get("donation_comment", ""),
            discount_code=d.get("discount_code", ""),
            payment=self.payment() if self._card_needed() else PaymentDetails(),
        )

    def remembered(self) -> dict[str, Any]:
        """What the patron typed (never card data), to pre-fill the form after a retry."""
        return {name: self.data.get(name, "") for name in self.REMEMBERED if name in self.fields}


class DonationForm(ContactFields, CardFields):
    amount = AmountField(label="Gift amount", help_text="In dollars, for example 50.")
    anonymous = forms.BooleanField(label="Keep my gift anonymous", required=False)
    comment = forms.CharField(label="Comment (optional)", max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    newsletter = forms.BooleanField(label="Send me news about upcoming shows", required=False)
    # A one-time key rendered into the page: submitting twice gives one gift.
    submission = forms.CharField(widget=forms.HiddenInput, max_length=64)

    field_order = [
        "amount", "anonymous", "comment", "first_name", "last_name", "email", "phone", "address_line1",
        "address_line2", "city", "region", "postal_code", "newsletter", "card_number", "card_expiry",
        "card_cvc", "submission",
    ]

    PRESETS = (2500, 5000, 10000, 25000)

    def __init__(self, *args: Any, card_fields: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.card_required = card_fields
        self.fields["email"].help_text = "Your receipt is sent here."
        self.fields["phone"].help_text = "Optional."
        if not card_fields:
            for name in ("card_number", "card_expiry", "card_cvc"):
                del self.fields[name]

    def clean_amount(self) -> int:
        cents = self.cleaned_data.get("amount")
        if not cents:
            raise forms.ValidationError("Please enter the amount of your gift.")
        if cents < 100:
            raise forms.ValidationError("The smallest gift we can take online is $1.00.")
        if cents > MAX_DONATION_CENTS:
            raise forms.ValidationError("For gifts this large, please contact the box office.")
        return cents

    def clean_submission(self) -> str:
        value = self.cleaned_data.get("submission", "")
        if not value.replace("-", "").replace("_", "").isalnum():
            raise forms.ValidationError("Please reload the page and try again.")
        return value
