"""The `performance` gate: a short locust on-sale scenario against the environment's front
door (headless, loopback only, bounded users and run time from the spec).

The release (`wondertix shell`) creates a scratch performance, labelled like the
integration gate's; locust's patrons (src/wtx/locust_onsale.py) browse and buy one ticket
at a time for `run_seconds`; the release then counts the tickets (oversold?) and takes the
event off sale. Thresholds: the 95th percentile over every request (p95_ms), the error rate
(max_error_rate; a 429 from the front door's limits counts as an error) and oversold. The
locust CSV and HTML report stay in the gate's log directory; the ledger record names them.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

from wtx.backends import DeployError
from wtx.gate_integration import _count_script, _setup_script, release_shell
from wtx.pipeline import GateResult
from wtx.spec import PerformanceGate

LOCUSTFILE = Path(__file__).with_name("locust_onsale.py")


def run_locust(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, **options)  # noqa: S603 - our own arguments


def read_stats(path: Path) -> dict[str, float]:
    """The Aggregated row of locust's `<prefix>_stats.csv`, and the orders row."""
    from wtx.gates import CheckError

    if not path.is_file():
        raise CheckError(f"locust wrote no statistics ({path.name}): see the log")
    figures: dict[str, float] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                figures.update(requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                               p95_ms=float(row["95%"] or 0), median_ms=float(row["50%"] or 0),
                               rps=round(float(row["Requests/s"] or 0), 1))
            elif row.get("Name") == "/api/v1/orders":
                figures["orders"] = int(row["Request Count"])
    if "requests" not in figures:
        raise CheckError(f"locust's {path.name} has no Aggregated row: see the log")
    return figures


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
    log(f"(locust exit {res.returncode})\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    stats = read_stats(Path(str(prefix) + "_stats.csv"))
    tickets, capacity = int(counted["tickets"]), int(counted["capacity"])
    oversold = max(0, tickets - capacity, int(counted["tickets_sold"]) - capacity)
    error_rate = round(stats["failures"] / stats["requests"], 4) if stats["requests"] else 1.0
    figures: dict[str, Any] = {**stats, "error_rate": error_rate, "tickets": tickets, "seats": capacity,
                               "oversold": oversold, "users": gate.users, "run_seconds": gate.run_seconds,
                               "report": work.relative(Path(str(prefix) + ".html")),
                               "report_csv": work.relative(Path(str(prefix) + "_stats.csv"))}
    problems = []
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
                      f"errors {error_rate:.2%}, oversold 0; report {figures['report']}", figures)
