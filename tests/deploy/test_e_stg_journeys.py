"""The browser journeys in stg's `integration` gate, for real: Chromium (headless) through the
checkout's end-to-end tests at the release's commit, with the release's installed code,
against a scratch database of stg's PostgreSQL cluster.

The release stg runs passes them. A release whose checkout page lost its pay button — it
installs, migrates, answers /readyz and its API; only a patron finds out — is promoted into
stg and stopped there by the integration gate, which names the journey that failed; prd
cannot take it. One journey file keeps this cheap (the checked-in gate runs all of tests/e2e).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from variants import build_variant

from wtx import gates, pipeline
from wtx import release as releases
from wtx.backends.local import LocalBackend
from wtx.backends.local.refresh import integration_name
from wtx.spec import parse_spec

pytestmark = pytest.mark.slow

JOURNEY_FILE = "tests/e2e/test_storefront_journey.py"
CHECKOUT_TEMPLATE = "src/wondertix/storefront/templates/storefront/checkout.html"


def _drop_the_pay_button(repo: Path) -> None:
    template = repo / CHECKOUT_TEMPLATE
    text = template.read_text()
    start = text.index('<button class="button button--primary button--block" type="submit" data-busy-label=')
    end = text.index("</button>", start) + len("</button>")
    template.write_text(text[:start] + text[end:])


def _release_without_the_pay_button(stack, base: releases.Release) -> tuple[releases.Release, Path]:
    return build_variant(stack.builds.clone, stack.var_dir, base, _drop_the_pay_button,
                         "the checkout page loses its pay button")


def _journeys_spec(stack):
    """stg's gates reduced to its integration gate: one journey file, no suites (they have
    their own test), the checked-in race and thresholds."""
    raw = tomllib.loads(stack.spec.path.read_text())
    stg = raw["environments"]["stg"]
    gate = next(g for g in stg["gates"] if g["check"] == "integration")
    gate.update(suites=[], journeys=[JOURNEY_FILE])
    stg["gates"] = [gate]
    return parse_spec(raw, stack.spec.path)


def _databases(stack) -> list[str]:
    return stack.backend.cluster(stack.spec.env("stg")).psql("SELECT datname FROM pg_database;").split()


def test_a_release_whose_checkout_lost_its_pay_button_is_stopped_at_stgs_integration_gate(stack):
    spec = _journeys_spec(stack)
    backend = LocalBackend(spec, stack.backend.root, stack.var_dir)
    stg = spec.env("stg")
    # The stack's base release, whose commit the stack's checkout has (stg may be running a
    # release of another module's own repository: the drill's).
    good = releases.get(stack.builds.ids["base"], stack.var_dir)
    if backend.active_release("stg") != good.id:
        stack.promote_to("stg", good.id)

    # The release stg runs passes the journeys: the gate does not fail everything.
    with gates.Workspace(spec, backend, stack.builds.clone, stg, good, "test-journeys") as work:
        passed = gates.run_check(work, stg.gate("integration"))
    print(f"\n{passed.summary} ({passed.seconds} s)")
    assert passed.passed, passed.summary
    assert passed.figures["journeys_passed"] >= 2 and passed.figures["journeys_failed"] == 0
    assert passed.figures["journeys_from"] == f"checkout at {good.commit[:12]}"
    assert integration_name(stg.database.name) not in _databases(stack)
    stack.figures["journeys_one_file_seconds"] = passed.figures["journeys_seconds"]

    broken, broken_repo = _release_without_the_pay_button(stack, good)  # its commit is in its own clone
    stack.promote_to("stg", broken.id)
    try:
        assert backend.active_release("stg") == broken.id
        run = pipeline.run_gates(spec, backend, broken_repo, "stg", broken.id)
        failed = run.failed
        print(f"{failed.summary if failed else run} ({failed.seconds if failed else '-'} s)")
        assert failed is not None and failed.check == "integration"
        assert failed.summary.startswith("browser journeys: ")
        assert f"first: {JOURNEY_FILE}::test_" in failed.summary
        assert failed.figures["oversold"] == 0, "the race passed: the journeys stopped it"
        assert failed.figures["journeys_failed"] >= 1
        recorded = pipeline.last_gate_run(stack.var_dir, "stg", broken.id)
        assert [(r["check"], r["passed"]) for r in recorded] == [("integration", False)]
        assert recorded[0]["figures"]["journeys_failed"] == failed.figures["journeys_failed"]
        refusal = pipeline.promotion_refusal(spec, stack.var_dir, "stg", "prd", broken.id)
        assert refusal is not None and "integration" in refusal, refusal
        assert backend.active_release("prd") != broken.id
        assert integration_name(stg.database.name) not in _databases(stack)
        stack.figures["journeys_broken_release_seconds"] = failed.figures["journeys_seconds"]
    finally:
        backend.rollback("stg")
    assert backend.active_release("stg") == good.id
