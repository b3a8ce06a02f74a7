"""schemathesis over the whole published API (public and staff operations) with every check,
in-process through Django's WSGI application: whatever the document allows a client to send,
the answer must be what the document says — and never a 5xx.

Bounded: a fixed number of examples per operation keeps the run well under 90 s. The only
check configured away from its default is explained where it is configured.
"""

from __future__ import annotations

import io

import pytest
import schemathesis
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from tests.support.openapi_check import published

from wondertix.ops import tokens

load_all_checks()
EVERY_CHECK = CHECKS.get_all()  # `--checks all`

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            # Data the schema allows can still break a business rule no JSON schema expresses:
            # an id that does not exist (404), a price type of another event, a quantity of 0 or
            # over the per-order maximum, a sold-out performance (409), a declined card (402).
            # Those documented refusals count as correct answers to valid-looking data; a 5xx,
            # an undocumented status or a body off its schema still fails (other checks).
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "402", "404", "409", "422"]},
        }
    }
)

schema = schemathesis.openapi.from_dict(published(), config=CONFIG)
schema.app = get_wsgi_application()


@pytest.fixture
def staff_token(clerk) -> str:
    return tokens.mint(clerk)


@pytest.fixture
def demo_data(django_db_reset_sequences) -> None:
    # The document's examples name demo rows by id (schemathesis sends them first, and they
    # must succeed): the ids are those of a fresh `seed_demo`, hence the reset sequences.
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case, demo_data, staff_token):
    headers = {"Authorization": f"Bearer {staff_token}"} if case.operation.definition.raw.get("security") else {}
    # The WSGI transport does not undo Content-Encoding (an HTTP client does): ask for the
    # plain body, which the seat map sends gzipped to clients that accept it.
    headers["Accept-Encoding"] = "identity"
    case.call_and_validate(headers=headers, checks=EVERY_CHECK)
