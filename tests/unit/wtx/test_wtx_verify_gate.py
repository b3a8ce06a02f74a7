"""prd's `verify` gate: the arithmetic of a window between two /metrics scrapes (deltas,
counters reset by a restart, no traffic, p95 from histogram buckets) and a whole run against
a stand-in app on loopback that serves /metrics only to its monitoring address. The real
prd verification is in tests/deploy/test_e_prd_verification.py.
"""

from __future__ import annotations

import http.server
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from test_wtx_pipeline import FakeBackend, fake_release
from tests.support.loopback_http import serving
from wtx_testing import ROOT

from wtx import gate_verify, gates
from wtx import release as releases
from wtx.backends import FrontDoor
from wtx.spec import SpecError, VerifyGate, load_spec

R1 = "cccc11112222"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class App:
    """A stand-in app's own metrics, in the app's metric names and buckets."""

    def __init__(self) -> None:
        self.restart()
        self.status = 200
        self.seconds = 0.02
        self.metrics_sources: list[str] = []
        self.gets = 0

    def restart(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("wondertix_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("wondertix_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=BUCKETS, registry=self.registry)

    def observe(self, route: str, status: int, seconds: float, n: int = 1) -> None:
        for _ in range(n):
            self.requests.labels("GET", route, str(status)).inc()
            self.latency.labels("GET", route).observe(seconds)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_the_window_counts_only_what_happened_between_the_scrapes():
    app = App()
    app.observe("", 200, 0.02, n=50)
    app.observe("api/v1/events", 500, 0.02, n=5)
    start = gate_verify.parse(app.text())
    app.observe("", 200, 0.02, n=97)
    app.observe("api/v1/events", 500, 0.02, n=3)
    app.observe("metrics", 200, 3.0, n=4)  # the gate's own scrapes are not the app's traffic
    w = gate_verify.window(start, gate_verify.parse(app.text()))
    assert (w.requests, w.server_errors, w.resets) == (100, 3, 0)
    assert w.statuses == {"200": 97, "500": 3} and w.error_rate == 0.03
    # all 100 in (0.01, 0.025]: 0.01 + 0.015 * 95 / 100 (the 3 s scrapes are not in it)
    assert gate_verify.quantile(0.95, w.buckets) == pytest.approx(0.02425)


def test_a_counter_reset_by_a_restart_counts_the_new_process_from_zero():
    app = App()
    app.observe("", 200, 0.02, n=1000)
    app.observe("", 500, 0.02, n=10)
    start = gate_verify.parse(app.text())
    app.restart()  # a new slot: its counters start again at 0
    app.observe("", 200, 0.3, n=18)
    app.observe("", 500, 0.3, n=2)
    w = gate_verify.window(start, gate_verify.parse(app.text()))
    # Not 18 - 1000 (negative) and not "no errors": the new process's own 20 requests and 2 errors.
    assert (w.requests, w.server_errors) == (20, 2) and w.resets >= 2
    p95 = gate_verify.quantile(0.95, w.buckets)
    assert p95 is not None and 0.25 < p95 <= 0.5  # the new process's latency, not the old one's


def test_no_traffic_between_the_scrapes_counts_nothing_and_has_no_p95():
    app = App()
    app.observe("", 200, 0.02, n=30)
    text = app.text()
    w = gate_verify.window(gate_verify.parse(text), gate_verify.parse(text))
    assert (w.requests, w.server_errors, w.error_rate) == (0, 0, 0.0)
    assert gate_verify.quantile(0.95, w.buckets) is None
    assert gate_verify.counter_delta(None, None) == (0.0, False)
    assert gate_verify.counter_delta(5, 3) == (3, True) and gate_verify.counter_delta(3, 5) == (2, False)


def test_p95_interpolates_inside_its_bucket_like_prometheus():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    # rank 95 falls in (0.5, 1]: 0.5 + 0.5 * (95 - 90) / (100 - 90)
    assert gate_verify.quantile(0.95, buckets) == pytest.approx(0.75)
    assert gate_verify.quantile(0.5, buckets) == pytest.approx(0.1)
    # Beyond the last finite bound the histogram can only say "more than 1 s": it says 1 s.
    assert gate_verify.quantile(0.95, [(1.0, 10.0), (float("inf"), 100.0)]) == 1.0


def test_the_monitoring_source_is_a_loopback_address_of_the_monitoring_networks():
    assert gate_verify.monitoring_source(["127.0.0.1/32"]) == "127.0.0.1"
    assert gate_verify.monitoring_source(["10.0.0.0/8", "127.0.0.0/8"]) == "127.0.0.1"
    assert gate_verify.monitoring_source(["10.0.0.0/8"]) is None


# --------------------------------------------------------------------------------------------
# A whole run against a stand-in app


@pytest.fixture
def app():
    state = App()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            if self.path == "/metrics":
                state.metrics_sources.append(self.client_address[0])
                body, status = state.text().encode(), 200
            else:
                state.gets += 1
                status = state.status
                state.observe("" if self.path == "/" else self.path.strip("/"), status, state.seconds)
                body = b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with serving(Handler) as state.port:
        yield state


class Prd(FakeBackend):
    def __init__(self, spec: Any, var_dir: Path, app: App) -> None:
        super().__init__(spec, var_dir)
        self.app = app

    def front_door(self, env: str) -> FrontDoor:
        return FrontDoor(host="wondertix.localhost", port=self.app.port)


def _verify(spec, var_dir, app, **thresholds):
    fake_release(var_dir, R1)
    backend = Prd(spec, var_dir, app)
    backend.running["prd"] = R1
    gate = spec.env("prd").gate("verify").model_copy(update={"window_s": 1, "interval_ms": 50, **thresholds})
    with gates.Workspace(spec, backend, ROOT, spec.env("prd"), releases.get(R1, var_dir), "run1") as work:
        return gates.run_check(work, gate)


def test_a_healthy_window_passes_with_its_figures_read_from_the_monitoring_address(spec, var_dir, app):
    assert isinstance(spec.env("prd").gate("verify"), VerifyGate)
    result = _verify(spec, var_dir, app)
    print(f"\n{result.summary} {result.figures}")
    assert result.passed, result.summary
    assert result.figures["requests"] == app.gets > 0 and result.figures["server_errors"] == 0
    assert result.figures["p95_ms"] <= 25 and result.figures["smoke_requests"] == {"200": app.gets}
    assert app.metrics_sources == ["127.0.0.1", "127.0.0.1"]  # prd's monitoring network, twice


def test_an_endpoint_answering_5xx_fails_on_the_error_rate(spec, var_dir, app):
    app.status = 500
    result = _verify(spec, var_dir, app)
    assert not result.passed and result.figures["server_errors"] == result.figures["requests"] > 0
    assert result.summary.startswith("error rate 100.00% (")
    assert "at most 1.00%" in result.summary


def test_a_slow_app_fails_on_p95(spec, var_dir, app):
    app.seconds = 2.0
    result = _verify(spec, var_dir, app, p95_ms=1500)
    assert not result.passed and result.figures["p95_ms"] > 1500
    assert result.summary.startswith(f"p95 {result.figures['p95_ms']} ms over ")


def test_a_window_in_which_the_app_counted_nothing_fails(spec, var_dir, app):
    result = _verify(spec, var_dir, app, min_requests=10_000)
    assert not result.passed and "nothing was verified" in result.summary


def test_a_metrics_endpoint_that_refuses_the_gate_fails_it(spec, var_dir, app, monkeypatch):
    monkeypatch.setattr(gate_verify, "monitoring_source", lambda networks: None)
    result = _verify(spec, var_dir, app)
    assert not result.passed and "monitoring_networks" in result.summary


def test_verify_needs_metrics_read_from_a_monitoring_network(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["logging"]["monitoring_networks"] = []
    with pytest.raises(SpecError, match="check 'verify' reads /metrics"):
        load_spec(write_spec(raw_spec))


def test_the_checked_in_window_keeps_the_pipeline_fast(spec):
    verify = spec.env("prd").gate("verify")
    assert verify.window_s <= 30 and verify.p95_ms and verify.max_error_rate < 1


def test_integration_suites_need_a_postgresql_environment(raw_spec, write_spec):
    dev = raw_spec["environments"]["dev"]
    dev["gates"].append({"check": "integration", "suites": ["tests/integration/test_concurrency.py"]})
    with pytest.raises(SpecError, match="suites and journeys run on a scratch database"):
        load_spec(write_spec(raw_spec))


def test_browser_journeys_need_a_postgresql_environment(raw_spec, write_spec):
    dev = raw_spec["environments"]["dev"]
    dev["gates"].append({"check": "integration", "journeys": ["tests/e2e"]})
    with pytest.raises(SpecError, match="suites and journeys run on a scratch database"):
        load_spec(write_spec(raw_spec))
