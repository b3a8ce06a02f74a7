"""The broken-release drill's releases: a good control and five releases broken in one way
each, built as real releases from commits in a throwaway clone of the checkout.

Each patch is a plain text edit of the checkout's own files (checked to apply, so a drifting
source fails the drill loudly instead of building an unbroken "broken" release) committed on
its own branch from the base commit, then `wtx.release.build` builds that committed HEAD.
The gates that clone the checkout at a release's commit (lint, unit) find every commit there
because every branch is in the clone the pipeline is given as its root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from variants import git

Patch = Callable[[Path], None]


@dataclass(frozen=True)
class Broken:
    """One drill release: how it is broken, and where the pipeline must stop it."""

    name: str
    env: str
    gate: str
    why: str
    patch: Patch


def replace(repo: Path, path: str, old: str, new: str, count: int = 1) -> None:
    """Edit `path`, insisting that `old` occurs exactly `count` times (0: every occurrence, at least one)."""
    file = repo / path
    text = file.read_text()
    found = text.count(old)
    if found == 0 or (count and found != count):
        raise AssertionError(f"drill patch no longer applies: {old!r} occurs {found} times in {path}")
    file.write_text(text.replace(old, new))


def append(repo: Path, path: str, text: str) -> None:
    file = repo / path
    file.write_text(file.read_text() + text)


# -- the patches ------------------------------------------------------------------------------


def control(repo: Path) -> None:
    append(repo, "src/wondertix/__init__.py", "# broken-release drill: the control release (nothing broken)\n")


def failing_unit(repo: Path) -> None:
    # "12.5" becomes 12 dollars and 5 cents instead of 50: test_money_parser catches it.
    replace(repo, "src/wondertix/money.py", 'int(frac.ljust(2, "0"))', 'int(frac.rjust(2, "0"))')


def insecure_debug(repo: Path) -> None:
    # The release's settings force DEBUG on whatever the environment says. (The app server's
    # own start-up check runs the deploy checks only with DEBUG off, so this one starts.)
    replace(repo, "src/wondertix/settings.py", 'DEBUG = env.bool("DEBUG", default=True)',
            "DEBUG = True  # drill: forced on in every environment")


def no_sales_lock(repo: Path) -> None:
    # The sale path as if the test switch were on (tests/integration/test_concurrency.py's
    # unsafe server), shipped in the code rather than the settings: the settings switch itself
    # is refused by the release's start-up checks without DEBUG (wondertix.E005), so a release
    # that ships the lock off does it this way.
    path = "src/wondertix/sales/inventory.py"
    replace(repo, path, "settings.WONDERTIX_UNSAFE_DISABLE_SALES_LOCK", "_SALES_LOCK_OFF", count=0)
    replace(repo, path, "from django.conf import settings\n", "")  # its only use was the switch
    replace(repo, path, "UNSAFE_RACE_WINDOW_SECONDS = ",
            "_SALES_LOCK_OFF = True  # drill: the lock is switched off\nUNSAFE_RACE_WINDOW_SECONDS = ")


def slow_page(repo: Path) -> None:
    # Every request for a performance page waits, once the app has answered it, nine times as
    # long as the app took: the endpoint ten times slower, whatever this machine's speed.
    append(repo, "src/wondertix/wsgi.py", (
        "\n\nimport time as _time  # noqa: E402 - drill\n\n_django_application = application\n\n\n"
        "def application(environ, start_response):  # type: ignore[no-redef]  # noqa: ANN001, ANN201\n"
        '    """The performance pages ten times slower (drill)."""\n'
        "    started = _time.perf_counter()\n"
        "    response = _django_application(environ, start_response)\n"
        '    if environ.get("PATH_INFO", "").startswith("/performances/"):\n'
        "        _time.sleep(9 * (_time.perf_counter() - started))\n"
        "    return response\n"
    ))


RENAME_COLUMN = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "LEAF")]
    operations = [
        migrations.AlterField(
            model_name="event",
            name="duration_minutes",
            field=models.PositiveIntegerField(blank=True, null=True, db_column="running_time_minutes"),
        ),
    ]
'''
RENAME_MIGRATION = "9998_drill_rename_duration_column"


def catalog_leaf(repo: Path) -> str:
    migrations = repo / "src" / "wondertix" / "catalog" / "migrations"
    return max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py") if not p.stem.startswith("9998"))


def breaks_previous(repo: Path) -> None:
    # The column behind Event.duration_minutes is renamed: this release reads it by its new
    # name and works; the release before it still selects catalog_event.duration_minutes.
    replace(repo, "src/wondertix/catalog/models.py",
            "duration_minutes = models.PositiveIntegerField(null=True, blank=True)",
            'duration_minutes = models.PositiveIntegerField(null=True, blank=True, db_column="running_time_minutes")')
    migrations = repo / "src" / "wondertix" / "catalog" / "migrations"
    (migrations / f"{RENAME_MIGRATION}.py").write_text(RENAME_COLUMN.replace("LEAF", catalog_leaf(repo)))


CONTROL = Broken("control", "prd", "approval", "nothing broken: every gate passes, prd waits for its approval", control)
# In the order the drill pushes them: the one that breaks stg's schema for the others last.
DRILL = [
    Broken("failing_unit", "dev", "unit", "a failing unit test", failing_unit),
    Broken("insecure_debug", "stg", "security", "DEBUG forced on by the release's settings", insecure_debug),
    Broken("no_sales_lock", "stg", "integration", "the sales lock switched off: oversell", no_sales_lock),
    Broken("slow_page", "stg", "performance", "the storefront's performance page ten times slower", slow_page),
    Broken("breaks_previous", "stg", "migrations", "a migration renames a column the previous release reads",
           breaks_previous),
]


def commit_variant(repo: Path, base: str, release: Broken) -> None:
    """`release`'s patch on a branch of its own from `base`, committed (its HEAD is what builds)."""
    git(repo, "checkout", "-q", "-B", f"drill-{release.name.replace('_', '-')}", base)
    release.patch(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"drill: {release.why}")
