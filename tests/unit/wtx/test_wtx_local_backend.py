"""The local backend's rendered files and bookkeeping, without starting the stack.

(The stack itself — supervisord, HAProxy, PostgreSQL, gunicorn — is tested in tests/deploy.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gunicorn.app.base import Application

from wtx import ledger
from wtx.backends.local import LocalBackend
from wtx.backends.local.backend import Slots
from wtx.backends.local.gunicorn import GunicornConfig, write_config
from wtx.release import Release


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _ConfigOnly(Application):
    """gunicorn reading a config file exactly as `gunicorn --config FILE` does (validating
    every setting and hook), without running anything."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        super().__init__()

    def init(self, parser, opts, args):  # noqa: ANN001 - gunicorn's signature
        return None

    def load_config(self) -> None:
        self.load_config_from_file(self.path)

    def load(self):  # noqa: ANN201
        raise AssertionError("not loading an app")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake_release(var_dir: Path, rid: str) -> Release:
    path = var_dir / "releases" / rid
    (path / "static").mkdir(parents=True)
    (path / "requirements.lock").write_text("django==5.2\n")
    files = {"requirements.lock": hashlib.sha256(b"django==5.2\n").hexdigest()}
    (path / "manifest.json").write_text(json.dumps({"id": rid, "files": files}))
    for p in (path / "requirements.lock", path / "manifest.json"):
        p.chmod(0o444)
    for d in (path / "static", path):
        d.chmod(0o555)
    return Release(id=rid, path=path, manifest={"id": rid, "files": files})


def _tree(path: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(path)): (mode(p), p.read_bytes() if p.is_file() else b"")
            for p in sorted(path.rglob("*"))}


# --------------------------------------------------------------------------------------------
# gunicorn config


def test_the_rendered_gunicorn_config_is_what_gunicorn_reads(tmp_path):
    conf = write_config(tmp_path / "run" / "gunicorn-green.conf.py", GunicornConfig(
        env="prd", slot="green", port=9301, workers=2))
    cfg = _ConfigOnly(conf).cfg
    assert cfg.wsgi_app == "wondertix.wsgi:application"
    assert cfg.bind == ["127.0.0.1:9301"]
    assert cfg.workers == 2 and cfg.worker_class_str == "gthread" and cfg.threads == 4
    assert cfg.preload_app is True and cfg.proc_name == "wondertix-prd-green"
    assert cfg.accesslog == "-", "to stdout: supervisord writes and rotates the file"
    assert cfg.logger_class.__name__ == "QuietProbesLogger"
    assert cfg.access_log_format.startswith("env=prd slot=green ")
    assert "rid=%({x-request-id}i)s" in cfg.access_log_format
    assert cfg.child_exit.__name__ == "child_exit"
    # Nothing of a release in it: the same file for whichever release the slot holds.
    assert "releases" not in conf.read_text() and "venv" not in conf.read_text()


