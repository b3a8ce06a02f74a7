"""`wtx up` and isolation: four environments side by side, each its own world."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from deploy_support import Site, direct, log_text, poll

from wtx.backends import DeployError
from wtx.backends.local.layout import SLOTS
from wtx.secrets import ensure_secrets

pytestmark = pytest.mark.slow


def _rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def _log_has(logs: Path, kind: str, needle: str) -> bool:
    return needle in log_text(logs, kind)


def test_up_brings_all_four_environments_up_each_healthy_at_its_own_hostname_on_its_own_database(stack):
    statuses = {s.env: s for s in stack.backend.status()}
    assert set(statuses) == {"dev", "stg", "prd", "bak"}
    for name, st in statuses.items():
        assert st.health == "healthy", f"{name}: {st}"
        assert st.release == stack.builds.ids["base"]
    assert statuses["dev"].url == "http://dev.wondertix.localhost:8080"
    assert statuses["stg"].url == "http://stg.wondertix.localhost:8080"
    assert statuses["prd"].url == "https://wondertix.localhost:8443"
    assert "backup of prd" in statuses["bak"].url
    assert statuses["dev"].database.startswith("sqlite ")
    assert "127.0.0.1:5533/wondertix_stg" in statuses["stg"].database
    assert "127.0.0.1:5534/wondertix_prd" in statuses["prd"].database
    assert "prd's cluster" in statuses["bak"].database

    # The operator's view: `wtx status --json` says the same.
    res = stack.wtx("status", "--json")
    assert res.returncode == 0, res.stderr
    rows = {row["env"]: row for row in json.loads(res.stdout)}
    assert {name: row["health"] for name, row in rows.items()} == dict.fromkeys(statuses, "healthy")

    # Each hostname reaches its own environment's app servers (their access logs say so).
    for env in ("dev", "stg", "prd"):
        rid = _rid()
        reply = stack.site(env).get("/healthz", headers={"X-Request-Id": rid})
        assert reply.status == 200, (env, reply.status, reply.text[:200])
        assert poll(lambda env=env, rid=rid: _log_has(stack.logs(env), "access", rid), timeout=5)
        for other in {"dev", "stg", "prd", "bak"} - {env}:
            assert not _log_has(stack.logs(other), "access", rid)

    # Each database is its own: dev's SQLite file, stg's and prd's clusters, all migrated.
    dev_db = Path(statuses["dev"].database.removeprefix("sqlite "))
    with sqlite3.connect(dev_db) as conn:
        assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0
    for env, port in (("stg", 5533), ("prd", 5534)):
        db = stack.spec.env(env).database
        with psycopg.connect(host="127.0.0.1", port=port, user=db.role, dbname=db.name,
                             password=stack.secrets(env)["DB_PASSWORD"], connect_timeout=5) as conn:
            assert conn.execute("SELECT current_database()").fetchone()[0] == db.name
            assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 0


@pytest.mark.parametrize(("who", "target"), [("stg", "prd"), ("prd", "stg")])
def test_one_environments_database_credentials_are_refused_by_anothers_cluster(stack, who, target):
    mine = stack.spec.env(who).database
    theirs = stack.spec.env(target).database
    password = stack.secrets(who)["DB_PASSWORD"]
    # Control: the credentials work on their own cluster.
    with psycopg.connect(host="127.0.0.1", port=mine.port, user=mine.role, dbname=mine.name,
                         password=password, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # Refused by the other cluster, whichever database they ask for.
    for dbname in (mine.name, theirs.name, "postgres"):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=theirs.port, user=mine.role, dbname=dbname,
                            password=password, connect_timeout=5).close()


def test_stg_and_prd_own_different_keys_and_a_stg_staff_token_is_rejected_by_prd(stack):
    stg, prd = stack.secrets("stg"), stack.secrets("prd")
    assert stg["SECRET_KEY"] != prd["SECRET_KEY"]
    assert stg["STAFF_API_TOKEN_KEY"] != prd["STAFF_API_TOKEN_KEY"]
    assert stg["DB_PASSWORD"] != prd["DB_PASSWORD"]

    token = stack.admin_token("stg")
    stack.admin_token("prd")  # the same username exists in prd: only the signature differs
    bearer = {"Authorization": f"Bearer {token}"}

    # stg's own app accepts it. (In front of stg, HAProxy's basic auth owns the Authorization
    # header, so the staff API is reached here the way HAProxy's checks reach stg: directly.)
    stg_env = stack.spec.env("stg")
    active = stack.backend.slots("stg").active
    stg_app = direct(stg_env.app_port(SLOTS.index(active)), stg_env.hostnames[0])
    whoami = stg_app.get("/api/v1/staff/whoami", headers=bearer)
    assert whoami.status == 200, whoami.text[:300]
    assert whoami.json()["username"] == "deploytest"

    # prd refuses it, through the front door as a client would send it.
    refused = stack.site("prd").get("/api/v1/staff/whoami", headers=bearer)
    assert refused.status == 401, refused.text[:300]


def test_a_request_to_stg_from_outside_its_allowlist_gets_403_from_haproxy_and_never_reaches_the_app(stack):
    site = stack.site("stg")
    logs = stack.logs("stg")

    outside = _rid()
    reply = site.get("/", headers={"X-Request-Id": outside}, source="127.0.0.2")
    assert reply.status == 403
    assert "forbidden_source" not in reply.text  # HAProxy's answer, not the app's

    inside = _rid()
    ok = site.get("/healthz", headers={"X-Request-Id": inside}, source="127.0.0.1")
    assert ok.status == 200
    # The allowed request is logged by the app; by then the refused one would be too.
    assert poll(lambda: _log_has(logs, "access", inside), timeout=5)
    assert not _log_has(logs, "access", outside)
    assert not any(outside in p.read_text(errors="replace") for p in logs.glob("*.log"))


def test_stg_without_basic_auth_gets_401(stack):
    site = stack.site("stg")
    anonymous = site.get("/", auth=False)
    assert anonymous.status == 401
    assert anonymous.headers.get("www-authenticate", "").lower().startswith("basic")
    wrong = Site(host=site.host, port=site.port, basic_auth=(site.basic_auth[0], "not-the-password"))
    assert wrong.get("/").status == 401
    assert site.get("/healthz").status == 200


def test_an_error_shows_the_debug_page_in_dev_and_a_friendly_page_with_request_id_in_prd(stack):
    # dev: Django's debug page, with the exception and its traceback.
    dev_token = stack.admin_token("dev")
    dev = stack.site("dev").get("/ops/raise-error", headers={
        "Authorization": f"Bearer {dev_token}", "X-Request-Id": _rid()})
    assert dev.status == 500
    assert "Traceback" in dev.text and "Deliberate error raised" in dev.text

    # prd: the friendly page with the request id, no stack trace; the error is in prd's log.
    prd_token = stack.admin_token("prd")
    rid = _rid()
    prd = stack.site("prd").get("/ops/raise-error", headers={
        "Authorization": f"Bearer {prd_token}", "X-Request-Id": rid, "Accept": "text/html"})
    assert prd.status == 500
    assert rid in prd.text
    for leak in ("Traceback", "RuntimeError", "Deliberate error raised", "raise_error"):
        assert leak not in prd.text

    def logged() -> bool:
        for line in log_text(stack.logs("prd"), "app").splitlines():
            if rid in line and '"level": "error"' in line:
                record = json.loads(line)
                return record["env"] == "prd" and record["request_id"] == rid and "RuntimeError" in record.get("exc", "")
        return False

    assert poll(logged, timeout=5), "prd's app log has no error line with the request id"


def test_each_environments_log_lines_carry_its_name_and_land_in_its_own_directory(stack):
    marks = {}
    for env in ("dev", "stg", "prd"):
        marks[env] = _rid()
        # Every request is in the access log of the app server that answered it.
        assert stack.site(env).get(f"/no-such-page-{marks[env]}", headers={"X-Request-Id": marks[env]}).status == 404
    for env, rid in marks.items():
        logs = stack.logs(env)
        assert poll(lambda logs=logs, rid=rid: _log_has(logs, "access", rid), timeout=5)
        for line in log_text(logs, "access").splitlines():
            assert line.startswith(f"env={env} "), line
        # The app's own lines (JSON in stg and prd, among gunicorn's plain ones).
        app_lines = log_text(logs, "app").splitlines()
        records = [json.loads(line) for line in app_lines if line.startswith("{")]
        assert app_lines and {r["env"] for r in records} <= {env}
        for other in set(marks) - {env}:
            assert not any(rid in p.read_text(errors="replace") for p in stack.logs(other).glob("*.log"))


def test_wtx_logs_shows_an_environments_own_lines(stack):
    lines = list(stack.backend.logs("stg", lines=20))
    assert lines
    assert not any("env=prd" in line or '"env": "prd"' in line for line in lines)
    assert any("env=stg" in line or '"env": "stg"' in line for line in lines)


def test_wtx_logs_follows_one_request_through_haproxy_and_gunicorn_in_utc_without_health_checks(stack):
    rid = _rid()
    assert stack.site("prd").get(f"/no-such-page-{rid}", headers={"X-Request-Id": rid}).status == 404

    def sources() -> set[str]:
        return {e.source.split("-")[0] for e in stack.backend.log_entries(["prd"], lines=0, request_id=rid)}

    assert poll(lambda: {"haproxy", "access"} <= sources(), timeout=5)
    entries = list(stack.backend.log_entries(["prd"], lines=0, request_id=rid))
    assert all(e.level == "WARNING" and e.path == f"/no-such-page-{rid}" for e in entries)
    times = [e.ts for e in entries]
    assert max(times) - min(times) < timedelta(seconds=5), f"every file's time is in UTC: {times}"
    # HAProxy checks each server twice a second, straight to gunicorn: none of it is logged.
    for env in ("dev", "stg", "prd", "bak"):
        for line in log_text(stack.logs(env), "access").splitlines():
            assert not ("rid=-" in line and ("GET /healthz" in line or "GET /readyz" in line)), line


def test_db_reset_is_refused_for_real_data_and_dev_can_be_reset_and_seeded(stack):
    with pytest.raises(DeployError, match="real data"):
        stack.backend.db_reset("prd")
    cli = stack.wtx("db", "reset", "prd")
    assert cli.returncode != 0 and "real" in cli.stderr

    stack.backend.db_reset("dev")
    assert stack.site("dev").get("/api/v1/events").json() == []
    stack.backend.db_seed("dev")
    titles = {e["title"] for e in stack.site("dev").get("/api/v1/events").json()}
    assert {"The Tempest", "A Raisin in the Sun", "Little Shop of Horrors"} <= titles
    with pytest.raises(DeployError, match="demo"):
        stack.backend.db_seed("stg")


def test_haproxy_tells_the_app_the_real_client_address_and_a_client_cannot_forge_it(stack):
    rid = _rid()
    # dev allows all of 127.0.0.0/8; the client claims to be somewhere else.
    reply = stack.site("dev").get("/healthz", source="127.0.0.2",
                                  headers={"X-Request-Id": rid, "X-Forwarded-For": "203.0.113.9"})
    assert reply.status == 200
    assert reply.headers.get("x-request-id") == rid
    assert poll(lambda: _log_has(stack.logs("dev"), "access", rid), timeout=5)
    line = next(ln for ln in log_text(stack.logs("dev"), "access").splitlines() if rid in ln)
    assert "client=127.0.0.2" in line and "203.0.113.9" not in line


def test_haproxy_stats_page_lists_every_environments_servers(stack):
    stats = Site(host="127.0.0.1", port=stack.spec.defaults.haproxy_stats_port).get("/;csv")
    assert stats.status == 200
    for server in ("dev_blue", "stg_blue", "prd_blue", "bak_blue", "prd_green"):
        assert server in stats.text


def test_prd_over_plain_http_is_redirected_to_https_and_an_unknown_host_gets_404(stack):
    plain = Site(host="wondertix.localhost", port=stack.spec.defaults.haproxy_http_port)
    reply = plain.get("/events/?page=2")
    assert reply.status == 301
    assert reply.headers["location"] == "https://wondertix.localhost:8443/events/?page=2"
    unknown = Site(host="nobody.example.localhost", port=stack.spec.defaults.haproxy_http_port)
    assert unknown.get("/").status == 404


def test_any_command_reading_secrets_leaves_postgres_able_to_restart_on_its_data(stack):
    """var/envs/<env>/ is 0711 by one rule: every command starts by reading the environment's
    secrets (ensure_secrets), and afterwards PostgreSQL — running as `postgres` — must still
    reach its data directory inside it when supervisord restarts it."""
    stg = stack.spec.env("stg")
    env_dir = stack.var_dir / "envs" / "stg"
    ensure_secrets(stg, stack.spec, stack.var_dir)  # what `wtx deploy`, `db seed`, … do first
    assert stat.S_IMODE(env_dir.stat().st_mode) == 0o711
    assert stat.S_IMODE((env_dir / "secrets.env").stat().st_mode) == 0o600

    def as_postgres(*cmd: str) -> int:
        return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True).returncode

    assert as_postgres("ls", str(env_dir)) != 0, "the postgres user must not list the env dir"
    assert as_postgres("cat", str(env_dir / "secrets.env")) != 0, "nor read the secrets"
    assert as_postgres("test", "-r", str(env_dir / "pgdata" / "PG_VERSION")) == 0

    program = stack.backend.db_program("stg")
    stack.backend.supervisor.stop_program(program)
    stack.backend.supervisor.start_program(program)
    stack.backend.supervisor.wait_running(program, 30)
    stack.backend.cluster(stg).wait_ready(30)
    site = stack.site("stg")
    assert poll(lambda: site.get("/readyz").status == 200, timeout=30, interval=0.5)


def test_logs_and_mail_of_a_running_stack_are_the_operators_only(stack):
    """Log and mail files hold order tokens and ticket codes: written by supervisord and the
    programs it starts under umask 077, they are 0600 in 0700 directories."""
    rid = _rid()
    assert stack.site("prd").get(f"/no-such-page-{rid}", headers={"X-Request-Id": rid}).status == 404
    assert poll(lambda: _log_has(stack.logs("prd"), "access", rid), timeout=5)
    files = [stack.var_dir / "haproxy" / "haproxy.log"]
    for env in ("dev", "stg", "prd", "bak"):
        logs = stack.logs(env)
        assert stat.S_IMODE(logs.stat().st_mode) == 0o700, logs
        files += list(logs.glob("*.log"))
        mail = stack.var_dir / "envs" / env / "mail"
        if mail.exists():
            assert stat.S_IMODE(mail.stat().st_mode) == 0o700, mail
            files += [p for p in mail.iterdir() if p.is_file()]
    assert any(p.name.startswith("access-") for p in files)
    loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}
