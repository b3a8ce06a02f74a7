"""Seating charts as files: JSON (the full chart, docs/seating.md) and CSV (section,row,seat,x,y).

Import checks the whole file before writing anything; a file at fault is refused with a
`ChartFileError` naming the line (CSV, JSON syntax) or the field path (JSON) and what is
wrong. Export then import gives the identical chart: the same JSON, byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from django.db import transaction
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wondertix.catalog.seating_models import Seat, SeatCategory, SeatingChart, Section, Venue

FORMAT = "wondertix-seating-chart"
VERSION = 1
MAX_SEATS = 20_000
COORD = 1_000_000
Flag = Literal["accessible", "companion", "restricted_view", "house_seat"]
NAME = r"^[^\x00-\x1f]+$"


class ChartFileError(ValueError):
    """A file refused: `where` is "line 7, field x" or "sections[0].seats[3].x"."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CategoryIn(_Strict):
    name: str = Field(..., min_length=1, max_length=80, pattern=NAME)
    rank: int = Field(1, ge=1, le=1000)
    color: str = Field("#4a7bd0", pattern=r"^#[0-9a-fA-F]{6}$")
    limit_per_performance: int | None = Field(None, ge=0, le=1_000_000)
    standing: bool = False


class SeatIn(_Strict):
    row: str = Field(..., min_length=1, max_length=10, pattern=NAME)
    label: str = Field(..., min_length=1, max_length=10, pattern=NAME)
    x: int = Field(..., ge=-COORD, le=COORD)
    y: int = Field(..., ge=-COORD, le=COORD)
    category: str = Field(..., min_length=1, max_length=80)
    flags: list[Flag] = Field(default_factory=list, max_length=4)


class SectionIn(_Strict):
    name: str = Field(..., min_length=1, max_length=80, pattern=NAME)
    seats: list[SeatIn] = Field(default_factory=list, max_length=MAX_SEATS)


class ChartIn(_Strict):
    format: Literal["wondertix-seating-chart"]
    version: Literal[1]
    venue: str = Field(..., min_length=1, max_length=120, pattern=NAME)
    name: str = Field(..., min_length=1, max_length=120, pattern=NAME)
    categories: list[CategoryIn] = Field(..., min_length=1, max_length=100)
    sections: list[SectionIn] = Field(..., max_length=200)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the file)"


