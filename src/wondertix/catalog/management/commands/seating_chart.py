"""Import, export and list seating charts (docs/seating.md).

    wondertix seating_chart import chart.json
    wondertix seating_chart import seats.csv --venue "Main Stage" --name "Proscenium"
    wondertix seating_chart export --venue "Main Stage" --name "Proscenium" [-o chart.json]
    wondertix seating_chart list

A file at fault is refused with the line or field and what is wrong; nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wondertix.catalog import chartfile
from wondertix.catalog.seating_models import SeatingChart


class Command(BaseCommand):
    help = "Import, export and list seating charts (JSON, or CSV of section,row,seat,x,y)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="Import a chart from a .json or .csv file")
        imp.add_argument("file")
        imp.add_argument("--venue", help="The venue (CSV: required; JSON: overrides the file's)")
        imp.add_argument("--name", help="The chart's name (CSV: required; JSON: overrides the file's)")
        exp = sub.add_parser("export", help="Print (or write) a chart as JSON")
        exp.add_argument("--venue", required=True)
        exp.add_argument("--name", required=True)
        exp.add_argument("-o", "--output", help="Write to this file instead of standard output")
        sub.add_parser("list", help="Every chart: venue, name, seats")

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"_{opts['action']}")(opts)

    def _import(self, opts: dict[str, Any]) -> None:
        path = Path(opts["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read it ({exc})") from None
        try:
            if path.suffix.lower() == ".csv":
                if not opts["venue"] or not opts["name"]:
                    raise CommandError("A CSV chart needs --venue and --name.")
                chart = chartfile.parse_csv(text, venue=opts["venue"], name=opts["name"])
            else:
                chart = chartfile.parse_json(text)
                chart = chart.model_copy(update={k: opts[k] for k in ("venue", "name") if opts[k]})
            saved = chartfile.save(chart)
        except chartfile.ChartFileError as exc:
            raise CommandError(f"{path}: {exc} — nothing was imported.") from None
        seats = sum(len(s.seats) for s in chart.sections)
        self.stdout.write(f"Imported chart {saved.pk}: {saved.venue.name} — {saved.name} ({seats} seats, {len(chart.sections)} sections)")

    def _export(self, opts: dict[str, Any]) -> None:
        chart = SeatingChart.objects.filter(venue__name=opts["venue"], name=opts["name"]).select_related("venue").first()
        if chart is None:
            raise CommandError(f"No chart named “{opts['name']}” at “{opts['venue']}”.")
        text = chartfile.dumps(chart)
        if opts["output"]:
            Path(opts["output"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    def _list(self, opts: dict[str, Any]) -> None:
        from django.db.models import Count

        for chart in SeatingChart.objects.select_related("venue").annotate(n=Count("sections__seats")).order_by("venue__name", "name"):
            self.stdout.write(f"{chart.pk}\t{chart.venue.name}\t{chart.name}\t{chart.n} seats")  # type: ignore[attr-defined]
