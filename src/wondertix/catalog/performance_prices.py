"""Per-performance price overrides: what a price type costs at one performance.

Every place that prices a ticket asks `effective_types` (or `for_performance`) for the price
type *as sold at that performance*: a copy of the PriceType whose price_cents, fee_cents and
limit_per_performance carry the performance's override where one is set. The copies are
never saved; tickets record the price they were sold at, so an override changes future sales
only, as a price type edit does.

Staff set and clear overrides here, one transaction each, audited; bad input raises a
SaleError before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Count

from wondertix.catalog.models import Performance, PerformancePrice, PriceType
from wondertix.ops import audit
from wondertix.ops.audit import Actor
from wondertix.sales import errors
from wondertix.sales.models import Ticket

OVERRIDE_FIELDS = ("price_cents", "fee_cents", "limit_per_performance")
MAX_CENTS = 10_000_000
MAX_LIMIT = 1_000_000


def _apply(pt: PriceType, row: PerformancePrice | None) -> PriceType:
    if row is None:
        return pt
    out = copy.copy(pt)
    for name in OVERRIDE_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(out, name, value)
    return out


def overrides_for(
    pairs: Iterable[tuple[int, int]], performances: dict[int, Performance] | None = None
) -> dict[tuple[int, int], PerformancePrice]:
    """The override rows for these (performance id, price type id) pairs, in one query — none
    when `performances` (already read) says none of them has any."""
    wanted = set(pairs)
    if performances is not None:
        wanted = {pair for pair in wanted if pair[0] not in performances or performances[pair[0]].has_own_prices}
    if not wanted:
        return {}
    rows = PerformancePrice.objects.filter(
        performance_id__in={p for p, _ in wanted}, price_type_id__in={t for _, t in wanted}
    ).order_by()
    return {(r.performance_id, r.price_type_id): r for r in rows if (r.performance_id, r.price_type_id) in wanted}


def effective_types(
    pairs: Iterable[tuple[int, int]], price_types: dict[int, PriceType], performances: dict[int, Performance] | None = None
) -> dict[tuple[int, int], PriceType]:
    """Each (performance, price type) pair's price type as sold at that performance."""
    wanted = set(pairs)
    found = overrides_for(wanted, performances)
    return {pair: _apply(price_types[pair[1]], found.get(pair)) for pair in wanted}


def for_performance(performance: Performance, price_types: Iterable[PriceType]) -> list[PriceType]:
    """A performance's price types with its overrides applied, in the given order."""
    pts = list(price_types)
    found = overrides_for(((performance.pk, pt.pk) for pt in pts), {performance.pk: performance})
    return [_apply(pt, found.get((performance.pk, pt.pk))) for pt in pts]


# ---------------------------------------------------------------------------- staff


def _cents(raw: Any, label: str, field: str, most: int) -> int | None:
    """Empty means "inherit"; otherwise a whole number of cents from 0 to `most`."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise errors.invalid(f"invalid_{field}", f"{label} must be a whole number.", field=field)
    if isinstance(raw, str):
        text = raw.strip()
        if not text.isdigit():
            raise errors.invalid(f"invalid_{field}", f"{label} must be a whole number of {'cents' if most == MAX_CENTS else 'tickets'}, 0 or more (got “{text[:20]}”).", field=field)
        raw = int(text)
    if not isinstance(raw, int) or raw < 0:
        raise errors.invalid(f"invalid_{field}", f"{label} must be 0 or more.", field=field)
    if raw > most:
        raise errors.invalid(f"invalid_{field}", f"{label} can be at most {most}.", field=field)
    return raw


def parse(data: dict[str, Any]) -> dict[str, int | None]:
    unknown = set(data) - set(OVERRIDE_FIELDS)
    if unknown:
        raise errors.invalid("invalid_field", f"These fields cannot be overridden: {', '.join(sorted(unknown))}.")
    return {
        "price_cents": _cents(data.get("price_cents"), "The price (in cents)", "price_cents", MAX_CENTS),
        "fee_cents": _cents(data.get("fee_cents"), "The fee (in cents)", "fee_cents", MAX_CENTS),
        "limit_per_performance": _cents(data.get("limit_per_performance"), "The limit", "limit_per_performance", MAX_LIMIT),
    }


def set_override(perf_id: int, price_type_id: int, data: dict[str, Any], *, actor: Actor) -> PerformancePrice | None:
    """Set (or, with every field empty, clear) one price type's override at one performance."""
    values = parse(data)
    if all(v is None for v in values.values()):
        clear_override(perf_id, price_type_id, actor=actor)
        return None
    with transaction.atomic():
        # The performance row lock is the one every sale of it takes: no sale slips between
        # the limit check and the write.
        perf = Performance.objects.select_for_update().filter(pk=perf_id).first()
        if perf is None:
            raise errors.not_found("unknown_performance", "That performance does not exist.")
        pt = PriceType.objects.filter(pk=price_type_id, event_id=perf.event_id).first()
        if pt is None:
            raise errors.invalid("invalid_price_type", "That price type is not sold for this performance.", field="price_type_id")
        if pt.pay_what_you_can and values["price_cents"] is not None:
            raise errors.invalid(
                "pwyc_price_override",
                f"“{pt.name}” is pay what you can: the buyer chooses the price, so only its fee and limit can be overridden.",
                field="price_cents",
            )
        limit = values["limit_per_performance"]
        if limit is not None:
            sold = Ticket.objects.counted().filter(performance_id=perf.pk, price_type_id=pt.pk).aggregate(n=Count("id"))["n"]
            if limit < sold:
                raise errors.invalid(
                    "limit_below_sold",
                    f"The limit for “{pt.name}” cannot be lower than the {sold} already sold for this performance.",
                    field="limit_per_performance", sold=sold,
                )
        row = PerformancePrice.objects.filter(performance=perf, price_type=pt).first()
        before = {k: getattr(row, k) for k in OVERRIDE_FIELDS} if row else {}
        if row is None:
            row = PerformancePrice(performance=perf, price_type=pt)
        for k, v in values.items():
            setattr(row, k, v)
        row.save()
        if not perf.has_own_prices:
            perf.has_own_prices = True
            perf.save(update_fields=["has_own_prices"])
        audit.record("performance_price.set", actor=actor, obj=perf, before={"price_type": pt.pk, **before},
                     after={"price_type": pt.pk, **values})
    return row


def clear_override(perf_id: int, price_type_id: int, *, actor: Actor) -> bool:
    with transaction.atomic():
        # The performance lock first, as set_override and every sale take it.
        Performance.objects.select_for_update().filter(pk=perf_id).first()
        row = PerformancePrice.objects.select_for_update().filter(performance_id=perf_id, price_type_id=price_type_id).first()
        if row is None:
            return False
        before = {"price_type": price_type_id, **{k: getattr(row, k) for k in OVERRIDE_FIELDS}}
        row.delete()
        if not PerformancePrice.objects.filter(performance_id=perf_id).exists():
            Performance.objects.filter(pk=perf_id).update(has_own_prices=False)
        audit.record("performance_price.cleared", actor=actor, object_type="catalog.performance", object_id=perf_id, before=before)
    return True

