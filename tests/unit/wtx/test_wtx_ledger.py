"""The ledger: append-only JSON lines; earlier lines never change."""

from __future__ import annotations

import json
import multiprocessing
from urllib.parse import quote

from wtx import ledger
from wtx.secrets import ensure_secrets


def _append_many(var_dir, worker):
    for i in range(25):
        ledger.append(var_dir, "deploy", env=f"env{worker}", release=f"{worker:04x}{i:08x}")


def test_appends_never_change_earlier_lines(var_dir):
    ledger.append(var_dir, ledger.BUILD, release="aaaaaaaaaaaa", commit="c0ffee")
    ledger.append(var_dir, ledger.DEPLOY, env="prd", release="aaaaaaaaaaaa")
    before = ledger.ledger_path(var_dir).read_bytes()
    ledger.append(var_dir, ledger.ABORT, env="prd", release="bbbbbbbbbbbb", reason="never became ready")
    ledger.append(var_dir, ledger.ROLLBACK, env="prd", release="aaaaaaaaaaaa", previous="bbbbbbbbbbbb")
    after = ledger.ledger_path(var_dir).read_bytes()
    assert after.startswith(before)
    assert len(after.splitlines()) == 4
    assert all(json.loads(line)["ts"].endswith("Z") for line in after.splitlines())


def test_read_returns_records_oldest_first_and_filters_by_environment(var_dir):
    ledger.append(var_dir, ledger.BUILD, release="aaaaaaaaaaaa")
    ledger.append(var_dir, ledger.DEPLOY, env="stg", release="aaaaaaaaaaaa")
    ledger.append(var_dir, ledger.DEPLOY, env="prd", release="aaaaaaaaaaaa")
    ledger.append(var_dir, ledger.ABORT, env="prd", release="bbbbbbbbbbbb", reason="migration failed")
    assert [r["event"] for r in ledger.read(var_dir)] == ["build", "deploy", "deploy", "abort"]
    prd = ledger.read(var_dir, "prd")
    assert [(r["event"], r["release"]) for r in prd] == [("deploy", "aaaaaaaaaaaa"), ("abort", "bbbbbbbbbbbb")]
    assert prd[1]["reason"] == "migration failed"
    assert ledger.last(var_dir, env="prd")["release"] == "aaaaaaaaaaaa"
    assert ledger.read(var_dir, "dev") == []


def test_an_empty_ledger_reads_as_nothing(var_dir):
    assert ledger.read(var_dir) == [] and ledger.last(var_dir, env="prd") is None


def test_concurrent_writers_each_land_whole_lines(var_dir):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(var_dir, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    records = ledger.read(var_dir)
    assert len(records) == 100
    assert len({r["release"] for r in records}) == 100


def test_a_reason_quoting_a_secret_is_masked(spec, var_dir):
    password = ensure_secrets(spec.env("stg"), spec, var_dir)["DB_PASSWORD"]
    record = ledger.append(var_dir, ledger.ABORT, env="stg", release="aaaaaaaaaaaa",
                           reason=f"migrate failed: could not connect to postgres://wondertix_stg:{quote(password)}@127.0.0.1:5533/x")
    text = ledger.ledger_path(var_dir).read_text()
    assert password not in text
    assert "postgres://wondertix_stg:********@127.0.0.1:5533/x" in text
    assert record["event"] == "abort"
