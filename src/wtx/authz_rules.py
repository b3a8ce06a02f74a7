"""Who may open what: the authorization matrix's rules, declared once.

Two checks read them: the unit-level matrix (tests/unit/test_authz_matrix.py: every staff URL
of the app's URL resolver and every staff API operation of its OpenAPI document, requested
through Django's test client as every role) and stg's `security` gate (wtx.gate_authz: the
same URLs and operations requested against the live environment anonymously and as a
box-office clerk). A staff page or operation without a rule here fails both: a page added
later is covered, or refused until its allowed roles are declared.

Plain data and route strings (wtx never imports Django): routes are the resolver's patterns
without the leading slash (`staff/events/<int:event_id>/`), API paths the OpenAPI document's
(`/api/v1/staff/door/{performance_id}`).
"""

from __future__ import annotations

import re

ANON, PATRON, USHER, BOX, ADMIN = "anonymous", "patron", "usher", "box_office", "admin"
EVERYONE = (ANON, PATRON, USHER, BOX, ADMIN)
DOOR = frozenset({USHER, BOX, ADMIN})
SELLERS = frozenset({BOX, ADMIN})
ADMINS = frozenset({ADMIN})

# Who may use each box-office page (by URL name). Back-office areas follow the roles:
# box office and admins handle refunds, exchanges, contacts and reports.
PAGE_RULES: dict[str, frozenset[str]] = {
    "dashboard": DOOR,
    "door": DOOR, "door-list": DOOR, "door-print": DOOR, "door-csv": DOOR, "door-checkin": DOOR,
    "door-undo": DOOR, "door-admit": DOOR,
    "pos": SELLERS, "pos-sell": SELLERS, "pos-hold": SELLERS, "pos-release": SELLERS, "pos-order": SELLERS,
    "pos-card": SELLERS, "pos-card-action": SELLERS,
    "audit": ADMINS,
}
CATALOG_PREFIXES = ("staff/events/", "staff/performances/", "staff/price-types/", "staff/seasons/",
                    "staff/season-prices/", "staff/discounts/", "staff/seating/")
BACK_OFFICE_PREFIXES = ("staff/sales/", "staff/contacts/", "staff/reports/")
# Open to everyone: signing in and out.
PUBLIC_STAFF_PAGES = frozenset({"staff/login/", "staff/logout/"})
LOGIN_PATH = "/staff/login/"

API_RULES: dict[str, frozenset[str]] = {
    "/api/v1/staff/whoami": DOOR,
    "/api/v1/staff/door/{performance_id}": DOOR,
    "/api/v1/staff/checkin": DOOR,
    "/api/v1/staff/checkin/undo": DOOR,
}
API_BACK_OFFICE_PREFIXES = ("/api/v1/staff/sales/", "/api/v1/staff/reports/")
# Seating charts (import, export, which chart a performance sells from): the catalog's admins.
API_ADMIN_PREFIXES = ("/api/v1/staff/seating/",)
STAFF_API_PREFIX = "/api/v1/staff"


class NoRule(AssertionError):
    """A staff page or operation nobody declared the roles of."""


def allowed_page_roles(route: str, name: str | None) -> frozenset[str]:
    """The roles that may open the staff page `route` (the resolver's pattern, named `name`)."""
    if name in PAGE_RULES and route.startswith(("staff/door", "staff/pos", "staff/audit")) or route == "staff/":
        return PAGE_RULES[name or ""]
    if route.startswith(CATALOG_PREFIXES):
        return ADMINS
    if route.startswith(BACK_OFFICE_PREFIXES):
        return SELLERS
    if route.startswith(("staff/audit", "staff/emails/")):  # the audit log; previews of patron emails
        return ADMINS
    raise NoRule(f"No authorization rule declared for the staff page /{route}: add it to src/wtx/authz_rules.py.")


def allowed_api_roles(path: str) -> frozenset[str]:
    """The roles that may call the staff API operation at `path` (the OpenAPI document's)."""
    if path in API_RULES:
        return API_RULES[path]
    if path.startswith(API_BACK_OFFICE_PREFIXES):
        return SELLERS
    if path.startswith(API_ADMIN_PREFIXES):
        return ADMINS
    raise NoRule(f"No authorization rule declared for the staff API {path}: add it to src/wtx/authz_rules.py.")


def fill_route(route: str, ids: dict[str, int]) -> str:
    """The URL of a resolver pattern: its parameters from `ids` by name; an id nobody gave is
    999999 (no such object), a slug or string "x"."""
    def sub(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if converter in (None, "int") and name in ids:
            return str(ids[name])
        if converter == "int" or name.endswith("_id"):
            return str(ids.get(name, 999999))
        return "x"

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)
