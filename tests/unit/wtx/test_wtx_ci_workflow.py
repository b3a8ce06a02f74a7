"""The GitHub Actions workflow runs the commands the tests run, and those commands exist.

A workflow cannot be run here (it needs GitHub's runners), so this reads it as GitHub does
(YAML) and checks every `make` target against the Makefile and every `wtx` command and option
against the CLI, so a renamed target or command breaks this test instead of the next CI run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from wtx import cli, pipeline

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"


def _workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def _runs(job: dict[str, Any]) -> list[str]:
    """Every shell line of a job's `run:` steps."""
    return [line.strip() for step in job["steps"] if "run" in step
            for line in step["run"].splitlines() if line.strip()]


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _wtx_calls(lines: list[str]) -> list[list[str]]:
    """The argument lists of every `.venv/bin/wtx ...` call (up to a redirection or &&)."""
    calls = []
    for line in lines:
        for match in re.finditer(r"\.venv/bin/wtx\s+([a-z][^>|&;)]*)", line):
            calls.append(shlex.split(match.group(1)))
    return calls


def _check_wtx(args: list[str]) -> None:
    """`args` name an existing (sub)command, and each option it passes exists on it."""
    # typer ships its own click: a group is a command with subcommands.
    command: Any = typer.main.get_command(cli.app)
    rest = list(args)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"wtx has no command {name!r} ({' '.join(args)})"
        command = command.commands[name]
    assert not hasattr(command, "commands"), f"`wtx {' '.join(args)}` names a group, not a command"
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word in known, f"`wtx {' '.join(args)}`: no option {word} (known: {sorted(known)})"


def test_pull_requests_run_lint_unit_and_dev_gates_and_main_runs_the_pipeline_to_stg():
    wf = _workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    pr = next(j for j in jobs.values() if "pull_request" in j.get("if", ""))
    main = next(j for j in jobs.values() if "push" in j.get("if", ""))
    pr_lines, main_lines = _runs(pr), _runs(main)
    assert {"make lint", "make unit"} <= set(pr_lines)
    assert ["gate", "dev", "$rid"] in _wtx_calls(pr_lines)
    assert ["pipeline", "run"] in _wtx_calls(main_lines)
    # The pipeline stops at prd's approval with WAITING: that, and only that, is success.
    assert f'if [ "$code" -eq {pipeline.WAITING} ]; then exit 0; fi' in main_lines


@pytest.mark.parametrize("job", ["dev-gates", "pipeline-to-stg"])
def test_every_command_the_workflow_runs_exists_in_the_makefile_and_the_cli(job):
    lines = _runs(_workflow()["jobs"][job])
    targets = _make_targets()
    for line in lines:
        for target in re.findall(r"\bmake\s+([\w-]+)", line):
            assert target in targets, f"{line!r}: the Makefile has no target {target!r}"
    calls = _wtx_calls(lines)
    assert calls
    for args in calls:
        _check_wtx(args)


def test_the_workflow_and_ci_install_the_same_system_packages_with_one_script():
    install = ROOT / ".ci" / "install-deps"
    assert install.stat().st_mode & 0o111, ".ci/install-deps must be executable"
    text = install.read_text()
    for package in ("haproxy", "postgresql-15", "chromium"):
        assert package in text
    run = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
           if ln.strip() and not ln.startswith("#")]
    assert ".ci/install-deps" in run and run[-1] == "make test"
    for name, job in _workflow()["jobs"].items():
        assert ".ci/install-deps" in _runs(job), f"job {name} does not install what .ci/run installs"


def test_no_registry_hostname_in_the_ci_files():
    files = [WORKFLOW, ROOT / ".ci" / "install-deps", ROOT / ".ci" / "run"]
    host = re.compile(r"://|\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(org|com|io|net|dev|sh)\b", re.IGNORECASE)
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not host.search(line), f"{path.relative_to(ROOT)}:{n} names a host: {line.strip()}"


def test_the_checker_catches_a_command_that_does_not_exist():
    """The checks above can fail: a misspelt command, option or target is caught."""
    with pytest.raises(AssertionError, match="no command 'pipline'"):
        _check_wtx(["pipline", "run"])
    with pytest.raises(AssertionError, match="no option --until"):
        _check_wtx(["pipeline", "run", "--until", "stg"])
    assert "unit" in _make_targets() and "units" not in _make_targets()
