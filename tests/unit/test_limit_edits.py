"""A price type's limit lowered by staff binds sales that had already read the old limit."""

from __future__ import annotations

import pytest

from wondertix.catalog.models import PriceType
from wondertix.sales import inventory
from wondertix.sales.errors import SaleError

pytestmark = pytest.mark.django_db


def test_limit_lowered_after_the_price_types_were_read_still_binds(make_performance):
    from django.utils import timezone

    perf = make_performance(capacity=50, student_limit=10)
    stale = {perf.student.pk: PriceType.objects.get(pk=perf.student.pk)}  # read before the edit
    PriceType.objects.filter(pk=perf.student.pk).update(limit_per_performance=2)
    with pytest.raises(SaleError) as exc:
        inventory.ensure_capacity(
            {perf.pk: perf}, {(perf.pk, perf.student.pk): 3}, stale, now=timezone.now()
        )
    assert exc.value.code == "sold_out"
    assert "only 2" in exc.value.message
