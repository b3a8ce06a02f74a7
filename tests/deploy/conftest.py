"""One real stack for the whole deploy layer: wtx's local backend driving supervisord, HAProxy,
PostgreSQL and gunicorn on loopback, in a throwaway var dir.

The spec fixes the ports (HAProxy 8080/8443/8404, PostgreSQL 5533/5534, app 9100-9409), so
the tests of this layer run one after another in one process, sharing the stack brought up
once. Everything started here is stopped at the end of the session, even on failure.

Releases are built from a temporary clone of the repository (its committed HEAD) with the
core engineer's `wtx.release.build`:
  base         HEAD as committed
  next         HEAD plus one harmless commit (a comment)
  never_ready  /readyz always answers 503 (the process runs, it never becomes ready)
  bad_migration  a migration that fails on PostgreSQL
  candidate    base plus another harmless commit, for the pipeline test (tests/deploy/test_d_pipeline.py)
  failing_unit candidate plus a regression one unit test catches (the pipeline stops it in dev)

stg and prd take a release only through promotion (wtx.pipeline). These tests are about
deploys, not gates: `Stack.promote_to` records the source environment's gate results for a
release with `pipeline.record_gate` — the function `wtx gate` appends its results with —
records prd's approval with `pipeline.approve`, and then promotes with `pipeline.promote`,
the path `wtx promote` takes. test_d_pipeline runs the real gates.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wtx import pipeline
from wtx import release as releases
from wtx.backends.local import LocalBackend
from wtx.secrets import read_secrets_file
from wtx.spec import Spec, load_spec

sys.path.insert(0, str(Path(__file__).parent))
from deploy_support import Site  # noqa: E402
from tests.support.processes import kill_processes_naming
from variants import git as _git  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, Any] = {}
FAILING_MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ops", "LEAF")]
    operations = [migrations.RunSQL("SELECT * FROM no_such_table_on_purpose")]
"""


def _commit(clone: Path, message: str) -> None:
    _git(clone, "add", "-A")
    _git(clone, "commit", "-q", "-m", message)


@dataclass
class Builds:
    """Releases built in the background while the stack comes up."""

    clone: Path
    var_dir: Path
    ids: dict[str, str] = field(default_factory=dict)
    error: BaseException | None = None
    thread: threading.Thread | None = None
    # `wtx up` starts dev on the newest build: the variants wait until it has chosen (the
    # base), or dev could start on one of them (never_ready) when the databases come up slowly.
    dev_chose: threading.Event = field(default_factory=threading.Event)

    def build(self, name: str) -> str:
        rel = releases.build(self.clone, self.var_dir)
        self.ids[name] = rel.id
        return rel.id

    def build_variants(self) -> None:
        try:
            if not self.dev_chose.wait(600):
                raise TimeoutError("`wtx up` chose no release for dev within 600 s")
            # next: one harmless change.
            init = self.clone / "src" / "wondertix" / "__init__.py"
            init.write_text(init.read_text() + "# deploy test: a harmless change\n")
            _commit(self.clone, "harmless change")
            self.build("next")
            # never_ready: the app runs, /readyz answers 503 forever.
            urls = self.clone / "src" / "wondertix" / "urls.py"
            urls.write_text(urls.read_text() + (
                "\n\nfrom django.http import JsonResponse as _JsonResponse  # noqa: E402\n\n\n"
                "def _never_ready(request):  # deploy test: a release that never becomes ready\n"
                "    return _JsonResponse({'status': 'unavailable'}, status=503)\n\n\n"
                "urlpatterns.insert(0, path('readyz', _never_ready))\n"
            ))
            _commit(self.clone, "never ready")
            self.build("never_ready")
            _git(self.clone, "revert", "--no-edit", "HEAD")
            # bad_migration: a migration that fails (PostgreSQL rolls it back).
            migrations = self.clone / "src" / "wondertix" / "ops" / "migrations"
            leaf = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
            (migrations / "9999_fails_on_purpose.py").write_text(FAILING_MIGRATION.replace("LEAF", leaf))
            _commit(self.clone, "broken migration")
            self.build("bad_migration")
            _git(self.clone, "revert", "--no-edit", "HEAD")
            # candidate: a good release nobody has promoted yet.
            init.write_text(init.read_text() + "# deploy test: the pipeline's candidate\n")
            _commit(self.clone, "pipeline candidate")
            self.build("candidate")
            # failing_unit: a regression the unit tests catch (the operator loses "did you mean").
            spec_py = self.clone / "src" / "wtx" / "spec.py"
            spec_py.write_text(spec_py.read_text().replace("cutoff=0.6", "cutoff=0.99"))
            _commit(self.clone, "a regression the unit tests catch")
            self.build("failing_unit")
        except BaseException as exc:  # noqa: BLE001 - surfaced by wait()
            self.error = exc

    def start(self) -> None:
        self.thread = threading.Thread(target=self.build_variants, daemon=True)
        self.thread.start()

    def wait(self, name: str) -> str:
        if self.thread is not None:
            self.thread.join(600)
        if self.error is not None:
            raise self.error
        return self.ids[name]


