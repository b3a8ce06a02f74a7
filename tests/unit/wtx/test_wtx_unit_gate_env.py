"""The unit gate's environment: clean, except what the release's unit tests need from this
machine to run as `make unit` runs them (found by timing the checked-in pipeline: without
these, 21 tests of a good release errored inside the gate)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from wtx import gates
from wtx import release as releases


def test_the_unit_gate_keeps_pips_settings_and_wtxs_wheel_cache_and_nothing_else_of_the_shell(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels")
    monkeypatch.setenv("DATABASE_URL", "postgres://operator@localhost/wondertix_prd")
    monkeypatch.setenv("WTX_VAR_DIR", "/srv/wtx")
    work = SimpleNamespace(dir=tmp_path / ("deep" * 20))
    env = gates._unit_env(work, Path("/tmp/wtx-unit-abc"))  # type: ignore[arg-type]
    assert env["PIP_FIND_LINKS"] == "/srv/wheels"
    assert env["WTX_CACHE_DIR"] == str(releases.wheel_cache_dir().parent)
    assert "DATABASE_URL" not in env and "WTX_VAR_DIR" not in env
    assert env["HOME"].startswith(str(work.dir))  # still a scratch HOME



def test_an_installed_release_holds_its_lock_only_so_the_unit_gate_builds_with_the_locked_pip(built, tmp_path):
    """The dev `unit` gate's interpreter is the installed release, then the project's test
    tools. An installer the interpreter bundles (a plain `python -m venv` drops pip and
    setuptools into a venv) came first on that path: the gate's release tests built with
    that old pip and setuptools — a different app wheel, then a hash failure on Django —
    while `make unit` passed. The installed release holds what its lock lists and nothing
    else, so the gate's pip and setuptools are the ones the project locks."""
    import importlib.metadata
    import json
    import subprocess

    from wtx.backends.local.install import install
    from wtx.backends.local.layout import Layout

    release, repo = built["release"], built["repo"]
    var = tmp_path / "var"
    venv = install(Layout(var), release)
    runtime = releases._pins(release.requirements)
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m, json; print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"],
        capture_output=True, text=True, check=True, env={"PATH": gates.SYSTEM_PATH})
    installed = {releases._normalize(n) for n in json.loads(listed.stdout)}
    assert installed - {"wondertix"} == set(runtime), "exactly the release's lock (and its app) is installed"
    assert "pip" not in installed and "setuptools" not in installed

    backend = SimpleNamespace(var_dir=var, release_python=lambda rel: venv / "bin" / "python")
    work = gates.Workspace(None, backend, repo, SimpleNamespace(name="dev"), release, "run1")  # type: ignore[arg-type]
    with work:
        tools = subprocess.run(
            [str(work.python()), "-c", "import pip, setuptools; print(pip.__version__, setuptools.__version__)"],
            capture_output=True, text=True, check=True, env={"PATH": gates.SYSTEM_PATH})
    locked = releases._pins(repo / "requirements.lock")
    assert tools.stdout.split() == [locked["pip"], locked["setuptools"]]
    assert tools.stdout.split() == [importlib.metadata.version("pip"), importlib.metadata.version("setuptools")]
