"""stg's `migrations`, `integration` and `performance` gates for real, on the live stack.

integration: the 32-buyer race on stg's own database, then an integration suite with the
release's code on an empty scratch database of stg's cluster (dropped afterwards).

migrations: a copy of prd's database in a scratch database of stg's cluster, the release's
migrations on it, the previous release stg ran reading it.

A release whose migration drops a column the previous release reads (catalog_event's
duration_minutes) is stopped twice over: the linter names the RemoveField, and with the
linter told to let it through by name, the previous release fails to read the migrated
schema. A release with no new migration passes, with the previous release checked. The
releases are only installed, never deployed: stg keeps running what it ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from variants import build_variant

from wtx import gates, ledger
from wtx import release as releases
from wtx.backends.local.refresh import integration_name, rehearsal_name

pytestmark = pytest.mark.slow

DROPS_A_COLUMN = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "LEAF")]
    operations = [migrations.RemoveField(model_name="event", name="duration_minutes")]
"""


def _release_dropping_a_column(stack, base: releases.Release) -> releases.Release:
    """The base release's commit plus one migration that drops a column (the model keeps it)."""
    def drop_a_column(repo: Path) -> None:
        migrations = repo / "src" / "wondertix" / "catalog" / "migrations"
        leaf = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
        (migrations / "9998_drop_event_duration.py").write_text(DROPS_A_COLUMN.replace("LEAF", leaf))

    return build_variant(stack.builds.clone, stack.var_dir, base, drop_a_column,
                         "drops a column the previous release reads")[0]


def _migrations_gate(stack, rel: releases.Release, **thresholds):
    stg = stack.spec.env("stg")
    gate = stg.gate("migrations").model_copy(update=thresholds)
    stack.backend.install(rel)
    with gates.Workspace(stack.spec, stack.backend, stack.builds.clone, stg, rel, f"test-{rel.id[:6]}") as work:
        return gates.run_check(work, gate)


def _databases(stack) -> str:
    cluster = stack.backend.cluster(stack.spec.env("stg"))
    return cluster.psql("SELECT datname FROM pg_database ORDER BY 1;")


def test_a_release_whose_migration_drops_a_column_the_previous_release_reads_is_stopped(stack):
    stg_runs = stack.backend.active_release("stg")
    base = releases.get(stg_runs, stack.var_dir)
    drops = _release_dropping_a_column(stack, base)
    prd_events = stack.backend.cluster(stack.spec.env("prd")).psql(
        "SELECT count(*) FROM catalog_event;", "wondertix_prd").strip()

    linted = _migrations_gate(stack, drops)
    print(f"\nlinter: {linted.summary} ({linted.seconds} s)")
    assert not linted.passed
    assert linted.summary.startswith(
        "dangerous migration catalog.9998_drop_event_duration: RemoveField event.duration_minutes")
    assert linted.figures["new_migrations"] == 1 and linted.figures["previous_release"] == stg_runs

    allowed = _migrations_gate(stack, drops, allow=["catalog.9998_drop_event_duration"])
    print(f"allowed by name: {allowed.summary} ({allowed.seconds} s) {allowed.figures}")
    assert not allowed.passed
    assert allowed.summary.startswith(f"the previous release {stg_runs} cannot read catalog.Event: ")
    assert "duration_minutes" in allowed.summary
    assert allowed.figures["lint_allowed"] == 1 and allowed.figures["migrate_seconds"] > 0

    # stg's own database and prd's were not touched; the scratch copy is gone.
    assert stack.backend.active_release("stg") == stg_runs
    stg_columns = stack.backend.cluster(stack.spec.env("stg")).psql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'catalog_event';", "wondertix_stg")
    assert "duration_minutes" in stg_columns.split()
    assert stack.backend.cluster(stack.spec.env("prd")).psql(
        "SELECT count(*) FROM catalog_event;", "wondertix_prd").strip() == prd_events
    assert rehearsal_name("wondertix_stg") not in _databases(stack).split()
    stack.figures["migrations_gate_seconds"] = allowed.seconds