@dataclass
class Stack:
    spec: Spec
    backend: LocalBackend
    var_dir: Path
    builds: Builds
    figures: dict[str, Any]

    def secrets(self, env: str) -> dict[str, str]:
        owner = self.spec.env(env).secrets_owner
        return read_secrets_file(self.var_dir / "envs" / owner / "secrets.env")

    def site(self, env: str) -> Site:
        e = self.spec.env(self.spec.env(env).secrets_owner)
        d = self.spec.defaults
        if e.access.tls:
            return Site(host=e.hostnames[0], port=d.haproxy_https_port, tls=True,
                        cafile=self.var_dir / "envs" / e.name / "tls" / "haproxy.pem")
        auth = None
        if e.access.basic_auth:
            auth = (e.access.basic_auth_user, self.secrets(e.name)["BASIC_AUTH_PASSWORD"])
        return Site(host=e.hostnames[0], port=d.haproxy_http_port, basic_auth=auth)

    def ready_to_promote(self, env: str, release_id: str) -> str:
        """Record the gate results (and approval) a promotion of `release_id` into `env`
        needs (see the module docstring); returns the source environment."""
        target = self.spec.env(env)
        source = target.promote_from
        assert source is not None
        record_gates_passed(self.var_dir, self.spec, source, release_id)
        if target.approval:
            pipeline.approve(self.spec, self.var_dir, env, release_id, "deploy tests")
        return source

    def promote_to(self, env: str, release_id: str, **deploy: Any) -> pipeline.Promotion:
        """`wtx promote` of `release_id` into `env`, its source's gates recorded as passed."""
        source = self.ready_to_promote(env, release_id)
        return pipeline.promote(self.spec, self.backend, source, env, release_id, **deploy)

    def logs(self, env: str) -> Path:
        return self.var_dir / "envs" / env / "logs"

    def manage(self, env: str, *args: str) -> subprocess.CompletedProcess[str]:
        e = self.spec.env(env)
        res = self.backend.manage(e, self.backend.current_release(e), *args)
        assert res.returncode == 0, f"wondertix {' '.join(args)} in {env}: {res.stderr[-800:]}"
        return res

    def admin_token(self, env: str, username: str = "deploytest") -> str:
        """A superuser in `env` (made once) and a staff API token minted by `env` itself."""
        e = self.spec.env(env)
        rel = self.backend.current_release(e)
        self.backend.manage(e, rel, "createsuperuser", "--noinput", "--username", username,
                            "--email", f"{username}@example.com")  # exists already: fine
        return self.manage(env, "mint_staff_token", username).stdout.strip()

    def wtx(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The `wtx` command line, as an operator runs it."""
        env = {**os.environ, "WTX_VAR_DIR": str(self.var_dir), "WTX_ROOT": str(ROOT),
               "PYTHONPATH": str(ROOT / "src")}
        return subprocess.run([sys.executable, "-m", "wtx", *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)


def record_gates_passed(var_dir: Path, spec: Spec, env: str, release_id: str) -> None:
    run = pipeline.new_run_id()
    for gate in spec.env(env).gates:
        pipeline.record_gate(var_dir, env, release_id, pipeline.GateResult(
            gate.check, True, "recorded by the deploy tests' setup (not run)", {"setup": True}), run=run)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _fixed_ports(spec: Spec) -> list[int]:
    d = spec.defaults
    ports = [d.haproxy_http_port, d.haproxy_https_port, d.haproxy_stats_port]
    for env in spec.environments.values():
        ports += [env.app.base_port, env.app.base_port + 1]
        if env.database.port and not env.is_backup:
            ports.append(env.database.port)
    return ports


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    spec = load_spec(ROOT / "deploy" / "environments.toml")
    busy = [p for p in _fixed_ports(spec) if not _port_free(p)]
    if busy:
        pytest.fail(f"ports fixed by the environment spec are in use: {busy} (is another `wtx up` running?)")
    # Not under pytest's 0700 tmp dirs: the postgres user must reach its data directories.
    var_dir = Path(tempfile.mkdtemp(prefix="wtx-deploy-", dir="/tmp"))
    var_dir.chmod(0o755)
    clone = Path(tempfile.mkdtemp(prefix="wtx-clone-"))
    backend = LocalBackend(spec, ROOT, var_dir)
    builds = Builds(clone=clone / "repo", var_dir=var_dir)
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone / "repo")], check=True)
        started = time.monotonic()
        builds.build("base")
        FIGURES["build_seconds"] = round(time.monotonic() - started, 1)
        builds.start()  # the other releases build while the stack comes up
        started = time.monotonic()
        steps: list[str] = []
        def say(msg: str) -> None:
            steps.append(f"{time.monotonic() - started:5.1f}s {msg}")
            if msg.startswith("installing release"):  # the releases to run are chosen
                builds.dev_chose.set()

        try:
            not_started = backend.up(progress=say)
        finally:
            builds.dev_chose.set()
        # Nothing was promoted yet: `up` starts dev alone. stg, prd and bak come up as the base
        # release is promoted into them.
        assert [reason.split(":")[0] for reason in not_started] == ["stg", "prd", "bak"], not_started
        stack = Stack(spec=spec, backend=backend, var_dir=var_dir, builds=builds, figures=FIGURES)
        stack.promote_to("stg", builds.ids["base"])
        stack.promote_to("prd", builds.ids["base"])
        FIGURES["up_seconds"] = round(time.monotonic() - started, 1)
        FIGURES["up_steps"] = steps
        yield stack
    finally:
        try:
            backend.down()
        finally:
            if builds.thread is not None:
                builds.thread.join(300)
            kill_processes_naming(var_dir)
            shutil.rmtree(var_dir, ignore_errors=True)
            shutil.rmtree(clone, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("wtx deploy figures")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {value}")
    out = ROOT / "var" / "deploy-figures.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(FIGURES, indent=2) + "\n")
        terminalreporter.write_line(f"(also written to {out})")
    except OSError:
        pass
