"""Accessibility tags of performances (ASL-interpreted, captioned…): reading, filtering, setting.

The list of tags is ACCESS_TAGS in performance_models; a tag is stored by its code, so adding
one there needs no migration. Pages always show the tag's words (never colour alone).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction

from wondertix.catalog.models import ACCESS_TAGS, Performance, PerformanceTag
from wondertix.ops import audit
from wondertix.ops.audit import Actor
from wondertix.sales import errors


def label(code: str) -> str:
    return ACCESS_TAGS.get(code, code)


def tags_by_performance(performance_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each performance's tag codes, in ACCESS_TAGS order, in one query."""
    ids = set(performance_ids)
    found: dict[int, set[str]] = defaultdict(set)
    if ids:
        for perf_id, tag in PerformanceTag.objects.filter(performance_id__in=ids).values_list("performance_id", "tag"):
            found[perf_id].add(tag)
    order = list(ACCESS_TAGS)
    return {pk: sorted(found.get(pk, set()), key=lambda c: order.index(c) if c in order else len(order)) for pk in ids}


def annotate(performances: Iterable[Performance]) -> None:
    """Give each performance `access` — a list of (code, label) — for templates."""
    perfs = list(performances)
    tags = tags_by_performance(p.pk for p in perfs)
    for p in perfs:
        p.access = [(code, label(code)) for code in tags[p.pk]]  # type: ignore[attr-defined]


def parse_filter(raw: str | None) -> str | None:
    """`?access=asl`: empty means no filter; an unknown code is refused with the known ones."""
    code = (raw or "").strip().lower()
    if not code:
        return None
    if code not in ACCESS_TAGS:
        raise errors.invalid(
            "unknown_access_tag", f"“{code[:40]}” is not an accessibility filter. Use one of: {', '.join(ACCESS_TAGS)}.", field="access"
        )
    return code


def set_tags(perf_id: int, codes: Iterable[str], *, actor: Actor) -> list[str]:
    """Replace a performance's tags with exactly these (all must be known)."""
    wanted = set(codes)
    unknown = wanted - set(ACCESS_TAGS)
    if unknown:
        raise errors.invalid("unknown_access_tag", f"Unknown accessibility tag: {', '.join(sorted(unknown))}.", field="access")
    with transaction.atomic():
        perf = Performance.objects.select_for_update().filter(pk=perf_id).first()
        if perf is None:
            raise errors.not_found("unknown_performance", "That performance does not exist.")
        before = set(PerformanceTag.objects.filter(performance=perf).values_list("tag", flat=True))
        if before != wanted:
            PerformanceTag.objects.filter(performance=perf, tag__in=before - wanted).delete()
            PerformanceTag.objects.bulk_create(PerformanceTag(performance=perf, tag=t) for t in sorted(wanted - before))
            audit.record("performance.access_tags", actor=actor, obj=perf, before={"tags": sorted(before)}, after={"tags": sorted(wanted)})
    return [c for c in ACCESS_TAGS if c in wanted]
