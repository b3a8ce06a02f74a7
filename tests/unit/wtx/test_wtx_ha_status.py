"""`wtx status` of prd's HA database without services: the verdict from Patroni's view of the
cluster (fakes of its `GET /cluster` members) and the CLI's exit code. The same against a
running cluster (the standby stopped, then started) is tests/integration/test_ha_backups.py."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli
from wtx.backends import EnvStatus
from wtx.backends.local import hastatus

MIB = 1_048_576
HOSTS = ["prd-db", "bak-db"]


def leader(name="prd-db"):
    return {"name": name, "role": "leader", "state": "running", "timeline": 3}


def standby(name="bak-db", lag=0, role="sync_standby", state="streaming"):
    return {"name": name, "role": role, "state": state, "lag": lag}


def verdict(*found, synchronous=True, limit=MIB):
    return hastatus.evaluate(list(found), HOSTS, synchronous=synchronous, max_lag_bytes=limit)


def test_a_leader_and_a_streaming_synchronous_standby_is_in_sync():
    state = verdict(leader(), standby(lag=4096))
    assert state["in_sync"] is True and state["problem"] == ""
    assert state["leader"] == "prd-db" and state["sync_standbys"] == ["bak-db"]
    assert [(m["name"], m["role"], m["lag_bytes"], m["sync"]) for m in state["members"]] == [
        ("prd-db", "leader", None, False), ("bak-db", "sync_standby", 4096, True)]


def test_after_a_failover_the_old_leader_as_sync_standby_is_in_sync_too():
    state = verdict(leader("bak-db"), standby("prd-db"))
    assert state["in_sync"] and state["leader"] == "bak-db"


@pytest.mark.parametrize(("found", "words"), [
    ((leader(),), "no synchronous standby (bak-db absent not answering)"),
    ((leader(), standby(role="replica")), "no synchronous standby (bak-db replica streaming)"),
    ((leader(), standby(state="starting", lag="unknown")), "no synchronous standby (bak-db sync_standby starting)"),
    ((leader(), standby(lag=3 * MIB)), "bak-db is 3.0 MiB behind the leader (limit 1 MiB)"),
    ((standby("prd-db", role="replica"), standby()), "no leader"),
])
def test_bak_out_of_sync_is_named_with_the_reason(found, words):
    state = verdict(*found)
    assert state["in_sync"] is False
    assert words in state["problem"], state["problem"]


def test_a_database_that_does_not_answer_at_all_is_down_not_out_of_sync():
    """The health column says the environment is down; status fails on sync only for a
    database that runs (as it reads the WAL archive's age only from a running one)."""
    state = verdict()
    assert state["in_sync"] is None and "no Patroni member answers" in state["problem"]


def test_without_synchronous_replication_a_streaming_replica_within_the_limit_is_enough():
    assert verdict(leader(), standby(role="replica"), synchronous=False)["in_sync"] is True
    assert "bak-db is not answering" in verdict(leader(), synchronous=False)["problem"]


def test_the_lag_limit_is_inclusive(spec):
    ha = spec.env("prd").database.ha
    assert ha is not None
    found = [leader(), standby(lag=ha.max_lag_mb * MIB)]
    assert hastatus.evaluate(found, HOSTS, synchronous=True, max_lag_bytes=ha.max_lag_mb * MIB)["in_sync"]
    found = [leader(), standby(lag=ha.max_lag_mb * MIB + 1)]
    assert not hastatus.evaluate(found, HOSTS, synchronous=True, max_lag_bytes=ha.max_lag_mb * MIB)["in_sync"]


# ------------------------------------------------------------------------------ CLI
class FakeBackend:
    state: dict = {}

    def __init__(self, spec, root, var_dir):
        self.spec = spec

    def status(self):
        backups = {"max_age_h": 26, "last_backup": "F (full)", "last_backup_age_h": 2.0,
                   "wal_archive_age_s": 12.0, "stale": False, "problem": ""}
        return [EnvStatus(env="prd", url="u", release="r", health="healthy", database="d", last_deploy="-",
                          backups=backups, database_ha=FakeBackend.state),
                EnvStatus(env="bak", url="u", release="r", health="healthy", database="d", last_deploy="-")]


@pytest.fixture
def run(var_dir, monkeypatch):
    monkeypatch.setattr(cli, "_backend", lambda ctx: FakeBackend(ctx.spec, ctx.root, ctx.var_dir))
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(var_dir), *args])


