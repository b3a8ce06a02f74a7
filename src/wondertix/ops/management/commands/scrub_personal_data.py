"""`wondertix scrub_personal_data`: replace every personal value in this database.

Run by `wtx db refresh` on a fresh copy of prd, in a staging database no app can reach,
before that copy becomes stg's database. What is scrubbed, and why the list cannot fall
behind the schema: wondertix/ops/scrub.py.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from wondertix.ops import scrub


class Command(BaseCommand):
    help = "Replace every personal value (patrons, buyers, staff, payments, audit) in this database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help="Do not ask for confirmation.")
        parser.add_argument("--check", action="store_true",
                            help="Only check that every text column is classified; change nothing.")

    def handle(self, *args: Any, interactive: bool = True, check: bool = False, **options: Any) -> None:
        if check:
            try:
                scrub.check_covered()
            except scrub.ScrubError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write("every text column is scrubbed, emptied or declared not personal")
            return
        if settings.DATA_IS_REAL:
            raise CommandError("refusing to scrub a database with real data (DATA_IS_REAL is set): "
                               "scrub a copy, as `wtx db refresh` does")
        if interactive:
            answer = input("This replaces every patron's, buyer's and staff member's details in "
                           f"{settings.DATABASES['default'].get('NAME')}. Type 'scrub' to go on: ")
            if answer.strip() != "scrub":
                raise CommandError("not confirmed; nothing changed")
        try:
            with transaction.atomic():
                done = scrub.scrub()
        except scrub.ScrubError as exc:
            raise CommandError(str(exc)) from None
        total = sum(done.values())
        for label, count in done.items():
            self.stdout.write(f"{label}: {count}")
        self.stdout.write(f"scrubbed: {total} row(s) changed or removed")