def test_child_exit_drops_only_the_dead_workers_live_gauges(tmp_path, monkeypatch):
    conf = write_config(tmp_path / "gunicorn.conf.py", GunicornConfig(
        env="prd", slot="blue", port=9300, workers=2))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in ("gauge_livemax_111.db", "gauge_livesum_111.db", "counter_111.db",
                 "gauge_livemax_222.db", "counter_222.db"):
        (metrics / name).write_bytes(b"x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics))
    hook = _ConfigOnly(conf).cfg.child_exit

    class Worker:
        pid = 111

    hook(None, Worker())
    # The dead worker's live gauges are gone; what it counted stays (counters add up).
    assert sorted(p.name for p in metrics.iterdir()) == [
        "counter_111.db", "counter_222.db", "gauge_livemax_222.db"]
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    hook(None, type("W", (), {"pid": 222})())  # metrics off: nothing to do, nothing fails
    assert (metrics / "gauge_livemax_222.db").exists()


APP = '''\
import os
from prometheus_client import Gauge

LIVE = Gauge("test_live", "one per worker", multiprocess_mode="livemax")


def app(environ, start_response):
    LIVE.set(1)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''


class _Request:
    """What gunicorn's response reads of the request it answers."""

    def __init__(self, method: str = "GET") -> None:
        self.method, self.version, self.headers = method, (1, 1), []

    def should_close(self) -> bool:
        return False


class _RecordingSocket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


@pytest.mark.parametrize("framing", ["length", "chunked", "head"])
def test_an_answer_leaves_the_app_server_in_one_write(tmp_path, monkeypatch, framing):
    # gunicorn writes head and body apart; killed between the two, an app server gave the proxy
    # a head without its body. The rendered config makes each answer one write.
    import runpy

    from gunicorn.config import Config
    from gunicorn.http import wsgi

    monkeypatch.setattr(wsgi, "Response", wsgi.Response)  # the config replaces it; restored after
    conf = write_config(tmp_path / "gunicorn.conf.py", GunicornConfig(env="prd", slot="blue", port=9301, workers=2))
    runpy.run_path(str(conf))
    assert wsgi.Response.__name__ == "OneWriteResponse"

    sock = _RecordingSocket()
    resp = wsgi.Response(_Request("HEAD" if framing == "head" else "GET"), sock, Config())
    body = b'{"order": "A1B2C3", "tickets": 2}'
    headers = [("Content-Type", "application/json")]
    if framing != "chunked":
        headers.append(("Content-Length", str(len(body))))
    resp.start_response("201 Created", headers)
    for part in (body[:10], body[10:]) if framing == "chunked" else (body,):
        resp.write(part)
    resp.close()

    head, _, rest = sock.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created") and b"Content-Type: application/json" in head
    if framing == "length":
        assert sock.writes == [sock.writes[0]] and rest == body  # one write: head and body
    elif framing == "head":
        assert sock.writes == [sock.writes[0]] and rest == b""  # a HEAD answer: the head alone, once
    else:
        assert b"Transfer-Encoding: chunked" in head and rest == b"A\r\n" + body[:10] + b"\r\n"
        assert b"".join(sock.writes[1:]) == b"%X\r\n%s\r\n0\r\n\r\n" % (len(body) - 10, body[10:])


def test_gunicorn_with_the_config_forgets_a_killed_worker(tmp_path):
    """A real gunicorn with the rendered config: a worker killed with SIGKILL is replaced, and
    its live gauge file disappears from the multiprocess directory (the hook ran)."""
    (tmp_path / "app_mod.py").write_text(APP)
    port = _free_port()
    conf = write_config(tmp_path / "gunicorn.conf.py", GunicornConfig(
        env="dev", slot="blue", port=port, workers=2))
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(conf), "--preload", "app_mod:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        def pid_answering() -> int | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    return int(resp.read())
            except OSError:
                return None

        pids: set[int] = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pids) < 2:
            pid = pid_answering()
            if pid:
                pids.add(pid)
            else:
                time.sleep(0.1)
        assert len(pids) == 2, f"both workers should answer, saw {pids}"
        assert {f"gauge_livemax_{p}.db" for p in pids} <= {p.name for p in metrics.iterdir()}

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (metrics / f"gauge_livemax_{victim}.db").exists():
            time.sleep(0.1)
        assert not (metrics / f"gauge_livemax_{victim}.db").exists()
        assert (metrics / f"gauge_livemax_{max(pids)}.db").exists()
        assert proc.poll() is None, "the master keeps running and replaces the worker"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# --------------------------------------------------------------------------------------------
# Slots: command, metrics directory, environment directory


def test_a_slot_starts_with_an_empty_metrics_directory_of_its_own(spec, tmp_path):
    var_dir = tmp_path / "var"
    backend = LocalBackend(spec, tmp_path, var_dir)
    rel = _fake_release(backend.var_dir, "0123456789ab")
    prd = spec.env("prd")
    blue, green = backend.layout.metrics_dir("prd", "blue"), backend.layout.metrics_dir("prd", "green")
    assert blue != green
    for d in (blue, green):
        d.mkdir(parents=True)
        (d / "counter_4242.db").write_bytes(b"from an earlier run")

    command = backend.slot_command(prd, "blue", rel)
    conf = backend.layout.gunicorn_conf("prd", "blue")
    assert f"--config {conf}" in command
    assert str(backend.layout.release_venv(rel.id) / "bin" / "python") in command
    assert str(rel.path / "venv") not in command
    # Run it as supervisord would. The venv is not installed here, so gunicorn's exec fails —
    # after the slot's start steps ran.
    res = subprocess.run(shlex.split(command), capture_output=True, text=True)
    assert res.returncode != 0 and "python" in res.stderr
    assert blue.is_dir() and list(blue.iterdir()) == []
    assert (green / "counter_4242.db").exists(), "the other slot's directory is its own"
    assert f"127.0.0.1:{prd.app_port(0)}" in conf.read_text()
    # The env file holds the slot's own metrics directory and secrets: 0600.
    env_file = backend.layout.slot_env_file("prd", "blue")
    assert mode(env_file) == 0o600
    assert f"PROMETHEUS_MULTIPROC_DIR={blue}" in env_file.read_text()


def test_every_environment_directory_is_0711_including_a_backups(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    rel = _fake_release(backend.var_dir, "0123456789ab")
    for name in ("prd", "bak", "dev"):
        backend.app_values(spec.env(name), rel, "blue")
        assert mode(backend.layout.env_dir(name)) == 0o711, name
    assert mode(backend.var_dir / "envs" / "prd" / "secrets.env") == 0o600
    assert not (backend.var_dir / "envs" / "bak" / "secrets.env").exists()


# --------------------------------------------------------------------------------------------
# Installed releases: var/venvs/<id>, pruned; release directories never touched


def test_installs_live_outside_the_read_only_release_directories(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    assert backend.layout.release_venv("0123456789ab") == backend.var_dir / "venvs" / "0123456789ab"
    assert backend.layout.releases_dir not in backend.layout.release_venv("0123456789ab").parents


def test_pruning_removes_only_venvs_no_environment_can_go_back_to_and_never_release_contents(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    var = backend.var_dir
    ids = [f"{n:012x}" for n in range(1, 7)]
    rels = {rid: _fake_release(var, rid) for rid in ids}
    before = {rid: _tree(rel.path) for rid, rel in rels.items()}
    for rid in ids:
        (backend.layout.release_venv(rid) / "bin").mkdir(parents=True)
    (var / "venvs" / f".{ids[0]}.install.lock").write_text("")
    # prd: slots hold ids[4] (active) and ids[3]; it ran ids[1..4] in that order.
    backend.save_slots("prd", Slots(active="blue", releases={"blue": ids[4], "green": ids[3]},
                                    running={"blue": True}))
    backend.save_slots("bak", Slots(active="blue", releases={"blue": ids[4]}, running={"blue": True}))
    for rid in ids[1:5]:
        ledger.append(var, ledger.DEPLOY, env="prd", release=rid)
    # stg runs ids[5]; nobody runs ids[0] or ids[2] any more (release_keep is 2 or more).
    backend.save_slots("stg", Slots(active="blue", releases={"blue": ids[5]}, running={"blue": True}))

    removed = backend.prune_installs()

    keep = spec.defaults.release_keep
    expected_kept = {ids[3], ids[4], ids[5]} | set(list(reversed(ids[1:5]))[:keep])
    assert set(removed) == set(ids) - expected_kept
    assert ids[0] in removed  # held by no slot, not among prd's recent ones
    for rid in ids:
        assert backend.layout.release_venv(rid).exists() == (rid in expected_kept)
        assert _tree(rels[rid].path) == before[rid], f"release {rid} changed"
    assert (var / "venvs" / f".{ids[0]}.install.lock").exists()
    assert backend.prune_installs() == []


@pytest.mark.parametrize("slot", ["blue", "green"])
def test_the_slot_command_never_writes_into_the_release(spec, tmp_path, slot):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    rel = _fake_release(backend.var_dir, "0123456789ab")
    before = _tree(rel.path)
    backend.slot_command(spec.env("stg"), slot, rel)
    assert _tree(rel.path) == before


# --------------------------------------------------------------------------------------------
# Status


def test_status_of_a_stack_that_is_not_running_names_every_field_and_why_it_is_down(spec, tmp_path):
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    backend.save_slots("prd", Slots(active="green", releases={"green": "0123456789ab"}, running={"green": True}))
    ledger.append(backend.var_dir, ledger.DEPLOY, env="prd", release="0123456789ab")
    ledger.append(backend.var_dir, "db-seed", env="prd", release="0123456789ab")
    rows = {s.env: s.as_dict() for s in backend.status()}
    assert list(rows) == ["dev", "stg", "prd", "bak"]
    for row in rows.values():
        assert set(row) == {"env", "url", "release", "health", "database", "last_deploy", "warm", "backups",
                            "database_ha"}
        assert row["warm"] == ""  # nothing kept warm
        assert row["health"] == "down (supervisord not running)"
    assert rows["prd"]["url"] == "https://wondertix.localhost:8443"
    # Only prd declares backups; with none taken yet it is stale (`wtx status` exits 1).
    assert rows["prd"]["backups"]["stale"] is True and rows["prd"]["backups"]["problem"] == "no backup yet"
    assert [name for name, row in rows.items() if row["backups"] is not None] == ["prd"]
    # prd owns the HA database (bak's copy is a member of it): judged once, on prd's row.
    assert [name for name, row in rows.items() if row["database_ha"] is not None] == ["prd"]
    assert rows["bak"]["url"] == "https://wondertix.localhost:8443 (backup of prd)"
    assert rows["prd"]["release"] == "0123456789ab" and rows["dev"]["release"] == "-"
    assert rows["stg"]["database"] == "postgresql wondertix_stg@127.0.0.1:5533/wondertix_stg"
    assert rows["bak"]["database"].endswith("(prd's cluster)")
    assert rows["dev"]["database"].startswith("sqlite ")
    # "last deploy" is the last deploy or rollback, not any ledger record (a seed is not one).
    assert rows["prd"]["last_deploy"].endswith("deploy 0123456789ab")
    assert rows["dev"]["last_deploy"] == "-"


def _stand_in_slot(answers: list[tuple[int, bytes]]):
    """A slot's stand-in answering `answers` in turn (the last one again once they run out),
    and the list of the statuses it gave."""
    import http.server

    given: list[int] = []

    class Slot(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, body = answers[min(len(given), len(answers) - 1)]
            given.append(status)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Slot, given


@pytest.mark.parametrize(("answers", "verdict"), [
    # One failed probe between passing ones is a blip: the balancer keeps the server, so does status.
    ([(503, b'{"database": "unreachable"}'), (200, b'{"status": "ok"}')], 200),
    # `fall` failures in a row are a verdict, and the answer says why.
    ([(503, b'{"status": "unavailable", "database": "unreachable", "error": "OperationalError"}')], 503),
])
def test_status_judges_readiness_as_the_load_balancer_does(spec, tmp_path, monkeypatch, answers, verdict):
    from tests.support.loopback_http import serving

    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    handler, given = _stand_in_slot(answers)
    with serving(handler) as port:
        monkeypatch.setattr(backend, "address", lambda env: "127.0.0.1")
        monkeypatch.setattr(backend, "port", lambda env, slot: port)
        status, said = backend.readiness(spec.environments["prd"], "blue")
    assert status == verdict
    fall = spec.defaults.health_check.fall
    if verdict == 200:
        assert given == [503, 200]
    else:
        assert given == [503] * fall and "OperationalError" in said
