"""The `verify` gate: post-deploy verification from the app's own Prometheus /metrics.

    scrape /metrics ──▶ light smoke traffic for window_s ──▶ scrape /metrics again
                         (the spec's paths, round after round)
    error rate = 5xx share of the requests counted between the scrapes
    p95        = from the latency histogram's bucket deltas (as Prometheus' histogram_quantile)

/metrics is read through the environment's front door from an address of its
`logging.monitoring_networks` (HAProxy answers 403 to anyone else), so the figures are what
the app servers on traffic counted: the smoke traffic, HAProxy's health checks and whatever
patrons did in the window. The gate's own scrapes (route `metrics`) are left out.

Counters only grow while a process lives; a restart (a new slot, a crashed worker's files
dropped) starts them again at 0. A series that went down between the scrapes was reset, and
its whole end value is the window's (Prometheus' rate() reads resets the same way). A window
with fewer than `min_requests` counted requests verified nothing and fails.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from wtx.pipeline import GateResult
from wtx.spec import VerifyGate

REQUESTS = "wondertix_http_requests_total"
LATENCY_BUCKET = "wondertix_http_request_duration_seconds_bucket"
OWN_ROUTES = frozenset({"metrics"})  # the gate's own scrapes

RequestKey = tuple[str, str, str]   # method, route, status
SeriesKey = tuple[str, str]         # method, route


@dataclass
class Scrape:
    """What one /metrics answer says: requests per (method, route, status) and the latency
    histogram's cumulative bucket counts per (method, route) and upper bound."""

    requests: dict[RequestKey, float] = field(default_factory=dict)
    buckets: dict[SeriesKey, dict[float, float]] = field(default_factory=dict)


@dataclass
class Window:
    requests: int
    server_errors: int
    statuses: dict[str, int]
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), ascending, +Inf last
    resets: int                         # series found reset (a restart) between the scrapes

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


def parse(text: str) -> Scrape:
    """The request counter and latency histogram of a Prometheus text exposition."""
    scrape = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == REQUESTS:
                key = (labels.get("method", ""), labels.get("route", ""), labels.get("status", ""))
                scrape.requests[key] = scrape.requests.get(key, 0.0) + sample.value
            elif sample.name == LATENCY_BUCKET:
                series = (labels.get("method", ""), labels.get("route", ""))
                le = float(labels.get("le", "+Inf"))
                per = scrape.buckets.setdefault(series, {})
                per[le] = per.get(le, 0.0) + sample.value
    return scrape


def counter_delta(start: float | None, end: float | None) -> tuple[float, bool]:
    """(increase between the scrapes, whether the counter was reset in between)."""
    before, after = start or 0.0, end or 0.0
    if after < before:
        return after, True
    return after - before, False


