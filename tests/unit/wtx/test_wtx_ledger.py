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


# ------------------------------------------------------------------ tamper evidence


def _five(var_dir):
    for i in range(5):
        ledger.append(var_dir, ledger.DEPLOY, env="prd", release=f"{i:012x}")
    return ledger.ledger_path(var_dir)


def _rewrite(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_an_untouched_ledger_verifies_and_each_record_links_to_the_one_before(var_dir):
    path = _five(var_dir)
    verdict = ledger.verify(var_dir)
    assert verdict.ok and verdict.records == 5 and verdict.warnings == []
    records = ledger.read(var_dir)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == ledger.GENESIS
    lines = path.read_bytes().splitlines()
    assert records[3]["prev"] == ledger.line_hash(lines[2])


def test_an_edited_record_is_detected(var_dir):
    path = _five(var_dir)
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"release": "000000000001"', b'"release": "badbadbadbad"')
    _rewrite(path, lines)
    verdict = ledger.verify(var_dir)
    assert not verdict.ok
    assert any(p.startswith("line 3 (seq 3): does not follow") for p in verdict.problems)


def test_a_removed_record_in_the_middle_is_detected(var_dir):
    path = _five(var_dir)
    lines = path.read_bytes().splitlines()
    _rewrite(path, lines[:2] + lines[3:])
    problems = ledger.verify(var_dir).problems
    assert any("sequence 4 after 2" in p for p in problems)


def test_reordered_records_are_detected(var_dir):
    path = _five(var_dir)
    lines = path.read_bytes().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    _rewrite(path, lines)
    assert not ledger.verify(var_dir).ok


def test_records_cut_from_the_end_are_detected_by_the_head(var_dir):
    path = _five(var_dir)
    _rewrite(path, path.read_bytes().splitlines()[:4])
    [problem] = ledger.verify(var_dir).problems
    assert "ends at seq 4" in problem and "records seq 5" in problem


def test_a_torn_last_line_is_reported_and_breaks_nothing(var_dir):
    path = _five(var_dir)
    with open(path, "ab") as fh:  # a crash mid-write: half a record, no newline
        fh.write(b'{"ts": "2026-11-27T10:00:00.000Z", "event": "dep')
    assert len(ledger.read(var_dir)) == 5  # readers skip it (status, deploy, rollback)
    assert ledger.last(var_dir, env="prd")["release"] == "000000000004"
    verdict = ledger.verify(var_dir)
    assert verdict.ok and verdict.warnings == ["the last line is a torn record (an interrupted write) and is ignored"]
    # the next append starts on a new line and chains to the last whole record
    ledger.append(var_dir, ledger.ROLLBACK, env="prd", release="000000000003")
    records = ledger.read(var_dir)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    verdict = ledger.verify(var_dir)
    assert verdict.ok and verdict.warnings == ["line 6 is a torn record (an interrupted write) and is ignored"]
