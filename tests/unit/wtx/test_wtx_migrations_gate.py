"""The `migrations` gate: the linter on sample migrations, and the gate's pass/fail decisions
with a fake backend (a scratch copy that is a URL, `wondertix` commands that answer from a
table). tests/deploy/test_d_stg_gates.py runs the real rehearsal on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_wtx_pipeline import FakeBackend, fake_release
from wtx_testing import ROOT

from wtx import gate_migrations, gates, ledger, migration_lint
from wtx import release as releases
from wtx.backends import DeployError
from wtx.spec import SpecError, parse_spec

OLD, NEW = "0000aaaa1111", "1111bbbb2222"

HEADER = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n" \
         "    dependencies = [('catalog', '0002_season_default_prices')]\n    operations = [\n"


def migration(*operations: str) -> str:
    return HEADER + "".join(f"        {op},\n" for op in operations) + "    ]\n"


DROP_DESCRIPTION = migration("migrations.RemoveField(model_name='event', name='description')")


# --------------------------------------------------------------------------------------------
# The linter


@pytest.mark.parametrize(("operation", "flagged"), [
    ("migrations.RemoveField(model_name='event', name='description')", "RemoveField event.description"),
    ("migrations.DeleteModel(name='Venue')", "DeleteModel Venue"),
    ("migrations.RenameField(model_name='event', old_name='title', new_name='name')", "RenameField event.title"),
    ("migrations.RenameModel(old_name='Venue', new_name='Hall')", "RenameModel Venue"),
    ("migrations.AlterField(model_name='event', name='notes', field=models.TextField())", "AlterField event.notes"),
    # a nullable field that names another column: Django renames the column under the old release
    ("migrations.AlterField(model_name='event', name='notes', field=models.TextField(null=True, db_column='remarks'))",
     "AlterField event.notes"),
    ("migrations.AlterModelTable(name='venue', table='catalog_hall')", "AlterModelTable venue"),
    ("migrations.AddField(model_name='event', name='rating', field=models.IntegerField(default=0))",
     "AddField event.rating"),
    ("migrations.RunSQL('ALTER TABLE catalog_event DROP COLUMN description')", "RunSQL DROP COLUMN"),
    ("migrations.RunSQL(sql=['UPDATE x SET y = 1', 'drop table catalog_old'], reverse_sql='')", "RunSQL DROP TABLE"),
])
def test_the_linter_names_an_operation_the_previous_release_would_trip_over(operation, flagged):
    findings = migration_lint.lint_migration("catalog.0003_change", migration(operation))
    assert [f"{f.operation} {f.target}" for f in findings] == [flagged]
    assert str(findings[0]).startswith(f"catalog.0003_change: {flagged} (")


@pytest.mark.parametrize("operation", [
    "migrations.AddField(model_name='event', name='subtitle', field=models.CharField(max_length=80, null=True))",
    "migrations.AddField(model_name='event', name='rating', field=models.IntegerField(db_default=0))",
    "migrations.AddField(model_name='event', name='tags', field=models.ManyToManyField(to='catalog.tag'))",
    "migrations.AlterField(model_name='event', name='notes', field=models.TextField(null=True))",
    "migrations.AlterField(model_name='event', name='notes', field=models.TextField(default=''))",
    "migrations.CreateModel(name='Tag', fields=[('id', models.BigAutoField(primary_key=True))])",
    "migrations.AddIndex(model_name='event', index=models.Index(fields=['title'], name='event_title'))",
    "migrations.RunSQL('CREATE INDEX CONCURRENTLY x ON catalog_event (title)')",
    "migrations.RunPython(migrations.RunPython.noop)",
])
def test_the_linter_lets_expanding_operations_through(operation):
    assert migration_lint.lint_migration("catalog.0003_expand", migration(operation)) == []


def test_a_finding_is_let_through_only_by_the_migrations_name_in_the_spec():
    sources = {"catalog.0003_drop": DROP_DESCRIPTION, "catalog.0004_ok": migration("migrations.RunPython(f)")}
    findings, allowed = migration_lint.lint(sources, allow=["catalog.0009_other"])
    assert [f.migration for f in findings] == ["catalog.0003_drop"] and allowed == []
    findings, allowed = migration_lint.lint(sources, allow=["catalog.0003_drop"])
    assert findings == [] and [f.migration for f in allowed] == ["catalog.0003_drop"]


def test_the_projects_own_migrations_through_the_linter():
    """Figures, not a verdict: what the linter says of the migrations already applied (it lints
    only a release's new ones). Most findings are AddField of NOT NULL columns with a Python
    default, which Django drops after filling the rows: a previous release inserting rows then fails."""
    sources = {f"{p.parent.parent.name}.{p.stem}": p.read_text()
               for p in sorted((ROOT / "src" / "wondertix").glob("*/migrations/[0-9]*.py"))}
    findings, _ = migration_lint.lint(sources)
    print(f"\n{len(sources)} migrations, {len(findings)} finding(s)")
    for f in findings:
        print(f"  {f}")
    assert len(sources) > 10


def test_unapplied_migrations_are_read_from_showmigrations_plan():
    plan = "[X]  contenttypes.0001_initial\n[X]  catalog.0002_season_default_prices\n" \
           "[ ]  catalog.0003_drop_description\n[ ]  sales.0007_x\n"
    assert gate_migrations.unapplied(plan) == ["catalog.0003_drop_description", "sales.0007_x"]


# --------------------------------------------------------------------------------------------
# The gate's decisions


def _release_with(var_dir: Path, rid: str, migrations: dict[str, str]) -> None:
    fake_release(var_dir, rid)
    wheel = var_dir / "releases" / rid / "wheelhouse" / "x.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, source in migrations.items():
            label, _, stem = name.partition(".")
            zf.writestr(f"wondertix/{label}/migrations/{stem}.py", source)


class Rehearsal(FakeBackend):
    """A backend whose scratch copy is a URL and whose `wondertix` answers from `answers`."""

    def __init__(self, spec: Any, var_dir: Path) -> None:
        super().__init__(spec, var_dir)
        self.copies: list[tuple[str, str]] = []
        self.dropped = 0
        self.commands: list[tuple[str, tuple[str, ...], str]] = []
        self.plan = "[X]  catalog.0002_season_default_prices\n[ ]  catalog.0003_drop_description\n"
        self.migrate = subprocess.CompletedProcess([], 0, "Applying catalog.0003... OK\n", "")
        self.reads = {"models": 30, "model_errors": [], "paths": {"/readyz": 200, "/": 200, "/api/v1/events": 200}}
        self.copy_error = ""

    @contextmanager
    def scratch_copy(self, env: str, source: str, progress: Any = None):
        if self.copy_error:
            raise DeployError(self.copy_error)
        self.copies.append((env, source))
        try:
            yield "postgres://rehearsal:pw@127.0.0.1:5533/wondertix_stg_rehearsal"
        finally:
            self.dropped += 1

    def release_python(self, rel: Any) -> Path:
        return Path("/nonexistent/python")

    def manage(self, env: Any, rel: Any, *args: str, timeout: float = 600, overrides: Any = None):
        assert overrides == {"DATABASE_URL": "postgres://rehearsal:pw@127.0.0.1:5533/wondertix_stg_rehearsal"}
        self.commands.append((rel.id, args[:1], ""))
        if args[0] == "showmigrations":
            return subprocess.CompletedProcess(args, 0, self.plan, "")
        if args[0] == "migrate":
            return self.migrate
        if args[0] == "shell":
            return subprocess.CompletedProcess(args, 0, "\n" + gate_migrations.MARK + json.dumps(self.reads) + "\n", "")
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def rehearsal(spec, var_dir) -> Rehearsal:
    _release_with(var_dir, OLD, {})
    _release_with(var_dir, NEW, {"catalog.0003_drop_description": DROP_DESCRIPTION})
    backend = Rehearsal(spec, var_dir)
    backend.running["stg"] = NEW
    return backend


def _gate(backend: Rehearsal, **thresholds: Any):
    gate = backend.spec.env("stg").gate("migrations").model_copy(update=thresholds)
    rel = releases.get(NEW, backend.var_dir)
    with gates.Workspace(backend.spec, backend, ROOT, backend.spec.env("stg"), rel, "run1") as work:
        return gates.run_check(work, gate)


def _stg_ran(backend: Rehearsal, rid: str) -> None:
    ledger.append(backend.var_dir, ledger.DEPLOY, env="stg", release=rid, previous=None, slot="blue", seconds=1)


def test_a_migration_that_drops_a_column_is_stopped_by_the_linter(rehearsal):
    _stg_ran(rehearsal, OLD)
    _stg_ran(rehearsal, NEW)
    result = _gate(rehearsal)
    assert not result.passed
    assert result.summary.startswith("dangerous migration catalog.0003_drop_description: RemoveField event.description")
    assert result.figures["new_migrations"] == 1 and result.figures["lint_findings"] == 1
    assert rehearsal.copies == [("stg", "prd")] and rehearsal.dropped == 1  # the copy is gone, pass or fail
    log = (rehearsal.var_dir / result.log).read_text()
    assert "lint: catalog.0003_drop_description: RemoveField" in log


def test_allowed_by_name_it_passes_with_its_figures_and_the_previous_release_checked(rehearsal):
    _stg_ran(rehearsal, OLD)
    _stg_ran(rehearsal, NEW)
    result = _gate(rehearsal, allow=["catalog.0003_drop_description"])
    assert result.passed, result.summary
    assert result.figures | {"previous_release": OLD, "lint_allowed": 1, "previous_models_read": 30} == result.figures
    assert f"previous release {OLD}: 30 models read, 3 paths 200" in result.summary
    # In this order: plan and migrate by the release, scrub by the release, then the previous release reads.
    assert [(rid, cmd[0]) for rid, cmd, _ in rehearsal.commands] == [
        (NEW, "showmigrations"), (NEW, "migrate"), (NEW, "scrub_personal_data"), (OLD, "shell")]


def test_the_previous_release_failing_to_read_the_migrated_schema_fails_the_gate(rehearsal):
    _stg_ran(rehearsal, OLD)
    _stg_ran(rehearsal, NEW)
    rehearsal.reads = {"models": 29, "model_errors": [
        'catalog.Event: ProgrammingError: column catalog_event.description does not exist'],
        "paths": {"/readyz": 200, "/": "ProgrammingError: column catalog_event.description does not exist",
                  "/api/v1/events": 500}}
    result = _gate(rehearsal, allow=["catalog.0003_drop_description"])
    assert not result.passed
    assert result.summary.startswith(f"the previous release {OLD} cannot read catalog.Event: ProgrammingError: "
                                     "column catalog_event.description does not exist on the migrated schema")
    assert result.summary.endswith("(and 2 more, see the log)")
    # and a previous release that did not run at all is no pass either
    rehearsal.reads = {}
    broken = _gate(rehearsal, allow=["catalog.0003_drop_description"])
    assert not broken.passed and f"the previous release {OLD} answered what the gate cannot read" in broken.summary


def test_without_a_previous_release_it_says_not_checked_and_passes_on_what_it_checked(rehearsal):
    _stg_ran(rehearsal, NEW)
    rehearsal.plan = "[X]  catalog.0002_season_default_prices\n"
    result = _gate(rehearsal)
    assert result.passed, result.summary
    assert result.figures["previous_release"] == "none" and "previous_models_read" not in result.figures
    assert result.summary.endswith("previous release: none here yet (not checked)")
    assert [cmd[0] for _, cmd, _ in rehearsal.commands] == ["showmigrations", "migrate", "scrub_personal_data"]


def test_a_failing_or_slow_migration_fails_with_the_figure(rehearsal, monkeypatch):
    _stg_ran(rehearsal, NEW)
    rehearsal.plan = ""
    rehearsal.migrate = subprocess.CompletedProcess([], 1, "", "django.db.utils.ProgrammingError: relation x does not exist")
    failed = _gate(rehearsal)
    assert not failed.passed
    assert failed.summary == "migrate on the copy of prd failed: django.db.utils.ProgrammingError: relation x does not exist"
    rehearsal.migrate = subprocess.CompletedProcess([], 0, "", "")
    clock = iter([100.0, 231.5])
    monkeypatch.setattr(gate_migrations, "_clock", lambda: next(clock))
    slow = _gate(rehearsal)
    assert not slow.passed and slow.figures["migrate_seconds"] == 131.5
    assert slow.summary == "migrate on the copy of prd took 131.5 s (at most 120)"


def test_no_copy_of_prd_means_a_failed_gate(rehearsal):
    rehearsal.copy_error = "prd: its PostgreSQL cluster is not running (run `wtx up prd`)"
    result = _gate(rehearsal)
    assert not result.passed and result.summary == rehearsal.copy_error
    assert rehearsal.commands == []


def test_the_spec_names_the_source_and_checks_it(raw_spec):
    stg = raw_spec["environments"]["stg"]
    gate = next(g for g in stg["gates"] if g["check"] == "migrations")
    gate["source"] = "dev"
    with pytest.raises(SpecError, match="check 'migrations' copies a PostgreSQL database"):
        parse_spec(raw_spec, Path("environments.toml"))
    gate["source"] = "prod"
    with pytest.raises(SpecError, match="source 'prod' must name another environment"):
        parse_spec(raw_spec, Path("environments.toml"))
    gate.update(source="prd", allow=["drop everything"])
    with pytest.raises(SpecError, match="is not a migration name"):
        parse_spec(raw_spec, Path("environments.toml"))


def test_on_a_source_with_no_schema_yet_the_linter_has_no_release_to_protect(rehearsal):
    # The first pipeline run: prd never ran a release, every migration is new, old ones included.
    _stg_ran(rehearsal, NEW)
    rehearsal.plan = "[ ]  catalog.0003_drop_description\n"
    result = _gate(rehearsal)
    assert result.passed, result.summary
    assert result.figures["lint_not_needed"] == "prd has no schema yet"
    assert result.figures["lint_findings"] == 0 and result.figures["lint_allowed"] == 1
    # with one migration applied there, the same finding fails as before
    rehearsal.plan = "[X]  catalog.0002_season_default_prices\n[ ]  catalog.0003_drop_description\n"
    assert not _gate(rehearsal).passed
