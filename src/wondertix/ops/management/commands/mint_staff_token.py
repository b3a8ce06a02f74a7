"""Print a staff API token for a user (scanners, integrations, wtx smoke checks)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from wondertix.ops import audit, tokens


class Command(BaseCommand):
    help = "Mint a staff API token (Authorization: Bearer <token>) for an active staff user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_active=True, is_staff=True).first()
        if user is None:
            raise CommandError(f"No active staff user named {options['username']!r}.")
        audit.record("staff_token.minted", obj=user, actor_label="manage.py")
        self.stdout.write(tokens.mint(user))