def test_status_exits_1_naming_why_bak_is_not_in_sync_and_0_once_it_is(run):
    FakeBackend.state = verdict(leader(), standby(role="replica"))
    red = run("status")
    assert red.exit_code == 1
    assert "prd: database no synchronous standby (bak-db replica streaming)" in " ".join(red.stderr.split())
    assert "NOT IN SYNC" in red.stdout and "bak-db: replica streaming, lag 0 B" in red.stdout
    as_json = run("status", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)[0]["database_ha"]["in_sync"] is False

    FakeBackend.state = verdict(leader(), standby())
    green = run("status", "--json")
    assert green.exit_code == 0, green.stderr
    row = json.loads(green.stdout)[0]["database_ha"]
    assert row["leader"] == "prd-db" and row["sync_standbys"] == ["bak-db"]



def test_apps_on_the_ha_database_report_its_replication_and_the_others_do_not(spec, tmp_path):
    from wtx.render.envfile import app_environment

    secrets = {"SECRET_KEY": "k", "STAFF_API_TOKEN_KEY": "t", "DB_PASSWORD": "p"}
    flags = {name: app_environment(spec.env(name), spec, secrets, var_dir=tmp_path, database_url="x",
                                   slot="blue")["DATABASE_REPLICATION_METRICS"] for name in spec.names()}
    assert {n for n, v in flags.items() if v == "true"} == {n for n in spec.names() if spec.database_ha(spec.env(n))}
    assert flags["prd"] == flags["bak"] == "true" and flags["stg"] == "false"


@pytest.mark.parametrize(("health", "quorum", "words"), [
    ({"prd-db": True, "bak-db": True, "witness": True}, True, ""),
    ({"prd-db": True, "bak-db": True, "witness": False}, True,
     "etcd on witness not answering: 2 of 3 keep the quorum; one more loss stops every write"),
    ({"prd-db": False, "bak-db": True, "witness": False}, False, "etcd has no quorum (1 of 3 answer)"),
])
def test_etcd_members_down_are_named_with_what_one_more_loss_would_do(health, quorum, words):
    found = hastatus.etcd_verdict(health)
    assert found["quorum"] is quorum and found["healthy"] == sum(health.values())
    assert found["warning"] == words if not words else words in found["warning"]


def test_an_etcd_member_down_shows_in_status_without_failing_it(run):
    FakeBackend.state = {**verdict(leader(), standby()),
                         "etcd": hastatus.etcd_verdict({"prd-db": True, "bak-db": True, "witness": False})}
    res = run("status")
    assert res.exit_code == 0, res.stderr
    assert "etcd on witness not answering" in " ".join(res.stdout.split())


def test_etcd_health_asks_each_member_and_counts_a_silent_one_as_down():
    """Against a stand-in answering etcd's /health on one port; the other member's port is closed."""
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from types import SimpleNamespace

    from wtx.backends.local import dbha

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            body = b'{"health":"true"}' if self.path == "/health" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    members = [SimpleNamespace(host="up", client_port=server.server_address[1]),
               SimpleNamespace(host="down", client_port=closed)]
    cluster = SimpleNamespace(ha=SimpleNamespace(etcd=members), address=lambda host: "127.0.0.1")
    try:
        assert dbha.etcd_health(cluster) == {"up": True, "down": False}  # type: ignore[arg-type]
    finally:
        server.shutdown()
