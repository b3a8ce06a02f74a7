"""Seating charts for tests, as the JSON documents staff import (docs/seating.md)."""

from __future__ import annotations

from typing import Any


def chart_document(
    *, venue: str = "Test Hall", name: str = "Main", sections: list[tuple[str, str, int, int]] | None = None,
    aisle_after: int | None = None, standing: int | None = None, flags: dict[tuple[str, str, str], list[str]] | None = None,
) -> dict[str, Any]:
    """sections: (section name, category, rows, seats per row). Rows are A, B, C… from the
    stage (y grows away from it); seats are numbered 1..n left to right, one x unit apart,
    with an aisle (a 3-unit gap) after seat `aisle_after` when given."""
    sections = sections or [("Orchestra", "Orchestra", 3, 8), ("Balcony", "Balcony", 2, 8)]
    flags = flags or {}
    categories: list[dict[str, Any]] = []
    for _, cat, _, _ in sections:
        if cat not in [c["name"] for c in categories]:
            categories.append({"name": cat, "rank": len(categories) + 1})
    if standing:
        categories.append({"name": "Standing", "rank": len(categories) + 1, "limit_per_performance": standing, "standing": True})
    out_sections = []
    y0 = 0
    for section, cat, rows, per_row in sections:
        seats = []
        for r in range(rows):
            row = chr(ord("A") + r)
            for n in range(1, per_row + 1):
                x = n + (3 if aisle_after and n > aisle_after else 0)
                seats.append({"row": row, "label": str(n), "x": x, "y": y0 + r, "category": cat, "flags": flags.get((section, row, str(n)), [])})
        out_sections.append({"name": section, "seats": seats})
        y0 += rows + 2
    return {"format": "wondertix-seating-chart", "version": 1, "venue": venue, "name": name, "categories": categories, "sections": out_sections}
