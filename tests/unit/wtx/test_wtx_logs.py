"""`wtx logs`: every file of an environment, HAProxy's included, merged in time order (UTC),
filtered by environment, level, request id, path and time."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner
from wtx_testing import ROOT

from wtx import cli, logview
from wtx.backends.local import LocalBackend

# The same moment, 2026-11-27 15:30:00 UTC, as each process writes it (the theater is in
# America/Los_Angeles, UTC-8 in November).
ACCESS_BLUE = [
    'env=prd slot=blue ts=2026-11-27T15:30:00.200Z 127.0.0.1 "GET /events/12?page=2 HTTP/1.1" 200 5120 12ms rid=req-aaaa-0001 client=10.0.0.7',
    'env=prd slot=blue ts=2026-11-27T15:30:02.000Z 127.0.0.1 "POST /api/v1/orders HTTP/1.1" 500 80 40ms rid=req-bbbb-0002 client=10.0.0.8',
]
APP_BLUE = [
    '[2026-11-27 07:29:59 -0800] [4242] [INFO] Booting worker with pid: 4242',
    '{"ts": "2026-11-27T15:30:00.100000+00:00", "level": "info", "logger": "wondertix.sales", "env": "prd", "request_id": "req-aaaa-0001", "message": "hold placed"}',
    '{"ts": "2026-11-27T15:30:01.900000+00:00", "level": "error", "logger": "django.request", "env": "prd", "request_id": "req-bbbb-0002", "message": "Internal Server Error: /api/v1/orders", "path": "/api/v1/orders"}',
    'Traceback (most recent call last):',
    '  File "/srv/app.py", line 1, in <module>',
    'RuntimeError: boom',
]
POSTGRES = [
    '2026-11-27 15:30:01.500 UTC [77] ERROR:  duplicate key value violates unique constraint "ticket_code"',
    '2026-11-27 15:30:01.500 UTC [77] STATEMENT:  INSERT INTO ticket ...',
]
DEV_APP = [
    '2026-11-27 07:30:00,050 WARNING [dev req-dddd-0004] wondertix.storefront: slow page',
]
HAPROXY = [
    '127.0.0.1:50000 [27/Nov/2026:15:30:00.150] fe_main be_prd/prd_blue 0/0/0/11/12 200 5200 - - ---- 1/1/0/0/0 0/0 "GET /events/12?page=2 HTTP/1.1" id=req-aaaa-0001',
    '127.0.0.1:50001 [27/Nov/2026:15:30:01.950] fe_main be_prd/prd_blue 0/0/0/39/40 500 120 - - ---- 1/1/0/0/0 0/0 "POST /api/v1/orders HTTP/1.1" id=req-bbbb-0002',
    '127.0.0.1:50002 [27/Nov/2026:15:30:03.000] fe_main be_prd/bak_blue 0/0/0/5/5 200 900 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1" id=req-cccc-0003',
    '127.0.0.2:50003 [27/Nov/2026:15:30:04.000] fe_main be_stg/<NOSRV> 0/-1/-1/-1/0 403 200 - - PR-- 1/1/0/0/0 0/0 "GET / HTTP/1.1" id=req-eeee-0005',
]


@pytest.fixture
def var(tmp_path: Path) -> Path:
    var = tmp_path / "var"
    files = {
        "envs/prd/logs/access-blue.log": ACCESS_BLUE,
        "envs/prd/logs/app-blue.log": APP_BLUE,
        "envs/prd/logs/postgres.log": POSTGRES,
        "envs/dev/logs/app-blue.log": DEV_APP,
        "haproxy/haproxy.log": HAPROXY,
    }
    for rel, lines in files.items():
        path = var / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return var


def entries(spec, var: Path, envs=None, **kw) -> list[logview.Entry]:
    return list(LocalBackend(spec, var.parent, var).log_entries(envs, lines=100, **kw))


def test_every_file_of_an_environment_is_merged_in_time_order_in_utc(spec, var):
    got = entries(spec, var, ["prd"])
    assert [e.source for e in got] == [
        "app-blue",     # 15:29:59 gunicorn, written -0800
        "app-blue",     # 15:30:00.100 app (JSON, UTC)
        "haproxy",      # 15:30:00.150
        "access-blue",  # 15:30:00.200
        "postgres",     # 15:30:01.500
        "postgres",
        "app-blue",     # 15:30:01.900 the error, with its traceback
        "haproxy",      # 15:30:01.950
        "access-blue",  # 15:30:02.000
    ], "15:30:03 (bak answered for prd) is bak's line, not prd's"
    assert got[0].ts == datetime(2026, 11, 27, 15, 29, 59, tzinfo=UTC)
    assert [e.ts for e in got] == sorted(e.ts for e in got)
    error = got[6]
    assert error.level == "ERROR" and error.text.endswith("RuntimeError: boom"), "the traceback stays with its line"
    rendered = [e.render() for e in got]
    assert rendered[0].startswith("2026-11-27T15:29:59.000Z prd  app-blue")
    assert all(line[:24].endswith("Z") for line in rendered)


def test_a_console_line_in_the_theaters_zone_is_shown_in_utc(spec, var):
    (dev,) = entries(spec, var, ["dev"])
    assert dev.ts == datetime(2026, 11, 27, 15, 30, 0, 50_000, tzinfo=UTC)
    assert dev.level == "WARNING" and dev.request_id == "req-dddd-0004"


def test_haproxy_lines_belong_to_the_environment_that_answered(spec, var):
    bak = entries(spec, var, ["bak"])
    assert [e.request_id for e in bak] == ["req-cccc-0003"]
    stg = entries(spec, var, ["stg"])
    assert [(e.request_id, e.level) for e in stg] == [("req-eeee-0005", "WARNING")]


def test_filters_by_request_id_level_path_and_since(spec, var):
    one = entries(spec, var, ["prd"], request_id="req-bbbb-0002")
    assert [e.source for e in one] == ["app-blue", "haproxy", "access-blue"]
    assert all("req-bbbb-0002" in e.text for e in one)

    errors = entries(spec, var, ["prd"], level="ERROR")
    assert {e.source for e in errors} == {"postgres", "app-blue", "haproxy", "access-blue"}
    assert all(e.level in ("ERROR", "CRITICAL") for e in errors)

    events = entries(spec, var, ["prd"], path="/events")
    assert [e.source for e in events] == ["haproxy", "access-blue"], "a path and what is below it, query ignored"
    assert entries(spec, var, ["prd"], path="/event") == []

    late = entries(spec, var, ["prd"], since=logview.parse_since("2026-11-27T15:30:01.800Z"))
    assert [e.source for e in late] == ["app-blue", "haproxy", "access-blue"]


def test_every_environment_by_default(spec, var):
    got = entries(spec, var)
    assert {e.env for e in got} == {"prd", "bak", "stg", "dev"}
    assert len(got) == 12


def test_since_accepts_durations_and_refuses_nonsense():
    now = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
    assert logview.parse_since("15m", now) == datetime(2026, 11, 27, 15, 45, tzinfo=UTC)
    assert logview.parse_since("2026-11-27T15:00:00", now) == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        logview.parse_since("yesterday", now)


def test_follow_prints_new_entries_of_every_file_and_survives_rotation(spec, var):
    backend = LocalBackend(spec, var.parent, var)
    seen: list[logview.Entry] = []
    stream = backend.log_entries(["prd"], lines=1, follow=True)
    first = next(stream)
    assert (first.source, first.request_id) == ("access-blue", "req-bbbb-0002"), "the last entry first"

    def collect() -> None:
        for entry in stream:
            seen.append(entry)
            if len(seen) == 3:
                return

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    logs = var / "envs" / "prd" / "logs"
    time.sleep(0.7)
    with open(logs / "access-blue.log", "a") as fh:
        fh.write('env=prd slot=blue ts=2026-11-27T15:31:00.000Z 127.0.0.1 "GET /new HTTP/1.1" 200 1 1ms rid=req-ffff-0006 client=1.2.3.4\n')
    (logs / "app-blue.log").rename(logs / "app-blue.log.1")  # supervisord rotates it
    (logs / "app-blue.log").write_text('{"ts": "2026-11-27T15:31:01+00:00", "level": "info", "env": "prd", "request_id": "-", "message": "after rotation"}\n')
    with open(logs / "postgres.log", "a") as fh:
        fh.write("2026-11-27 15:31:02.000 UTC [77] LOG:  checkpoint complete\n")
    reader.join(15)
    assert [e.source for e in seen] == ["access-blue", "app-blue", "postgres"], seen
    assert "after rotation" in seen[1].text


def test_the_command_prints_the_merged_view_and_json(var):
    runner = CliRunner()
    res = runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(var), "logs", "--env", "prd",
                                  "--request-id", "req-aaaa-0001"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [ln.split()[2] for ln in lines] == ["app-blue", "haproxy", "access-blue"]
    res = runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(var), "logs", "prd", "--json",
                                  "--level", "error", "-n", "1"])
    assert res.exit_code == 0, res.output
    (record,) = [json.loads(ln) for ln in res.output.splitlines()]
    assert record["ts"] == "2026-11-27T15:30:02.000Z" and record["source"] == "access-blue"


@pytest.mark.parametrize(("args", "message"), [
    (["--level", "loud"], "--level 'loud'"),
    (["--since", "yesterday"], "--since 'yesterday'"),
    (["--env", "prod"], "no environment 'prod'"),
])
def test_bad_filters_are_one_line_errors(var, args, message):
    res = CliRunner().invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(var), "logs", *args])
    assert res.exit_code == 1
    assert message in res.output


def test_since_reads_the_rotated_copies_too_and_the_plain_view_only_the_current_files(spec, var):
    logs = var / "envs" / "prd" / "logs"
    (logs / "access-blue.log.1").write_text(
        'env=prd slot=blue ts=2026-11-27T14:00:00.000Z 127.0.0.1 "GET /old HTTP/1.1" 200 1 1ms rid=req-old-00001 client=1.2.3.4\n')
    (logs / "access-blue.log.2").write_text(
        'env=prd slot=blue ts=2026-11-27T13:00:00.000Z 127.0.0.1 "GET /older HTTP/1.1" 200 1 1ms rid=req-old-00002 client=1.2.3.4\n')
    assert not any(e.request_id and e.request_id.startswith("req-old") for e in entries(spec, var, ["prd"]))
    got = entries(spec, var, ["prd"], since=logview.parse_since("2026-11-27T13:30:00Z"))
    assert got[0].request_id == "req-old-00001" and got[0].source == "access-blue"
    assert "req-old-00002" not in {e.request_id for e in got}
    assert len(got) == 10


def test_lines_without_a_time_before_the_first_dated_one_take_its_time(spec, var):
    path = var / "haproxy" / "haproxy.log"
    path.write_text("[NOTICE]   (10723) : New worker (10725) forked\n" + path.read_text())
    (notice,) = [e for e in entries(spec, var) if e.text.startswith("[NOTICE]")]
    assert notice.ts == datetime(2026, 11, 27, 15, 30, 0, 150_000, tzinfo=UTC)
    assert notice.render().startswith("2026-11-27T15:30:00.150Z")


# An HA database's members: Patroni (its own lines and its PostgreSQL's) and etcd, as written.
PATRONI_PRD_DB = [
    "2026-11-27 15:30:00,300 INFO: no action. I am (prd-db), the leader with the lock",
    "2026-11-27 15:30:01.600 UTC [88] LOG:  archive command failed with exit code 32",
    "ERROR: [032]: PostgreSQL working directory '/x' is not the same as option pg1-path '/y'",
    "2026-11-27 15:30:02,500 WARNING: Loop time exceeded, rescheduling immediately.",
]
ETCD_WITNESS = [
    '{"level":"info","ts":"2026-11-27T15:30:00.400Z","caller":"raft/raft.go:1","msg":"witness became follower"}',
    '{"level":"warn","ts":"2026-11-27T15:30:02.600Z","caller":"rafthttp/probing_status.go:1","msg":"prober detected unhealthy status"}',
]


@pytest.fixture
def ha_var(var: Path) -> Path:
    logs = var / "envs" / "prd" / "logs"
    (logs / "patroni-prd-db.log").write_text("\n".join(PATRONI_PRD_DB) + "\n")
    (logs / "etcd-witness.log").write_text("\n".join(ETCD_WITNESS) + "\n")
    return var


def test_patroni_and_etcd_members_logs_are_merged_with_the_environments_in_utc(spec, ha_var):
    got = entries(spec, ha_var, ["prd"])
    mine = [(e.ts.strftime("%H:%M:%S.%f")[:12], e.source, e.level) for e in got
            if e.source in ("patroni-prd-db", "etcd-witness")]
    assert mine == [
        ("15:30:00.300", "patroni-prd-db", "INFO"), ("15:30:00.400", "etcd-witness", "INFO"),
        ("15:30:01.600", "patroni-prd-db", "INFO"), ("15:30:02.500", "patroni-prd-db", "WARNING"),
        ("15:30:02.600", "etcd-witness", "WARNING")]
    # pgBackRest's words (no time of their own) stay with the PostgreSQL line before them.
    archive = next(e for e in got if "archive command failed" in e.text)
    assert "pg1-path" in archive.text and all(e.env == "prd" for e in got if e.source.startswith(("patroni", "etcd")))


def test_source_picks_programs_by_name_or_kind(spec, ha_var):
    assert {e.source for e in entries(spec, ha_var, ["prd"], sources=["patroni"])} == {"patroni-prd-db"}
    assert {e.source for e in entries(spec, ha_var, ["prd"], sources=["etcd-witness", "access-blue"])} == \
        {"etcd-witness", "access-blue"}
    runner = CliRunner()
    res = runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(ha_var), "logs", "prd", "--source", "etcd",
                                  "--level", "warning"])
    assert res.exit_code == 0, res.output
    assert [ln.split()[2] for ln in res.output.splitlines()] == ["etcd-witness"]
    res = runner.invoke(cli.app, ["--root", str(ROOT), "--var-dir", str(ha_var), "logs", "--source", "zookeeper"])
    assert res.exit_code == 1 and "--source 'zookeeper'" in res.output