def parse_json(text: str) -> ChartIn:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ChartFileError(f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from None
    return validate(data)


def validate(data: Any) -> ChartIn:
    """A chart document already decoded (a file's JSON, or the editor's save): the schema and
    the rules it cannot say, the first fault named by its field path."""
    try:
        chart = ChartIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ChartFileError(_path(tuple(first["loc"])), first["msg"]) from None
    _check(chart)
    return chart


def _check(chart: ChartIn) -> None:
    """What the schema cannot say: names unique, categories known, sizes bounded."""
    names: set[str] = set()
    for i, cat in enumerate(chart.categories):
        if cat.name in names:
            raise ChartFileError(f"categories[{i}].name", f"“{cat.name}” appears twice")
        if cat.standing and cat.limit_per_performance is None:
            raise ChartFileError(f"categories[{i}].limit_per_performance", "a standing category needs its size")
        names.add(cat.name)
    standing = {c.name for c in chart.categories if c.standing}
    sections: set[str] = set()
    total = 0
    for i, section in enumerate(chart.sections):
        if section.name in sections:
            raise ChartFileError(f"sections[{i}].name", f"“{section.name}” appears twice")
        sections.add(section.name)
        labels: set[tuple[str, str]] = set()
        for j, seat in enumerate(section.seats):
            where = f"sections[{i}].seats[{j}]"
            if seat.category not in names:
                raise ChartFileError(f"{where}.category", f"no category named “{seat.category}”")
            if seat.category in standing:
                raise ChartFileError(f"{where}.category", f"“{seat.category}” is a standing area and has no seats")
            if (seat.row, seat.label) in labels:
                raise ChartFileError(f"{where}.label", f"row {seat.row} seat {seat.label} appears twice in “{section.name}”")
            if len(set(seat.flags)) != len(seat.flags):
                raise ChartFileError(f"{where}.flags", "a flag appears twice")
            labels.add((seat.row, seat.label))
        total += len(section.seats)
    if total > MAX_SEATS:
        raise ChartFileError("sections", f"{total} seats: at most {MAX_SEATS} in one chart")


CSV_COLUMNS = ("section", "row", "seat", "x", "y")


def parse_csv(text: str, *, venue: str, name: str) -> ChartIn:
    """section,row,seat,x,y[,category][,flags]: one seat a line after the header. Without a
    category column each section is its own category (ranked in order of appearance); flags
    are separated by `;`."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ChartFileError("line 1", "the file is empty (expected the header section,row,seat,x,y)") from None
    if tuple(header[:5]) != CSV_COLUMNS or not set(header[5:]) <= {"category", "flags"} or len(set(header)) != len(header):
        raise ChartFileError("line 1", f"the header must be {','.join(CSV_COLUMNS)} (then optionally category, flags), not {','.join(header)}")
    sections: dict[str, list[dict[str, Any]]] = {}
    categories: dict[str, None] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ChartFileError(f"line {line}", f"{len(row)} fields, expected {len(header)}")
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        position: dict[str, int] = {}
        for field in ("x", "y"):
            try:
                position[field] = int(cells[field])
            except ValueError:
                raise ChartFileError(f"line {line}, field {field}", f"“{cells[field]}” is not a whole number") from None
        category = cells.get("category") or cells["section"]
        flags = [f.strip() for f in cells.get("flags", "").split(";") if f.strip()]
        seat = {"row": cells["row"], "label": cells["seat"], "x": position["x"], "y": position["y"], "category": category, "flags": flags}
        try:
            SeatIn.model_validate(seat)
            SectionIn.model_validate({"name": cells["section"]})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = {"label": "seat", "name": "section"}.get(str(first["loc"][0]), str(first["loc"][0]))
            raise ChartFileError(f"line {line}, field {field}", first["msg"]) from None
        sections.setdefault(cells["section"], []).append(seat)
        categories.setdefault(category, None)
    data = {
        "format": FORMAT, "version": VERSION, "venue": venue, "name": name,
        "categories": [{"name": c, "rank": i + 1} for i, c in enumerate(categories)] or [{"name": "Seats"}],
        "sections": [{"name": s, "seats": seats} for s, seats in sections.items()],
    }
    try:
        chart = ChartIn.model_validate(data)
        _check(chart)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ChartFileError(_path(tuple(first["loc"])), first["msg"]) from None
    except ChartFileError as exc:
        raise ChartFileError(f"{exc.where} (CSV)", exc.problem) from None
    return chart


def save(chart: ChartIn) -> SeatingChart:
    """Write a checked chart, all or nothing. The venue is found (or created) by name; a
    chart of the same name at that venue is refused."""
    with transaction.atomic():
        venue, _ = Venue.objects.get_or_create(name=chart.venue)
        if SeatingChart.objects.filter(venue=venue, name=chart.name).exists():
            raise ChartFileError("name", f"the venue “{venue.name}” already has a chart named “{chart.name}”")
        saved = SeatingChart.objects.create(venue=venue, name=chart.name)
        cats = SeatCategory.objects.bulk_create(
            SeatCategory(chart=saved, name=c.name, rank=c.rank, color=c.color, limit_per_performance=c.limit_per_performance, standing=c.standing)
            for c in chart.categories
        )
        by_name = {c.name: c for c in cats}
        secs = Section.objects.bulk_create(Section(chart=saved, name=s.name, sort_order=i) for i, s in enumerate(chart.sections))
        Seat.objects.bulk_create(
            (
                Seat(section=sec, row=seat.row, label=seat.label, x=seat.x, y=seat.y, category=by_name[seat.category],
                     **{flag: flag in seat.flags for flag in Seat.FLAGS})
                for sec, section in zip(secs, chart.sections, strict=True)
                for seat in section.seats
            ),
            batch_size=1000,
        )
    return saved


def export(chart: SeatingChart) -> dict[str, Any]:
    """The chart as the JSON document `parse_json` reads (seats by position: y, then x)."""
    categories = list(chart.categories.order_by("rank", "id"))
    names = {c.pk: c.name for c in categories}
    seats: dict[int, list[dict[str, Any]]] = {}
    for seat in Seat.objects.filter(section__chart=chart).order_by("section_id", "y", "x", "row", "label"):
        seats.setdefault(seat.section_id, []).append({
            "row": seat.row, "label": seat.label, "x": seat.x, "y": seat.y, "category": names[seat.category_id],
            "flags": [f for f in Seat.FLAGS if getattr(seat, f)],
        })
    return {
        "format": FORMAT, "version": VERSION, "venue": chart.venue.name, "name": chart.name,
        "categories": [
            {"name": c.name, "rank": c.rank, "color": c.color, "limit_per_performance": c.limit_per_performance, "standing": c.standing}
            for c in categories
        ],
        "sections": [{"name": s.name, "seats": seats.get(s.pk, [])} for s in chart.sections.order_by("sort_order", "id")],
    }


def dumps(chart: SeatingChart) -> str:
    return json.dumps(export(chart), indent=1, ensure_ascii=False) + "\n"
