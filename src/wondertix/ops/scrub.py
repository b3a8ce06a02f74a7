"""Scrubbing personal data out of a copy of production (`wondertix scrub_personal_data`).

stg runs on a copy of prd's database (`wtx db refresh stg --from prd`). Before stg may read
that copy, every value that identifies a person is replaced here: patrons' names, emails,
phones, addresses, notes; buyers' details on orders; payment references; staff accounts'
names, emails and passwords; free-text reasons and comments; the before/after of audit
entries. Sessions and login-attempt logs are emptied.

Every text-like column of every model is classified below: scrubbed (`SCRUB`), emptied
(`EMPTIED`) or declared not personal (`NOT_PERSONAL`). A field in none of them stops the
scrub (and fails tests/unit/test_scrub_personal_data.py), so the list cannot silently fall
behind the schema. Replacement values keep the shape of the data (an empty field stays
empty, every email stays unique) and live at reserved names: `.invalid` never delivers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.migrations.loader import MigrationLoader
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat

RESERVED_DOMAIN = "example.invalid"


@dataclass(frozen=True)
class Ref:
    """A column of the same row inside a replacement (usually its primary key)."""

    field: str


PK = Ref("pk")


@dataclass(frozen=True)
class Text:
    """A non-empty value becomes these parts joined (literals and `Ref`s); empty stays empty.
    Values listed in `keep` are left alone (labels that name no one, such as "public")."""

    parts: tuple[str | Ref, ...]
    keep: frozenset[str] = frozenset()

    def __init__(self, *parts: str | Ref, keep: Iterable[str] = ()) -> None:
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "keep", frozenset(keep))


@dataclass(frozen=True)
class Clear:
    """NULL (nullable fields) or the empty string."""


@dataclass(frozen=True)
class UnusablePassword:
    """A password no one knows and no login accepts (Django's "!" prefix); it also revokes
    every staff API token, which is bound to the password hash (ops/tokens.py)."""


@dataclass(frozen=True)
class ScrubJson:
    """Every string inside becomes "(scrubbed)" unless its key is in `JSON_KEYS_NOT_PERSONAL`;
    numbers, booleans and the structure stay (reports and the audit trail keep their shape)."""


Rule = Text | Clear | UnusablePassword | ScrubJson

SCRUBBED = "(scrubbed)"

SCRUB: dict[str, dict[str, Rule]] = {
    "patrons.patron": {
        "first_name": Text("Patron"),
        "last_name": Text(PK),
        "email": Text("patron-", PK, f"@{RESERVED_DOMAIN}"),
        "phone": Text("555-0100"),
        "address_line1": Text(PK, " Rehearsal Street"),
        "address_line2": Text("Unit ", PK),
        "city": Text("Springfield"),
        "region": Text("OR"),
        "postal_code": Text("97000"),
        "accommodation": Text("(accommodation on file)"),
        "notes": Text("(note removed)"),
    },
    "patrons.donation": {"comment": Text("(comment removed)")},
    "sales.order": {
        "buyer_name": Text("Buyer ", PK),
        "buyer_email": Text("buyer-", PK, f"@{RESERVED_DOMAIN}"),
        "buyer_phone": Text("555-0100"),
        "buyer_accommodation": Text("(accommodation on file)"),
    },
    "sales.hold": {"reason": Text("(reason removed)"), "client_address": Clear()},
    # message: the provider's or a clerk's words; before / pending_state: the state a refused
    # refund or exchange is undone to (statuses and amounts stay, any other string goes).
    "sales.refund": {"reason": Text("(reason removed)"), "message": Text(SCRUBBED), "before": ScrubJson()},
    "sales.exchange": {"reason": Text("(reason removed)"), "message": Text(SCRUBBED), "pending_state": ScrubJson()},
    "payments.payment": {"reference": Text("scrubbed-", PK), "message": Text(SCRUBBED)},
    "payments.webhookevent": {"event_id": Text("evt_scrubbed_", PK)},
    "payments.checkoutsession": {
        "session_id": Text("cs_scrubbed_", PK),
        "url": Text(f"https://payments.{RESERVED_DOMAIN}/checkout/", PK),
        # The prices agreed on the payment page, and a donor's comment with them: amounts and
        # ids stay, every string goes.
        "priced": ScrubJson(),
    },
    "payments.terminalpayment": {"payment_intent": Text("pi_scrubbed_", PK), "message": Text(SCRUBBED)},
    "ops.auditentry": {
        # Labels of system actors name no one; a staff member's becomes their scrubbed username.
        "actor_label": Text("staff-", Ref("actor_id"), keep=("public", "payments", "manage.py", "stripe", "test", "system")),
        "before": ScrubJson(),
        "after": ScrubJson(),
    },
    # The email outbox (where present): a pending row would otherwise mail a prd address.
    "ops.outboxemail": {"recipient": Text("outbox-", PK, f"@{RESERVED_DOMAIN}"), "last_error": Text(SCRUBBED)},
    "auth.user": {
        "username": Text("staff-", PK),
        "first_name": Text("Staff"),
        "last_name": Text(PK),
        "email": Text("staff-", PK, f"@{RESERVED_DOMAIN}"),
        "password": UnusablePassword(),
    },
    "admin.logentry": {"object_repr": Text(SCRUBBED), "change_message": Clear()},
}

# Tables emptied whole: their rows are about people's visits, not the theater's data.
EMPTIED: dict[str, str] = {
    "sessions.session": "signed-in sessions (a prd cookie must not work in stg)",
    "axes.accessattempt": "failed logins: usernames, addresses, browsers",
    "axes.accesslog": "logins: usernames, addresses, browsers",
    "axes.accessfailurelog": "failed logins: usernames, addresses, browsers",
    "storefront.ticketlookup": "Find my tickets requests: address digests, client addresses",
    "storefront.patronsignin": "patron sign-in links: address digests, client addresses (a prd link must not work in stg)",
}

# Text fields that identify no one: the catalog, statuses, codes, random keys.
NOT_PERSONAL: dict[str, set[str]] = {
    "catalog.season": {"name", "slug"},
    "catalog.event": {"title", "slug", "description", "image_url", "image_alt"},
    "catalog.pricetype": {"name", "description"},
    "catalog.performance": {"status", "note"},
    "catalog.seasonprice": {"name"},
    "catalog.performancetag": {"tag"},
    # Reserved seating: the theater's rooms and seat plans.
    "catalog.venue": {"name", "address"},
    "catalog.seatingchart": {"name"},
    "catalog.seatcategory": {"name", "color"},
    "catalog.section": {"name"},
    "catalog.seat": {"row", "label"},
    "patrons.patron": {"country"},
    "patrons.subscriptiontype": {"name", "description"},
    "patrons.subscription": {"status"},
    "patrons.redemption": {"idempotency_key"},
    # Random tokens and codes: bearer references to rows, not to people.
    "sales.hold": {"token", "idempotency_key", "request_fingerprint"},
    "sales.discountcode": {"code", "description", "kind"},
    "sales.order": {"token", "status", "channel", "idempotency_key", "request_fingerprint"},
    "sales.ticket": {"code", "status"},
    "sales.refund": {"idempotency_key", "request_fingerprint", "method", "status"},
    "sales.exchange": {"idempotency_key", "request_fingerprint", "method", "status"},
    "sales.refundsource": {"provider_key"},  # "refund:<idempotency key>:<charge id>"
    "payments.payment": {"kind", "provider", "status"},
    "payments.webhookevent": {"provider", "event_type"},
    "payments.checkoutsession": {"provider", "status"},
    "payments.terminalpayment": {"provider", "reader_id", "status"},  # reader_id: the theater's device
    "ops.auditentry": {"action", "object_type", "object_id", "request_id"},
    "ops.outboxemail": {"kind", "status"},
    "auth.group": {"name"},
    "auth.permission": {"name", "codename"},
    "contenttypes.contenttype": {"app_label", "model"},
    "admin.logentry": {"object_id"},
}

# Keys inside audit before/after whose string values are codes, never a person's words.
JSON_KEYS_NOT_PERSONAL = frozenset({
    "status", "channel", "provider", "kind", "method", "action", "country", "role", "price_type",
    "code", "slug", "title", "starts_at", "created_at", "paid_at",
})

# Tables a database may hold without a model: Django's own bookkeeping.
TABLES_WITHOUT_MODELS = {"django_migrations"}


class ScrubError(Exception):
    """The scrub cannot vouch for this database; nothing is changed."""


def is_text_field(field: models.Field[Any, Any]) -> bool:
    """Columns that can hold a person's words: any string, JSON or address column."""
    return isinstance(field, CharField | models.TextField | models.JSONField
                      | models.GenericIPAddressField | models.BinaryField)


def text_fields(model: type[models.Model]) -> Iterator[models.Field[Any, Any]]:
    for field in model._meta.concrete_fields:
        if is_text_field(field):
            yield field


def unclassified_fields() -> list[str]:
    """"app.model.field" of every text field neither scrubbed, emptied nor declared not personal."""
    missing = []
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        if label in EMPTIED:
            continue
        covered = set(SCRUB.get(label, {})) | NOT_PERSONAL.get(label, set())
        missing += [f"{label}.{f.name}" for f in text_fields(model) if f.name not in covered]
    return missing


def stale_entries() -> list[str]:
    """Classified fields that no longer exist (a renamed field must be classified again)."""
    stale = []
    for table in (SCRUB, NOT_PERSONAL):
        for label, names in table.items():
            try:
                model = apps.get_model(label)
            except LookupError:
                continue  # an optional app (absent here) keeps its classification
            known = {f.name for f in model._meta.concrete_fields}
            stale += [f"{label}.{n}" for n in names if n not in known]
    return stale


def unknown_to_this_release() -> list[str]:
    """What the database holds that these models do not describe, so cannot vouch for:
    migrations this release does not have, tables without a model, text columns without a field."""
    problems = []
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    unknown = sorted(set(loader.applied_migrations) - set(loader.disk_migrations))
    problems += [f"migration {app}.{name} (the database is newer than this release)" for app, name in unknown]
    by_table = {m._meta.db_table: m for m in apps.get_models(include_auto_created=True)}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in TABLES_WITHOUT_MODELS:
                continue
            model = by_table.get(table)
            columns = connection.introspection.get_table_description(cursor, table)
            known = {f.column for f in model._meta.concrete_fields} if model else set()
            for col in columns:
                if col.name not in known and _is_text_column(col.type_code):
                    problems.append(f"column {table}.{col.name} (no model field describes it)")
    return problems


def _is_text_column(type_code: Any) -> bool:
    if connection.vendor == "postgresql":
        # text, varchar, bpchar, json, jsonb, inet, bytea, xml (pg_type oids)
        return type_code in {25, 1043, 1042, 114, 3802, 869, 17, 142}
    return True  # SQLite reports declared types loosely: treat every unknown column as text


def check_covered() -> None:
    problems = [f"field {f} is neither scrubbed nor declared not personal (wondertix/ops/scrub.py)"
                for f in unclassified_fields()]
    problems += unknown_to_this_release()
    if problems:
        raise ScrubError("refusing to scrub: " + "; ".join(problems))


def _expression(field: models.Field[Any, Any], rule: Text) -> Any:
    parts = [Value(p) if isinstance(p, str) else Cast(F(p.field), output_field=models.TextField()) for p in rule.parts]
    replacement = parts[0] if len(parts) == 1 else Concat(*parts, output_field=models.TextField())
    keep = Q(**{f"{field.name}__isnull": True}) | Q(**{field.name: ""})
    if rule.keep:
        keep |= Q(**{f"{field.name}__in": sorted(rule.keep)})
    return models.Case(models.When(keep, then=F(field.name)), default=replacement, output_field=field)


def scrub_json(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: scrub_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, key) for v in value]
    if isinstance(value, str) and key not in JSON_KEYS_NOT_PERSONAL:
        return SCRUBBED
    return value


