"""The recovery jobs (`wondertix run_jobs`) run as a supervisord program in every environment,
on the release on traffic, at the intervals the spec declares."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from pathlib import Path

import pytest

from wtx.backends.local import LocalBackend
from wtx.backends.local.backend import Slots
from wtx.backends.local.supervisor import render_programs
from wtx.release import Release
from wtx.render.envfile import app_environment, default_database_url
from wtx.secrets import ensure_secrets
from wtx.spec import SpecError, load_spec


def _release_with_fake_manage(backend: LocalBackend, rid: str) -> Release:
    """A release whose installed `wondertix` only prints what it was started with."""
    path = backend.var_dir / "releases" / rid
    path.mkdir(parents=True)
    (path / "requirements.lock").write_text("django==5.2\n")
    files = {"requirements.lock": hashlib.sha256(b"django==5.2\n").hexdigest()}
    (path / "manifest.json").write_text(json.dumps({"id": rid, "files": files}))
    manage = backend.layout.release_venv(rid) / "bin" / "wondertix"
    manage.parent.mkdir(parents=True)
    manage.write_text('#!/bin/sh\necho "$WONDERTIX_ENV $*"\n')
    manage.chmod(0o755)
    return Release(id=rid, path=path, manifest={"id": rid, "files": files})


def test_every_environment_runs_the_jobs_program_at_the_spec_intervals(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    rel = _release_with_fake_manage(backend, "0123456789ab")
    jobs = spec.defaults.jobs
    for name in spec.names():
        env = spec.env(name)
        assert [p.name for p in backend.env_programs(env) if p.name.endswith("-jobs")] == [], "no release on traffic yet"
        backend.save_slots(name, Slots(active="green", releases={"green": rel.id}, running={"green": True}))

        program = next(p for p in backend.env_programs(env) if p.name == f"{name}-jobs")
        assert program.autostart
        assert f"[program:{name}-jobs]" in render_programs(backend.env_programs(env))
        # Run the command as supervisord would: the environment's variables, the spec's intervals.
        res = subprocess.run(shlex.split(program.command), capture_output=True, text=True, check=True)
        assert res.stdout.split() == [
            name, "run_jobs",
            "--outbox-every", str(jobs.outbox_every_s),
            "--reconcile-payments-every", str(jobs.reconcile_payments_every_s),
        ]


def test_the_jobs_program_follows_the_active_slot_and_stops_with_it(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    old = _release_with_fake_manage(backend, "0123456789ab")
    new = _release_with_fake_manage(backend, "ba9876543210")
    prd = spec.env("prd")
    backend.save_slots("prd", Slots(active="blue", releases={"blue": old.id, "green": new.id}, running={"blue": True, "green": True}))
    assert str(backend.layout.release_venv(old.id)) in next(p for p in backend.env_programs(prd) if p.name == "prd-jobs").command
    backend.save_slots("prd", Slots(active="green", releases={"blue": old.id, "green": new.id}, running={"blue": True, "green": False}))
    program = next(p for p in backend.env_programs(prd) if p.name == "prd-jobs")
    assert str(backend.layout.release_venv(new.id)) in program.command
    assert not program.autostart  # the environment is stopped: so are its jobs


@pytest.mark.parametrize("field,value", [("outbox_every_s", 0), ("reconcile_payments_every_s", -5), ("outbox_every", 5)])
def test_a_jobs_interval_that_makes_no_sense_is_refused(raw_spec, write_spec, field, value):
    raw_spec["defaults"]["jobs"] = {**raw_spec["defaults"]["jobs"], field: value}
    path: Path = write_spec(raw_spec)
    with pytest.raises(SpecError, match="jobs"):
        load_spec(path)


def test_in_every_environment_requests_only_queue_and_the_jobs_program_sends(raw_spec, write_spec, var_dir):
    raw_spec["environments"]["stg"]["app"]["email"] = "smtp"
    raw_spec["environments"]["stg"]["app"]["email_catch_all_relay"] = "127.0.0.1:1025"  # stg holds a copy of prd
    spec = load_spec(write_spec(raw_spec))
    for name, inline in (("stg", "false"), ("dev", "false"), ("prd", "false")):
        env = spec.env(name)
        secrets = ensure_secrets(env, spec, var_dir)
        values = app_environment(env, spec, secrets, var_dir=var_dir, database_url=default_database_url(env, spec, secrets, var_dir))
        assert values.get("OUTBOX_SEND_ON_COMMIT") == inline, name
