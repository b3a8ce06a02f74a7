"""Staff forms: parse and validate input only. Writes go through catalog.staff / boxoffice services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from wondertix.boxoffice.pos import PAYMENT_METHODS
from wondertix.catalog.models import Event, Performance, PriceType, Season, SeasonPrice
from wondertix.catalog.seating_models import SeatCategory, SeatingChart
from wondertix.money import format_cents, parse_amount
from wondertix.numberfields import WholeNumberField, card_number_characters, strict_formfield
from wondertix.reports.services import EARLIEST_DATE, LATEST_DATE
from wondertix.sales.models import DiscountCode

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class MoneyField(forms.Field):
    """Dollars typed by a person ('25', '25.50', '$25') ↔ integer cents."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int):
            return format_cents(value, "").replace(",", "")
        return value

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, int):
            return value
        try:
            return parse_amount(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


def _dt_widget() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT)


class SeasonForm(forms.ModelForm):
    class Meta:
        formfield_callback = strict_formfield
        model = Season
        fields = ["name", "slug", "starts_on", "ends_on", "active"]
        labels = {"slug": "Short name for web addresses", "starts_on": "First day", "ends_on": "Last day",
                  "active": "Active (offered for new events and subscriptions)"}
        widgets = {"starts_on": forms.DateInput(attrs={"type": "date"}), "ends_on": forms.DateInput(attrs={"type": "date"})}


class SeasonPriceForm(forms.ModelForm):
    price_cents = MoneyField(label="Price")
    fee_cents = MoneyField(label="Fee", required=False)

    class Meta:
        formfield_callback = strict_formfield
        model = SeasonPrice
        fields = ["name", "price_cents", "fee_cents", "limit_per_performance", "staff_only", "sort_order"]
        labels = {"name": "Price type name", "limit_per_performance": "Most per performance (empty: no limit)",
                  "staff_only": "Box office only", "sort_order": "Position in lists (lowest first)"}

    def clean_fee_cents(self) -> int:
        return self.cleaned_data.get("fee_cents") or 0


class EventForm(forms.ModelForm):
    class Meta:
        formfield_callback = strict_formfield
        model = Event
        fields = ["title", "slug", "season", "description", "image_url", "image_alt", "duration_minutes"]
        labels = {"slug": "Short name for web addresses", "image_url": "Image (a path under static/ or a web address)",
                  "image_alt": "Image description (alt text)", "duration_minutes": "Running time (minutes)"}
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"slug": "The event's web address (/events/<slug>/). Leave empty to make one from the title.",
                      "image_alt": "What the image shows, read aloud to patrons who cannot see it. Required with an image."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False

    def _get_validation_exclusions(self) -> set[str]:
        excluded = set(super()._get_validation_exclusions())  # type: ignore[misc]
        if not (self.cleaned_data.get("slug") or ""):
            excluded.add("slug")  # filled in (or kept) by the service
        return excluded


class PerformanceForm(forms.ModelForm):
    # Not the model field: the chart is put on by seating.use_chart (capacity follows it, and it
    # is refused once tickets are sold or held), never written by the form.
    seating = forms.ModelChoiceField(
        queryset=SeatingChart.objects.select_related("venue"), required=False, label="Seating",
        empty_label="General admission (no seat map)",
        help_text="A seating chart sells its seats: capacity is then the chart's seats and standing places. "
                  "It cannot change once tickets are sold or held.",
    )
    field_order = ["starts_at", "seating", "capacity", "on_sale_from", "on_sale_until", "note"]

    class Meta:
        formfield_callback = strict_formfield
        model = Performance
        fields = ["starts_at", "capacity", "on_sale_from", "on_sale_until", "note"]
        labels = {"starts_at": "Curtain (date and time)", "capacity": "Seats (capacity)", "on_sale_from": "Online sales open",
                  "on_sale_until": "Online sales close"}
        widgets = {"starts_at": _dt_widget(), "on_sale_from": _dt_widget(), "on_sale_until": _dt_widget()}
        help_texts = {
            "capacity": "General admission only: with a seating chart this is ignored (the chart decides).",
            "on_sale_from": "Empty: on sale now.",
            "on_sale_until": "Online sales close here; empty: at curtain. The box office can sell until 3 hours after.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["capacity"].required = False
        if self.instance.pk is not None:
            self.fields["seating"].initial = self.instance.seating_chart_id

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("seating") is None and data.get("capacity") is None and "capacity" not in self.errors:
            self.add_error("capacity", "Enter the number of places: a general-admission performance needs a capacity.")
        return data

    def chart_id(self) -> int | None:
        chart = self.cleaned_data.get("seating")
        return chart.pk if chart is not None else None

    def _post_clean(self) -> None:
        # Rules (capacity vs sold) are the service's job; only field validation here.
        pass


class CopyPerformanceForm(forms.Form):
    starts_at = forms.DateTimeField(label="New date and time", widget=_dt_widget())


class CancelPerformanceForm(forms.Form):
    reason = forms.CharField(max_length=200, label="Reason (shown in the audit log)")
    method = forms.ChoiceField(label="Pay the buyers back", widget=forms.RadioSelect, initial="original", required=False,
                               choices=[("original", "To the card or cash they paid with"), ("cash", "In cash at the box office")])

    def clean_method(self) -> str:
        return self.cleaned_data.get("method") or "original"


class SeatCategoryField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.chart.venue.name} — {obj.chart.name} — {obj.name}" + (" (standing)" if obj.standing else "")


