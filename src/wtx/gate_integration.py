"""The `integration` gate: the no-oversell proof against the environment's own PostgreSQL and
the release as installed there.

1. The release (`wondertix shell -c`, the environment's variables) creates a scratch event
   with one performance of `seats` seats, titled "[wtx gate integration <run>]".
2. `buyers` buyers, released together by a barrier, each POST one order of one ticket to
   the active app server (its own port on loopback: the front door limits orders per
   client address, and every buyer here is 127.0.0.1). Exactly `buyers` requests: bounded.
3. The release counts the performance's valid tickets and its `tickets_sold` and takes the
   scratch event off sale (inactive: no patron sees it); then it removes the event and what
   was sold on it (wtx.gate_scratch), so stg's data does not grow with every gate run.

It fails when more tickets exist than seats (oversold), when any request answered 5xx or
not at all, or when fewer orders than min(buyers, seats) were sold (a race that did not
contest the last seats proves nothing).

4. With `suites` (pytest paths), the integration suites run next (run_suites): the checkout's
   tests at the release's commit — a release ships no tests; the checkout is first proven
   byte-identical to the release's wheel — with an interpreter whose path is the release as
   installed, against an empty scratch database in the environment's own PostgreSQL cluster
   (`WONDERTIX_TEST_DATABASE_URL`; reached only by a one-off role; dropped afterwards, pass or
   fail). The tests start their own app servers (gunicorn from the release's dependencies) on
   free loopback ports. More than `max_failures` failures, or no test passing, fail the gate.

5. With `journeys`, the browser journeys run last, the same way (wtx.gate_journeys).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from typing import Any

from wtx import gate_scratch
from wtx.backends import DeployError, FrontDoor
from wtx.pipeline import GateResult
from wtx.spec import IntegrationGate

MARK = "WTX-INTEGRATION "
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def _setup_script(run: str, seats: int) -> str:
    return f"""
import json
from datetime import timedelta
from django.utils import timezone
from wondertix.catalog.models import Event, Performance, PriceType

event = Event.objects.create(title={f"[wtx gate integration {run}]"!r}, slug={f"wtx-gate-integration-{run}"!r},
                             active=True, description="A scratch event of wtx's integration gate; not on sale.")
price = PriceType.objects.create(event=event, name="Gate", price_cents=100, fee_cents=0)
perf = Performance.objects.create(event=event, starts_at=timezone.now() + timedelta(days=30), capacity={seats})
print({MARK!r} + json.dumps({{"event": event.pk, "performance": perf.pk, "price_type": price.pk}}))
"""


def _count_script(event: int, performance: int) -> str:
    return f"""
import json
from wondertix.catalog.models import Event, Performance
from wondertix.sales.models import Ticket

