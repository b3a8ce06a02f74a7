"""The `performance` gate: one real locust run against the stand-in box office of
test_wtx_integration_gate (a few seconds), and its pass/fail decisions on locust statistics
written by a fake locust. The real run against stg is in tests/deploy/test_d_stg_gates.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_wtx_integration_gate import R1, Stg, box  # noqa: F401 - box is a fixture
from test_wtx_pipeline import fake_release
from wtx_testing import ROOT

from wtx import gate_performance, gates
from wtx import release as releases

HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
          "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
          "99.99%,100%\n")


def _row(kind: str, name: str, requests: int, failures: int, p95: int) -> str:
    return f"{kind},{name},{requests},{failures},20,30,1,900,10,5.0,0.0,20,25,30,35,40,{p95},{p95},{p95},{p95},{p95},{p95}\n"


def _gate(spec, var_dir, books, **thresholds):
    fake_release(var_dir, R1)
    backend = Stg(spec, var_dir, books)
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("performance").model_copy(update=thresholds)
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        return gates.run_check(work, gate), backend


def test_a_real_locust_run_against_a_quick_box_office_passes_and_keeps_its_report(spec, var_dir, box):  # noqa: F811
    result, backend = _gate(spec, var_dir, box, users=4, spawn_rate=4, run_seconds=5)
    print(f"\n{result.summary}\n{result.figures}")
    assert result.passed, result.summary
    assert result.figures["requests"] > 5 and result.figures["failures"] == 0 and result.figures["oversold"] == 0
    assert result.figures["orders"] == 4 == box.tickets  # each patron bought one ticket
    assert box.gets > 0  # patrons browsed, with the front door's credentials
    assert (var_dir / result.figures["report"]).is_file() and (var_dir / result.figures["report_csv"]).is_file()
    assert "update(active=False)" in backend.scripts[-2]  # the scratch event is taken off sale
    assert "slug='wtx-gate-integration-perf-run1'" in backend.scripts[-1]  # and removed
    assert result.figures["scratch"]["removed"] is True and "scratch event removed" in result.summary
    assert result.figures["baseline_release"] == "none" and "no earlier run here" in result.summary


@pytest.fixture
def fake_locust(monkeypatch):
    rows: list[str] = []

    def run(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        prefix = args[args.index("--csv") + 1]
        if rows:
            Path(prefix + "_stats.csv").write_text(HEADER + "".join(rows))
        return subprocess.CompletedProcess(args, 1 if rows else 2, "", "locust: error" if not rows else "")

    monkeypatch.setattr(gate_performance, "run_locust", run)
    return rows


def test_a_slow_p95_fails_naming_the_figure(spec, var_dir, box, fake_locust):  # noqa: F811
    fake_locust += [_row("POST", "/api/v1/orders", 40, 0, 900), _row("", "Aggregated", 400, 0, 1800)]
    result, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.figures["p95_ms"] == 1800
    assert result.summary == "p95 1800 ms over 400 requests (at most 1000)"


def test_errors_over_the_rate_fail(spec, var_dir, box, fake_locust):  # noqa: F811
    fake_locust += [_row("POST", "/api/v1/orders", 40, 12, 300), _row("", "Aggregated", 400, 12, 300)]
    result, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.figures["error_rate"] == 0.03
    assert result.summary.startswith("error rate 3.00% (12 of 400; at most 1.00%)")


def test_within_thresholds_it_passes_and_an_oversell_still_fails(spec, var_dir, box, fake_locust):  # noqa: F811
    fake_locust += [_row("POST", "/api/v1/orders", 40, 0, 300), _row("", "Aggregated", 400, 2, 300)]
    ok, _ = _gate(spec, var_dir, box)
    assert ok.passed, ok.summary
    box.tickets = 1001  # the books say more tickets than the scratch performance's 1000 seats
    oversold, _ = _gate(spec, var_dir / "x", box)
    assert not oversold.passed and oversold.summary.startswith("oversold: 1001 tickets for 1000 seats")


def test_a_run_that_measured_nothing_fails(spec, var_dir, box, fake_locust):  # noqa: F811
    result, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.summary.startswith("locust wrote no statistics")
    fake_locust += [_row("GET", "/", 0, 0, 0), _row("", "Aggregated", 0, 0, 0)]
    empty, _ = _gate(spec, var_dir / "y", box)
    assert not empty.passed and empty.summary.startswith("locust sent 0 requests, 0 orders: nothing was measured")


def test_the_spec_keeps_the_patrons_under_the_front_doors_order_limit(raw_spec):
    from wtx.spec import SpecError, parse_spec

    gate = next(g for g in raw_spec["environments"]["stg"]["gates"] if g["check"] == "performance")
    gate["users"] = 11
    with pytest.raises(SpecError, match=r"users = 11 each buy once from one address, more than front_door.orders_per_window \(10\)"):
        parse_spec(raw_spec, Path("environments.toml"))


def _timed(name: str, median: int, kind: str = "GET", requests: int = 20) -> str:
    return (f"{kind},{name},{requests},0,{median},{median},1,900,10,5.0,0.0,{median},{median},{median},{median},"
            f"{median},{median},{median},{median},{median},{median},{median}\n")


def _baseline(var_dir: Path, release: str, endpoints: dict[str, Any], passed: bool = True) -> None:
    from wtx import pipeline

    pipeline.record_gate(var_dir, "stg", release, pipeline.GateResult(
        "performance", passed, "earlier run", {"endpoints": endpoints}), run=f"run-{release}")


def test_an_endpoint_ten_times_slower_than_the_release_before_fails_naming_both_figures(spec, var_dir, box, fake_locust):  # noqa: F811
    before = {"GET /performances/[id]/": {"median_ms": 25.0}, "GET /": {"median_ms": 20.0}}
    _baseline(var_dir, "bbbb00001111", before)
    _baseline(var_dir, "cccc00001111", {"GET /": {"median_ms": 1.0}}, passed=False)  # a failed run is no baseline
    fake_locust += [_timed("/performances/[id]/", 250), _timed("/", 24), _timed("/api/v1/orders", 40, "POST"),
                    _timed("Aggregated", 60, "")]
    result, _ = _gate(spec, var_dir, box)
    assert not result.passed
    assert result.summary == ("GET /performances/[id]/ median 250 ms, 10× the 25 ms of release bbbb00001111 "
                              "(at most 3×)")
    assert result.figures["slowdowns"] == {"GET /performances/[id]/": 10.0, "GET /": 1.2}
    assert result.figures["baseline_release"] == "bbbb00001111"


def test_a_few_milliseconds_more_on_a_fast_page_is_not_a_slowdown(spec, var_dir, box, fake_locust):  # noqa: F811
    _baseline(var_dir, "bbbb00001111", {"GET /": {"median_ms": 4.0}, "GET /api/v1/events": {"median_ms": 30.0}})
    fake_locust += [_timed("/", 16), _timed("/api/v1/events", 60), _timed("/api/v1/orders", 40, "POST"),
                    _timed("Aggregated", 30, "")]
    result, _ = _gate(spec, var_dir, box)
    assert result.passed, result.summary  # 4× but 12 ms more; 2× the events list
    assert "slowest against release bbbb00001111: GET / 4×" in result.summary