def _scrub_json_fields(model: type[models.Model], names: list[str], batch: int = 1000) -> int:
    changed = 0
    pending: list[models.Model] = []
    for obj in model._default_manager.only("pk", *names).iterator(chunk_size=batch):
        new = {n: scrub_json(getattr(obj, n)) for n in names}
        if any(new[n] != getattr(obj, n) for n in names):
            for n, v in new.items():
                setattr(obj, n, v)
            pending.append(obj)
        if len(pending) >= batch:
            model._default_manager.bulk_update(pending, names)
            changed += len(pending)
            pending = []
    if pending:
        model._default_manager.bulk_update(pending, names)
        changed += len(pending)
    return changed


def scrub() -> dict[str, int]:
    """Scrub the default database in place (one transaction); rows changed or deleted per model."""
    check_covered()
    done: dict[str, int] = {}
    for label in EMPTIED:
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        done[label] = model._default_manager.all()._raw_delete(connection.alias)
    password_secret = secrets.token_urlsafe(30)
    for label, rules in SCRUB.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        updates: dict[str, Any] = {}
        json_fields = []
        for name, rule in rules.items():
            field = model._meta.get_field(name)
            if isinstance(rule, Text):
                updates[name] = _expression(field, rule)
            elif isinstance(rule, Clear):
                updates[name] = None if field.null else ""
            elif isinstance(rule, UnusablePassword):
                updates[name] = Concat(Value(f"!{password_secret}-"), Cast(F("pk"), output_field=models.TextField()),
                                       output_field=models.TextField())
            else:
                json_fields.append(name)
        count = model._default_manager.update(**updates) if updates else 0
        if json_fields:
            count = max(count, _scrub_json_fields(model, json_fields))
        done[label] = count
    return done
