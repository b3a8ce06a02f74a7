"""The `performance` gate: a short locust on-sale scenario against the environment's front
door (headless, loopback only, bounded users and run time from the spec).

The release (`wondertix shell`) creates a scratch performance, labelled like the
integration gate's; locust's patrons (src/wtx/locust_onsale.py) browse and buy one ticket
at a time for `run_seconds`; the release then counts the tickets (oversold?) and removes the
scratch event and its sales (wtx.gate_scratch). Each endpoint's median is also held against the
newest passing run of another release in the environment (max_slowdown): a page made ten times
slower stays far under an absolute p95 that the whole run must meet. Thresholds: the 95th percentile over every request (p95_ms), the error rate
(max_error_rate; a 429 from the front door's limits counts as an error) and oversold. The
locust CSV and HTML report stay in the gate's log directory; the ledger record names them.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

from wtx import gate_scratch
from wtx.backends import DeployError
from wtx.gate_integration import _count_script, _setup_script, release_shell
from wtx.pipeline import GateResult
from wtx.spec import PerformanceGate

LOCUSTFILE = Path(__file__).with_name("locust_onsale.py")


def run_locust(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, **options)  # noqa: S603 - our own arguments


def read_stats(path: Path) -> dict[str, Any]:
    """The Aggregated row of locust's `<prefix>_stats.csv`, the orders row, and each
    endpoint's median and p95 (`endpoints`, by locust's request name)."""
    from wtx.gates import CheckError

    if not path.is_file():
        raise CheckError(f"locust wrote no statistics ({path.name}): see the log")
    figures: dict[str, Any] = {}
    endpoints: dict[str, dict[str, float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                figures.update(requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                               p95_ms=float(row["95%"] or 0), median_ms=float(row["50%"] or 0),
                               rps=round(float(row["Requests/s"] or 0), 1))
                continue
            if row.get("Name") == "/api/v1/orders":
                figures["orders"] = int(row["Request Count"])
            if row.get("Name") and int(row.get("Request Count") or 0):
                endpoints[f"{row.get('Type', '')} {row['Name']}".strip()] = {
                    "requests": int(row["Request Count"]), "median_ms": float(row["50%"] or 0),
                    "p95_ms": float(row["95%"] or 0)}
    if "requests" not in figures:
        raise CheckError(f"locust's {path.name} has no Aggregated row: see the log")
    figures["endpoints"] = endpoints
    return figures


def baseline(var_dir: Path, env: str, release_id: str) -> tuple[str, dict[str, Any]] | None:
    """The newest passing performance gate of another release in `env` that measured each
    endpoint: (its release, its `endpoints` figures). None before the first such run."""
    from wtx import ledger

    for record in reversed(ledger.read(var_dir, env)):
        figures = record.get("figures") or {}
        if (record.get("event") == "gate" and record.get("check") == "performance" and record.get("passed") is True
                and record.get("release") != release_id and isinstance(figures.get("endpoints"), dict)):
            return str(record["release"]), figures["endpoints"]
    return None


def slowdowns(endpoints: dict[str, Any], before: dict[str, Any], max_slowdown: float,
              min_ms: float) -> tuple[dict[str, float], list[str]]:
    """Each endpoint's median as a multiple of the baseline's, and the endpoints slower than
    `max_slowdown` times it by at least `min_ms` (a few milliseconds more on a fast page is
    noise, not a regression), slowest first, as "NAME median X ms, N× the Y ms"."""
    ratios: dict[str, float] = {}
    slower: list[tuple[float, str]] = []
    for name, now in endpoints.items():
        was = before.get(name)
        if not isinstance(was, dict) or not was.get("median_ms"):
            continue
        ratio = round(float(now["median_ms"]) / float(was["median_ms"]), 1)
        ratios[name] = ratio
        if ratio > max_slowdown and float(now["median_ms"]) - float(was["median_ms"]) >= min_ms:
            slower.append((ratio, f"{name} median {now['median_ms']:.0f} ms, {ratio:g}× the {was['median_ms']:.0f} ms"))
    return ratios, [text for _, text in sorted(slower, reverse=True)]


def check_performance(work: Any, gate: PerformanceGate, log: Any) -> GateResult:
    from wtx.gates import CheckError, _clean_env

    backend, env = work.backend, work.env

    def manage(script: str, what: str) -> dict[str, Any]:
        return release_shell(work, script, what, timeout=gate.timeout_s, log=log)

    try:
        door = backend.front_door(env.name)
    except DeployError as exc:
        raise CheckError(str(exc)) from None
    run = f"perf-{work.run}"
    made = manage(_setup_script(run, gate.seats), "creating the scratch performance")
    prefix = work.dir / "performance"
    scheme = "https" if door.tls else "http"
    values = {**_clean_env(work.dir), "WTX_PERF_HOST": f"{door.host}:{door.port}",
              "WTX_PERF_AUTH": ":".join(door.basic_auth) if door.basic_auth else "",
              "WTX_PERF_PERFORMANCE": str(made["performance"]), "WTX_PERF_PRICE_TYPE": str(made["price_type"]),
              "WTX_PERF_TAG": work.run}
    if door.tls and door.cafile:
        values["REQUESTS_CA_BUNDLE"] = str(door.cafile)
    args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(gate.users),
            "-r", str(gate.spawn_rate), "-t", f"{gate.run_seconds}s", "--stop-timeout", "5",
            "--host", f"{scheme}://{door.address}:{door.port}", "--csv", str(prefix),
            "--html", str(prefix) + ".html", "--only-summary", "--loglevel", "WARNING"]
    log(f"$ {' '.join(args)}")
    try:
        res = run_locust(args, env=values, cwd=work.dir, timeout=gate.run_seconds + 120)
    finally:
        counted = manage(_count_script(int(made["event"]), int(made["performance"])), "counting the tickets")
    scratch = gate_scratch.remove(work, made, f"wtx-gate-integration-{run}", timeout=gate.timeout_s, log=log)
    log(f"(locust exit {res.returncode})\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    stats = read_stats(Path(str(prefix) + "_stats.csv"))
    tickets, capacity = int(counted["tickets"]), int(counted["capacity"])
    oversold = max(0, tickets - capacity, int(counted["tickets_sold"]) - capacity)
    error_rate = round(stats["failures"] / stats["requests"], 4) if stats["requests"] else 1.0
    figures: dict[str, Any] = {**stats, "error_rate": error_rate, "tickets": tickets, "seats": capacity,
                               "oversold": oversold, "users": gate.users, "run_seconds": gate.run_seconds,
                               "report": work.relative(Path(str(prefix) + ".html")),
                               "report_csv": work.relative(Path(str(prefix) + "_stats.csv")), "scratch": scratch}
    problems = []
    base = baseline(backend.var_dir, env.name, work.release.id)
    ratios: dict[str, float] = {}
    if base is not None:
        ratios, slower = slowdowns(stats["endpoints"], base[1], gate.max_slowdown, gate.slowdown_min_ms)
        figures.update(baseline_release=base[0], slowdowns=ratios)
        log(f"each endpoint's median against release {base[0]}'s: {ratios}")
        if slower:
            problems.append(f"{slower[0]} of release {base[0]} (at most {gate.max_slowdown:g}×)"
                            + (f" (+{len(slower) - 1} more endpoints)" if len(slower) > 1 else ""))
    else:
        figures["baseline_release"] = "none"
    if not stats["requests"] or not stats.get("orders"):
        problems.append(f"locust sent {int(stats['requests'])} requests, {int(stats.get('orders', 0))} orders: nothing was measured")
    if oversold > gate.max_oversold:
        problems.append(f"oversold: {tickets} tickets for {capacity} seats (at most {gate.max_oversold} over)")
    if stats["p95_ms"] > gate.p95_ms:
        problems.append(f"p95 {stats['p95_ms']:.0f} ms over {int(stats['requests'])} requests (at most {gate.p95_ms})")
    if error_rate > gate.max_error_rate:
        problems.append(f"error rate {error_rate:.2%} ({int(stats['failures'])} of {int(stats['requests'])}; "
                        f"at most {gate.max_error_rate:.2%})")
    if problems:
        more = f" (and {len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
        return GateResult(gate.check, False, problems[0] + more, figures)
    return GateResult(gate.check, True, f"{gate.users} patrons for {gate.run_seconds} s: {int(stats['requests'])} requests "
                      f"({int(stats.get('orders', 0))} orders), p95 {stats['p95_ms']:.0f} ms (at most {gate.p95_ms}), "
                      f"errors {error_rate:.2%}, oversold 0; {_against(base, ratios)}; {gate_scratch.summary(scratch)}; "
                      f"report {figures['report']}", figures)


def _against(base: tuple[str, dict[str, Any]] | None, ratios: dict[str, float]) -> str:
    if base is None:
        return "no earlier run here to compare endpoints with"
    if not ratios:
        return f"no endpoint in common with release {base[0]}'s run"
    name = max(ratios, key=lambda n: ratios[n])
    return f"slowest against release {base[0]}: {name} {ratios[name]:g}×"
