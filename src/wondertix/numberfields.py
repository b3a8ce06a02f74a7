"""Form fields for whole numbers that go through the one strict parser (wondertix.money).

Django's `IntegerField` reads with `int()`, which takes Arabic-Indic digits and, before
Python's digit limit, thousands of digits; and a number with no upper bound reaches the
database as an overflow (a 500). `WholeNumberField` takes ASCII digits only and never more
than fits an `integer` column. ModelForms get it for every integer model field through
`strict_formfield` (`Meta.formfield_callback = strict_formfield`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.db import models

from wondertix.money import MAX_INT, parse_int

#: Card numbers as typed at the window: ASCII digits, spaces and dashes ("²" is a digit to str.isdigit()).
card_number_characters = RegexValidator(r"^[0-9 -]*\Z", "Enter the card number with the digits 0–9 only.")


class WholeNumberField(forms.IntegerField):
    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        if value in self.empty_values:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            # Bounds come from min_value/max_value (with the field's own messages); the
            # parser only refuses what is not a number at all or could not be stored.
            return parse_int(str(value), minimum=-MAX_INT, maximum=MAX_INT)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


def strict_formfield(db_field: models.Field, **kwargs: Any) -> forms.Field | None:
    """A ModelForm's `formfield_callback`: integer model fields become `WholeNumberField`."""
    if isinstance(db_field, models.IntegerField) and not db_field.choices:
        kwargs.setdefault("form_class", WholeNumberField)
    return db_field.formfield(**kwargs)