class PriceTypeForm(forms.ModelForm):
    price_cents = MoneyField(label="Price")
    seat_category = SeatCategoryField(
        queryset=SeatCategory.objects.select_related("chart__venue").order_by("chart__venue__name", "chart__name", "rank", "id"),
        required=False, label="Seats it sells (seat category)", empty_label="Every seat (general admission)",
        help_text="For a performance with a seating chart: this price sells the seats of this category of its chart. "
                  "Empty for general admission.",
    )
    fee_cents = MoneyField(label="Fee", required=False)
    min_price_cents = MoneyField(label="Pay what you can: minimum", required=False)
    max_price_cents = MoneyField(label="Pay what you can: maximum", required=False)

    class Meta:
        formfield_callback = strict_formfield
        model = PriceType
        fields = [
            "name", "description", "seat_category", "price_cents", "fee_cents", "limit_per_performance",
            "pay_what_you_can", "min_price_cents", "max_price_cents", "staff_only", "sort_order",
        ]
        labels = {"limit_per_performance": "Most per performance (empty: no limit)", "pay_what_you_can": "Pay what you can (the buyer chooses the price)",
                  "staff_only": "Box office only", "sort_order": "Position in lists (lowest first)"}
        help_texts = {"price_cents": "A new price applies to future sales only; tickets keep what they were sold at."}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["fee_cents"] = data.get("fee_cents") or 0
        data["min_price_cents"] = data.get("min_price_cents") or 0
        if data.get("max_price_cents") is None:
            data["max_price_cents"] = 100_000
        return data

    def _post_clean(self) -> None:
        pass


class DiscountCodeForm(forms.ModelForm):
    class Meta:
        formfield_callback = strict_formfield
        model = DiscountCode
        fields = ["code", "description", "kind", "value", "usage_limit", "min_tickets", "price_types", "valid_from", "valid_until"]
        labels = {"kind": "Type of discount", "value": "Amount off (cents) or percent off", "usage_limit": "Most orders that may use it",
                  "min_tickets": "Fewest tickets per order", "price_types": "Applies to these price types", "valid_from": "Usable from",
                  "valid_until": "Usable until"}
        widgets = {"valid_from": _dt_widget(), "valid_until": _dt_widget(), "price_types": forms.SelectMultiple(attrs={"size": 6})}
        help_texts = {"value": "Cents off each ticket (amount), or whole percent (percent)."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = PriceType.objects.select_related("event").order_by("event__title", "sort_order")
        self.fields["price_types"].queryset = choices  # type: ignore[attr-defined]

    def _post_clean(self) -> None:
        pass


class HouseSeatsForm(forms.Form):
    price_type = forms.ModelChoiceField(queryset=PriceType.objects.none(), label="Price type")
    quantity = WholeNumberField(min_value=1, max_value=500, label="Seats")
    reason = forms.CharField(max_length=200, label="Reason")

    def __init__(self, *args: Any, performance: Performance, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = performance.event.price_types.filter(active=True)
        self.fields["price_type"].queryset = choices  # type: ignore[attr-defined]


class ReleaseForm(forms.Form):
    reason = forms.CharField(max_length=200)


class PosPaymentForm(forms.Form):
    payment_method = forms.ChoiceField(choices=PAYMENT_METHODS, widget=forms.RadioSelect, initial="cash", label="Payment")
    patron_id = WholeNumberField(required=False, widget=forms.HiddenInput)
    first_name = forms.CharField(max_length=80, required=False)
    last_name = forms.CharField(max_length=80, required=False)
    email = forms.EmailField(required=False, help_text="Empty: a walk-up sale (no contact record).")
    phone = forms.CharField(max_length=40, required=False)
    accommodation = forms.CharField(max_length=200, required=False)
    reason = forms.CharField(max_length=200, required=False, help_text="Required for comps and price overrides.")
    card_number = forms.CharField(max_length=30, required=False, validators=[card_number_characters], label="Card number")
    exp_month = WholeNumberField(required=False, min_value=1, max_value=12, label="Expiry month")
    exp_year = WholeNumberField(required=False, min_value=2000, max_value=2100, label="Expiry year")
    cvc = forms.CharField(max_length=4, required=False, label="Security code (CVC)")
    cash_tendered = MoneyField(required=False, label="Cash handed over", help_text="Cash sales: the change due is shown on the receipt.")
    idempotency_key = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Who")
    action = forms.CharField(required=False, label="Action starts with")
    object_type = forms.CharField(required=False, label="Kind of record (e.g. sales.order)")
    object_id = forms.CharField(required=False, label="Record number")
    # Bounded like report dates: 9999-12-31 plus the day the filter adds would overflow (a 500).
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From",
                                validators=[MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)])
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To",
                              validators=[MinValueValidator(EARLIEST_DATE), MaxValueValidator(LATEST_DATE)])


def changes_from(form: forms.ModelForm, fields: list[str]) -> dict[str, Any]:
    """cleaned_data → the service's field names (foreign keys as <name>_id)."""
    out: dict[str, Any] = {}
    for name in fields:
        value = form.cleaned_data.get(name)
        field = form._meta.model._meta.get_field(name)  # type: ignore[union-attr]
        if field.is_relation and not field.many_to_many:
            out[f"{name}_id"] = value.pk if value is not None else None
        elif not field.many_to_many:
            out[name] = value
    return out
