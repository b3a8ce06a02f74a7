"""Create (or update) a staff account with a role: `wondertix create_staff USER --role ROLE`.

The password is asked for twice on a terminal, or read from --password / --password-stdin for
scripts. Re-running for an existing user changes the role (and the password when given).
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from wondertix.boxoffice.roles import ROLES, ensure_role_groups
from wondertix.ops import audit


class Command(BaseCommand):
    help = "Create or update a staff account with one role (admin, box_office, usher)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="Avoid on shared machines (shell history); prefer the prompt or --password-stdin.")
        parser.add_argument("--password-stdin", action="store_true", help="Read the password from the first line of stdin.")

    def _password(self, options: dict[str, Any], exists: bool) -> str | None:
        if options["password"] is not None:
            return str(options["password"])
        if options["password_stdin"]:
            return sys.stdin.readline().rstrip("\n")
        if exists and not sys.stdin.isatty():
            return None
        if not sys.stdin.isatty():
            raise CommandError("No password given: use --password, --password-stdin, or run on a terminal.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords do not match.")
        return first

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        role = options["role"]
        if not username:
            raise CommandError("A username is required.")
        existing = User.objects.filter(username=username).first()
        password = self._password(options, existing is not None)
        candidate = existing or User(username=username, email=options["email"])
        if password is not None:
            try:
                validate_password(password, user=candidate)
            except ValidationError as exc:
                raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        ensure_role_groups()
        with transaction.atomic():
            user = existing or User(username=username)
            before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True)) if existing else None
            if options["email"]:
                user.email = options["email"]
            user.is_staff = True
            user.is_active = True
            if password is not None:
                user.set_password(password)
            user.save()
            user.groups.remove(*Group.objects.filter(name__in=ROLES))
            user.groups.add(Group.objects.get(name=role))
            audit.record(
                "staff.updated" if existing else "staff.created",
                actor_label="create_staff command", obj=user,
                before={"roles": before} if existing else None,
                after={"username": username, "roles": [role], "password_changed": password is not None},
            )
        self.stdout.write(f"{'Updated' if existing else 'Created'} staff user {username} with role {role}.")