def window(start: Scrape, end: Scrape, skip_routes: frozenset[str] = OWN_ROUTES) -> Window:
    """The requests, 5xx and latency buckets counted between two scrapes."""
    statuses: Counter[str] = Counter()
    resets = 0
    for key in set(start.requests) | set(end.requests):
        if key[1] in skip_routes:
            continue
        delta, reset = counter_delta(start.requests.get(key), end.requests.get(key))
        resets += reset
        statuses[key[2]] += round(delta)
    merged: dict[float, float] = {}
    for series in set(start.buckets) | set(end.buckets):
        if series[1] in skip_routes:
            continue
        before, after = start.buckets.get(series, {}), end.buckets.get(series, {})
        # One reset decision per series: its buckets belong to one process' histogram.
        reset = any(after.get(le, 0.0) < count for le, count in before.items())
        resets += reset
        for le in set(before) | set(after):
            merged[le] = merged.get(le, 0.0) + (after.get(le, 0.0) if reset else after.get(le, 0.0) - before.get(le, 0.0))
    total = sum(statuses.values())
    errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    return Window(total, errors, {s: n for s, n in sorted(statuses.items()) if n}, sorted(merged.items()), resets)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile (seconds) of cumulative histogram buckets, interpolated linearly inside
    the bucket it falls in, as Prometheus' histogram_quantile does. None without observations;
    in the +Inf bucket, the highest finite bound (the histogram cannot say more)."""
    if not buckets or not math.isinf(buckets[-1][0]) or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def monitoring_source(networks: list[str]) -> str | None:
    """A loopback address inside the monitoring networks: where the gate reads /metrics from."""
    for text in networks:
        net = ipaddress.ip_network(text, strict=False)
        first = net.network_address if net.num_addresses == 1 else next(net.hosts(), net.network_address)
        if first.is_loopback:
            return str(first)
    return None


def _smoke(work: Any, gate: VerifyGate, fetch: Any, stop: threading.Event, seen: Counter[str], log: Any) -> None:
    """Round after round of the spec's paths until `stop` (bounded by the window's length)."""
    door = work.backend.front_door(work.env.name)
    rounds = gate.window_s * 1000 // gate.interval_ms + 1
    for _ in range(rounds):
        for path in gate.paths:
            if stop.is_set():
                return
            try:
                reply = fetch(door, path, timeout=gate.timeout_s)
                seen[str(reply.status)] += 1
            except Exception as exc:  # noqa: BLE001 - a request without an answer is a figure too
                seen["no answer"] += 1
                log(f"GET {path}: {exc}")
        if stop.wait(gate.interval_ms / 1000):
            return


def check_verify(work: Any, gate: VerifyGate, log: Any) -> GateResult:
    from wtx.gates import CheckError, fetch

    env = work.env
    source = monitoring_source(env.logging.monitoring_networks)
    if source is None:
        raise CheckError(f"no loopback address in {env.name}'s monitoring_networks "
                         f"{env.logging.monitoring_networks}: /metrics cannot be read from here")
    door = work.backend.front_door(env.name)

    def scrape(which: str) -> Scrape:
        reply = fetch(door, "/metrics", source=source, timeout=gate.timeout_s)
        log(f"GET /metrics from {source} ({which}) -> {reply.status}, {len(reply.body)} bytes")
        if reply.status != 200:
            raise CheckError(f"/metrics from {source} answered {reply.status}")
        try:
            return parse(reply.body.decode("utf-8", "replace"))
        except ValueError as exc:
            raise CheckError(f"/metrics is not a Prometheus exposition: {exc}") from None

    first = scrape("start of the window")
    seen: Counter[str] = Counter()
    stop = threading.Event()
    traffic = threading.Thread(target=_smoke, args=(work, gate, fetch, stop, seen, log), daemon=True)
    started = time.monotonic()
    traffic.start()
    stop.wait(gate.window_s)
    stop.set()
    traffic.join(gate.timeout_s + 5)
    last = scrape("end of the window")
    seconds = round(time.monotonic() - started, 1)

    w = window(first, last)
    p95 = quantile(0.95, w.buckets)
    p95_ms = round(p95 * 1000) if p95 is not None else None
    figures: dict[str, Any] = {"window_s": seconds, "requests": w.requests, "server_errors": w.server_errors,
                               "error_rate": round(w.error_rate, 4), "p95_ms": p95_ms, "statuses": w.statuses,
                               "resets": w.resets, "smoke_requests": dict(seen)}
    log(f"window {seconds} s: {figures}")
    if w.requests < gate.min_requests:
        return GateResult(gate.check, False, f"/metrics counted {w.requests} request(s) in {seconds} s (at least "
                          f"{gate.min_requests}): nothing was verified", figures)
    problems = []
    if w.error_rate > gate.max_error_rate:
        problems.append(f"error rate {w.error_rate:.2%} ({w.server_errors} of {w.requests} answered 5xx in "
                        f"{seconds} s; at most {gate.max_error_rate:.2%})")
    if p95_ms is None:
        problems.append("/metrics has no latency histogram for the window")
    elif p95_ms > gate.p95_ms:
        problems.append(f"p95 {p95_ms} ms over {w.requests} requests in {seconds} s (at most {gate.p95_ms})")
    if problems:
        more = f" (and {len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
        return GateResult(gate.check, False, problems[0] + more, figures)
    return GateResult(gate.check, True, f"{w.requests} requests in {seconds} s: error rate {w.error_rate:.2%} "
                      f"(at most {gate.max_error_rate:.2%}), p95 {p95_ms} ms (at most {gate.p95_ms})", figures)