perf = Performance.objects.get(pk={performance})
valid = Ticket.objects.filter(performance_id={performance}, status=Ticket.VALID).count()
Event.objects.filter(pk={event}).update(active=False)
print({MARK!r} + json.dumps({{"tickets": valid, "tickets_sold": perf.tickets_sold, "capacity": perf.capacity}}))
"""


def release_shell(work: Any, script: str, what: str, *, timeout: float, log: Any) -> dict[str, Any]:
    """Run `script` with the release's `wondertix shell -c` on the environment's database
    (logged), and return the JSON it printed after MARK."""
    backend, env, rel = work.backend, work.env, work.release
    log(f"$ wondertix shell -c <{what}>  (release {rel.id}, {env.name}'s database)")
    res: subprocess.CompletedProcess[str] = backend.manage(env, rel, "shell", "-c", script, timeout=timeout)
    log(f"(exit {res.returncode})\n{res.stdout}\n{res.stderr}")
    return _marked(res, what)


def _marked(res: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    from wtx.gates import CheckError

    line = next((ln for ln in res.stdout.splitlines() if ln.startswith(MARK)), None)
    if res.returncode != 0 or line is None:
        lines = [ln for ln in (res.stderr or res.stdout or "").strip().splitlines() if ln.strip()]
        raise CheckError(f"{what} failed: {lines[-1] if lines else f'exit code {res.returncode}'}")
    try:
        data: dict[str, Any] = json.loads(line[len(MARK):])
    except ValueError:
        raise CheckError(f"{what} answered what the gate cannot read: {line[:200]}") from None
    return data


def post_json(door: FrontDoor, path: str, body: dict[str, Any], headers: dict[str, str],
              timeout: float) -> tuple[int, bytes]:
    """POST JSON to a loopback server; (0, reason) when it does not answer."""
    if not ipaddress.ip_address(door.address).is_loopback:
        raise ValueError(f"{door.address} is not a loopback address")
    conn = http.client.HTTPConnection(door.address, door.port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={
            "Host": door.host, "Content-Type": "application/json", "Connection": "close", **headers})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}".encode()
    finally:
        conn.close()


def race(door: FrontDoor, performance: int, price_type: int, buyers: int, timeout: float,
         tag: str) -> list[tuple[int, bytes]]:
    """`buyers` threads, released together, each POST one order of one ticket (bounded)."""
    barrier = threading.Barrier(buyers)
    answers: list[tuple[int, bytes]] = [(0, b"not sent")] * buyers

    def buy(i: int) -> None:
        body = {"lines": [{"performance_id": performance, "price_type_id": price_type, "quantity": 1}],
                "buyer": {"first_name": "Gate", "last_name": f"Buyer {i}", "email": f"gate-{tag}-{i}@example.com"},
                "card": CARD}
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass  # go anyway: a slow thread start must not cancel the race
        answers[i] = post_json(door, "/api/v1/orders", body, {"Idempotency-Key": f"wtx-gate-{tag}-{i}-{uuid.uuid4().hex[:8]}"},
                               timeout)

    threads = [threading.Thread(target=buy, args=(i,), daemon=True) for i in range(buyers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout * 2 + 5)
    return answers


def run_pytest(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, **options)  # noqa: PLW1510 - the caller reads the report and the exit code


def run_suites(work: Any, gate: IntegrationGate, log: Any) -> tuple[dict[str, Any], list[str]]:
    """The integration suites: the checkout's tests at the release's commit (a release ships
    no tests; the checkout is proven byte-identical to its wheel first), run by an interpreter
    whose path is the release as installed, against an empty scratch database in the
    environment's own cluster (dropped afterwards). Returns (figures, problems)."""
    from wtx.gates import CheckError, _clean_env, junit_totals

    python, checkout = work.python(), work.checkout()
    report = work.dir / "integration-suites.xml"
    report.unlink(missing_ok=True)
    args = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *gate.suites]
    started = time.monotonic()
    try:
        with work.backend.scratch_database(work.env.name, progress=log) as url:
            env = {**_clean_env(work.dir), "WONDERTIX_TEST_DATABASE_URL": url}
            log(f"$ {' '.join(args)}  (WONDERTIX_TEST_DATABASE_URL = a scratch database of {work.env.name}'s cluster)")
            res = run_pytest(args, cwd=checkout, capture_output=True, text=True, timeout=gate.suites_timeout_s, env=env)
    except DeployError as exc:
        raise CheckError(str(exc)) from None
    log(res.stdout[-30000:])
    log(res.stderr[-5000:])
    if not report.is_file():
        raise CheckError(f"the integration suites wrote no report (exit {res.returncode})")
    totals = junit_totals(report)
    figures = {"suites_passed": totals["passed"], "suites_failed": totals["failed"],
               "suites_skipped": totals["skipped"], "suites_seconds": round(time.monotonic() - started, 1),
               "suites": gate.suites, "suites_from": f"checkout at {work.release.commit[:12]}"}
    problems = []
    if totals["failed"] > gate.max_failures:
        first = re.search(r"^(?:FAILED|ERROR) (\S+)", res.stdout, re.M)
        problems.append(f"integration suites: {totals['passed']} passed, {totals['failed']} failed (at most "
                        f"{gate.max_failures})" + (f"; first: {first.group(1)}" if first else ""))
    elif totals["passed"] == 0:
        problems.append(f"integration suites: no test passed ({totals['skipped']} skipped): nothing was checked")
    return figures, problems


