"""Every log file is rotated (sizes from the spec's logging section), and HAProxy's health
and readiness checks stay out of the access logs."""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from wtx.backends.local import LocalBackend
from wtx.backends.local.backend import Slots
from wtx.backends.local.gunicorn import GunicornConfig, write_config
from wtx.spec import load_spec


def _release(var_dir: Path, rid: str) -> None:
    path = var_dir / "releases" / rid
    (path / "static").mkdir(parents=True)
    (path / "requirements.lock").write_text("django==5.2\n")
    files = {"requirements.lock": hashlib.sha256(b"django==5.2\n").hexdigest()}
    (path / "manifest.json").write_text(json.dumps({"id": rid, "files": files}))


def _sections(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return {name: dict(parser[name]) for name in parser.sections()}


def test_every_program_log_is_rotated_at_the_size_the_spec_gives(raw_spec, write_spec, tmp_path):
    raw_spec["environments"]["prd"]["logging"].update(max_file_mb=7, keep_files=3)
    raw_spec["environments"]["stg"]["logging"].update(max_file_mb=9, keep_files=2)
    spec = load_spec(write_spec(raw_spec))
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    _release(backend.var_dir, "0123456789ab")
    backend.save_slots("prd", Slots(active="blue", releases={"blue": "0123456789ab", "green": "0123456789ab"},
                                    running={"blue": True}))
    backend.supervisor.write_programs("prd", backend.env_programs(spec.env("prd")))
    programs = _sections(backend.layout.program_file("prd").read_text())
    logs = backend.layout.logs_dir("prd")

    ha = spec.env("prd").database.ha
    assert ha is not None  # prd's database: Patroni members and etcd, no single cluster
    database = {f"program:prd-patroni-{m.host}" for m in ha.members} | {f"program:prd-etcd-{e.host}" for e in ha.etcd}
    assert set(programs) == {"program:prd-blue", "program:prd-green", "program:prd-jobs", "program:prd-backups"} | database
    for name, section in programs.items():
        assert section["stdout_logfile_maxbytes"] == "7MB", name
        assert section["stdout_logfile_backups"] == "3", name
    for slot in ("blue", "green"):
        section = programs[f"program:prd-{slot}"]
        # gunicorn's access lines (stdout) and the app's log lines (stderr): one writer
        # (supervisord) per file, so rotating never loses or splits a line.
        assert section["stdout_logfile"] == str(logs / f"access-{slot}.log")
        assert section["redirect_stderr"] == "false"
        assert section["stderr_logfile"] == str(logs / f"app-{slot}.log")
        assert section["stderr_logfile_maxbytes"] == "7MB"
        assert section["stderr_logfile_backups"] == "3"
    for m in ha.members:
        assert programs[f"program:prd-patroni-{m.host}"]["stdout_logfile"] == str(logs / f"patroni-{m.host}.log")
    for e in ha.etcd:
        assert programs[f"program:prd-etcd-{e.host}"]["stdout_logfile"] == str(logs / f"etcd-{e.host}.log")

    # HAProxy's log holds every environment's requests: the largest size any one asks for.
    haproxy = _sections(backend.haproxy_program().render())["program:haproxy"]
    assert haproxy["stdout_logfile"] == str(backend.layout.haproxy_log)
    assert haproxy["stdout_logfile_maxbytes"] == "20MB"  # dev's default beats prd's 7 and stg's 9
    assert haproxy["stdout_logfile_backups"] == "5"
    # supervisord's own log too.
    backend.supervisor.write_main_conf()
    main = _sections(backend.layout.supervisor_conf.read_text())["supervisord"]
    assert main["logfile_maxbytes"] and main["logfile_backups"]


def test_no_log_file_is_written_by_the_app_itself(spec, tmp_path):
    """Several workers appending to one file cannot rotate it safely: the app logs to stderr."""
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    _release(backend.var_dir, "0123456789ab")
    rel = backend.release("0123456789ab")
    for name in spec.names():
        assert "LOG_FILE" not in backend.app_values(spec.env(name), rel, "blue")


APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_and_readiness_probes_stay_out_of_the_access_log_and_client_requests_stay_in(tmp_path):
    (tmp_path / "app_mod.py").write_text(APP)
    port = _free_port()
    conf = write_config(tmp_path / "gunicorn.conf.py", GunicornConfig(
        env="prd", slot="blue", port=port, workers=1, quiet_paths=("/healthz", "/readyz")))
    access = tmp_path / "access.log"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    with open(access, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(conf), "app_mod:app"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def get(path: str, rid: str | None = None) -> int | None:
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         headers={"X-Request-Id": rid} if rid else {})
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    return int(resp.status)
            except OSError:
                return None

        deadline = time.monotonic() + 30
        while get("/healthz") != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(5):  # HAProxy's checks: straight to the server, no request id
            assert get("/healthz") == 200 and get("/readyz") == 200
        assert get("/healthz", rid="client-health-0001") == 200  # a client's, through HAProxy
        assert get("/events", rid="client-page-00002") == 200
        assert get("/events") == 200

        def lines() -> list[str]:
            return access.read_text().splitlines()

        while len(lines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    logged = lines()
    assert len(logged) == 3, logged
    assert any("rid=client-health-0001" in ln and "GET /healthz" in ln for ln in logged)
    assert any("rid=client-page-00002" in ln for ln in logged)
    assert not any("/readyz" in ln for ln in logged)
    assert sum("GET /events" in ln for ln in logged) == 2
    assert all(ln.startswith("env=prd slot=blue ") for ln in logged)