def test_a_release_without_new_migrations_passes_with_the_previous_release_checked(stack):
    stg_runs = stack.backend.active_release("stg")
    rid = stack.builds.wait("candidate")
    rel = releases.get(rid, stack.var_dir)
    result = _migrations_gate(stack, rel)
    print(f"\n{result.summary} ({result.seconds} s) {result.figures}")
    assert result.passed, result.summary
    # The release the candidate replaces: what stg runs, or — when the pipeline test already
    # promoted this very release there — the one stg ran before it.
    ran_in_stg = [r["release"] for r in ledger.read(stack.var_dir, "stg") if r.get("event") in (ledger.DEPLOY, ledger.ROLLBACK)]
    expected = stg_runs if stg_runs != rid else next(r for r in reversed(ran_in_stg) if r != rid)
    assert result.figures["previous_release"] == expected and result.figures["previous_model_errors"] == 0
    assert result.figures["previous_models_read"] > 10
    assert set(result.figures["previous_paths"].values()) == {200}


def test_the_integration_gate_races_32_buyers_for_8_seats_on_stgs_database_and_none_is_oversold(stack):
    stg = stack.spec.env("stg")
    rel = releases.get(stack.backend.active_release("stg"), stack.var_dir)
    # The checked-in suites take a minute or more; one of them (the no-oversell races) here.
    # The browser journeys have their own test (test_e_stg_journeys.py).
    gate = stg.gate("integration").model_copy(update={"suites": ["tests/integration/test_concurrency.py"],
                                                      "journeys": []})
    with gates.Workspace(stack.spec, stack.backend, stack.builds.clone, stg, rel, "test-integration") as work:
        result = gates.run_check(work, gate)
    print(f"\n{result.summary} ({result.seconds} s) {result.figures}")
    assert result.passed, result.summary
    assert (result.figures["buyers"], result.figures["seats"]) == (gate.buyers, gate.seats)
    assert result.figures["orders_201"] == result.figures["tickets"] == gate.seats
    assert result.figures["oversold"] == 0 and result.figures["server_errors"] == 0
    assert result.figures["statuses"].get("409") == gate.buyers - gate.seats  # sold out, refused
    # The scratch event, its orders and its buyers are gone from stg's database again.
    assert result.figures["scratch"]["removed"] is True, result.figures["scratch"]
    assert result.figures["scratch"]["rows"]["sales.Order"] == gate.seats
    cluster = stack.backend.cluster(stg)
    left = cluster.psql("SELECT (SELECT count(*) FROM catalog_event WHERE slug = 'wtx-gate-integration-test-integration'), "
                        "(SELECT count(*) FROM patrons_patron WHERE email LIKE 'gate-test-integration-%');",
                        stg.database.name).strip()
    assert left == "0|0"
    # The suite ran with the release's code on a scratch database of stg's cluster, now gone.
    assert result.figures["suites_passed"] >= 5 and result.figures["suites_failed"] == 0, result.figures
    assert result.figures["suites_from"] == f"checkout at {rel.commit[:12]}"
    assert integration_name(stg.database.name) not in _databases(stack).split()
    assert stack.backend.active_release("stg") == rel.id
    stack.figures["integration_gate_seconds"] = result.seconds
    stack.figures["integration_suites_seconds"] = result.figures["suites_seconds"]


def test_the_performance_gate_runs_locust_through_stgs_front_door_and_keeps_its_report(stack):
    stg = stack.spec.env("stg")
    rel = releases.get(stack.backend.active_release("stg"), stack.var_dir)
    gate = stg.gate("performance").model_copy(update={"run_seconds": 10})  # the checked-in 20 s, halved here
    with gates.Workspace(stack.spec, stack.backend, stack.builds.clone, stg, rel, "test-performance") as work:
        result = gates.run_check(work, gate)
    print(f"\n{result.summary} ({result.seconds} s) {result.figures}")
    assert result.passed, result.summary
    assert result.figures["requests"] >= 20 and result.figures["orders"] == gate.users  # each patron bought once
    assert result.figures["oversold"] == 0 and result.figures["error_rate"] <= gate.max_error_rate
    report = stack.var_dir / result.figures["report"]
    assert report.is_file() and "/api/v1/orders" in report.read_text()
    stack.figures["performance_gate_seconds"] = result.seconds