def check_integration(work: Any, gate: IntegrationGate, log: Any) -> GateResult:
    from wtx.gates import CheckError

    backend, env = work.backend, work.env

    def manage(script: str, what: str) -> dict[str, Any]:
        return release_shell(work, script, what, timeout=gate.timeout_s, log=log)

    try:
        door = backend.app_door(env.name)
    except DeployError as exc:
        raise CheckError(str(exc)) from None
    made = manage(_setup_script(work.run, gate.seats), "creating the scratch performance")
    log(f"scratch performance {made['performance']} ({gate.seats} seats); {gate.buyers} buyers at "
        f"{door.address}:{door.port}")
    started = time.monotonic()
    answers = race(door, int(made["performance"]), int(made["price_type"]), gate.buyers, float(gate.request_timeout_s),
                   work.run)
    race_ms = round((time.monotonic() - started) * 1000)
    counted = manage(_count_script(int(made["event"]), int(made["performance"])), "counting the tickets")
    scratch = gate_scratch.remove(work, made, f"wtx-gate-integration-{work.run}", timeout=gate.timeout_s, log=log)
    statuses = Counter(str(status) for status, _ in answers)
    for status, body in answers:
        if status == 0 or status >= 500:
            log(f"{status or 'no answer'}: {body[:300]!r}")
    sold = statuses.get("201", 0)
    server_errors = sum(n for s, n in statuses.items() if s == "0" or s.startswith("5"))
    tickets, capacity = int(counted["tickets"]), int(counted["capacity"])
    oversold = max(0, tickets - capacity, int(counted["tickets_sold"]) - capacity, sold - capacity)
    figures = {"buyers": gate.buyers, "seats": capacity, "orders_201": sold, "tickets": tickets,
               "tickets_sold": counted["tickets_sold"], "oversold": oversold, "server_errors": server_errors,
               "statuses": dict(statuses), "race_ms": race_ms, "performance": made["performance"], "scratch": scratch}
    problems = []
    if oversold > gate.max_oversold:
        problems.append(f"oversold: {tickets} tickets for {capacity} seats ({sold} orders answered 201) "
                        f"with {gate.buyers} buyers (at most {gate.max_oversold} over)")
    if server_errors > gate.max_server_errors:
        problems.append(f"{server_errors} of {gate.buyers} orders answered 5xx or nothing (at most {gate.max_server_errors})")
    if tickets != sold:
        problems.append(f"{sold} orders answered 201 and {tickets} tickets exist")
    if sold < min(gate.buyers, capacity):
        problems.append(f"only {sold} of {capacity} seats sold to {gate.buyers} buyers ({dict(statuses)}): "
                        "the race did not contest the last seats")
    suites = ""
    if gate.suites and not problems:
        suite_figures, suite_problems = run_suites(work, gate, log)
        figures.update(suite_figures)
        problems += suite_problems
        suites = (f"; suites {suite_figures['suites_passed']} passed, {suite_figures['suites_failed']} failed, "
                  f"{suite_figures['suites_skipped']} skipped in {suite_figures['suites_seconds']} s")
    if gate.journeys and not problems:
        from wtx.gate_journeys import run_journeys

        journey_figures, journey_problems = run_journeys(work, gate, log)
        figures.update(journey_figures)
        problems += journey_problems
        suites += (f"; journeys {journey_figures['journeys_passed']} passed, {journey_figures['journeys_failed']} "
                   f"failed, {journey_figures['journeys_skipped']} skipped in {journey_figures['journeys_seconds']} s")
    if problems:
        more = f" (and {len(problems) - 1} more, see the log)" if len(problems) > 1 else ""
        return GateResult(gate.check, False, problems[0] + more, figures)
    return GateResult(gate.check, True, f"{gate.buyers} buyers for the last {capacity} seats: {sold} sold, "
                      f"oversold 0, 5xx 0 ({dict(statuses)}); {gate_scratch.summary(scratch)}{suites}", figures)
