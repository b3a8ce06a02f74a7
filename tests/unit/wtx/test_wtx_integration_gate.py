"""The `integration` gate's decisions: a stand-in app server on loopback that sells seats
with or without its lock, and a fake backend whose `wondertix shell` creates the scratch
performance and counts its tickets from that server's books. The real race against stg is
in tests/deploy/test_d_stg_gates.py.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_wtx_pipeline import FakeBackend, fake_release
from wtx_testing import ROOT

from wtx import gate_integration, gate_scratch, gates
from wtx import release as releases
from wtx.backends import FrontDoor

R1 = "aaaa11112222"


class Box:
    """The stand-in's books: `capacity` seats; `locked` sells each seat once."""

    def __init__(self) -> None:
        self.capacity = 8
        self.tickets = 0
        self.locked = True
        self.fail_every = 0
        self.requests = 0
        self.gets = 0
        self.lock = threading.Lock()

    def sell(self) -> int:
        with self.lock:
            self.requests += 1
            if self.fail_every and self.requests % self.fail_every == 0:
                return 500
        if self.locked:
            with self.lock:
                if self.tickets >= self.capacity:
                    return 409
                self.tickets += 1
                return 201
        seen = self.tickets          # check, then write: the race the lock prevents
        time.sleep(0.01)
        if seen >= self.capacity:
            return 409
        with self.lock:
            self.tickets += 1
        return 201


@pytest.fixture
def box():
    books = Box()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            books.gets += 1
            self.send_response(200 if self.headers.get("Authorization") else 401)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self):  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = books.sell() if self.path == "/api/v1/orders" and self.headers.get("Idempotency-Key") else 400
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 64  # 32 buyers connect at once

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    books.port = server.server_address[1]
    yield books
    server.shutdown()
    server.server_close()


class Stg(FakeBackend):
    def __init__(self, spec: Any, var_dir: Path, books: Box) -> None:
        super().__init__(spec, var_dir)
        self.books = books
        self.scripts: list[str] = []
        self.removal: dict[str, Any] = {"removed": True, "rows": {"sales.Order": 8, "sales.Ticket": 8}}

    def app_door(self, env: str) -> FrontDoor:
        return FrontDoor(host="stg.wondertix.localhost", port=self.books.port)

    def front_door(self, env: str) -> FrontDoor:
        return FrontDoor(host="stg.wondertix.localhost", port=self.books.port, basic_auth=("rehearsal", "not-a-secret"))

    def manage(self, env: Any, rel: Any, *args: str, timeout: float = 600, overrides: Any = None):
        assert args[:2] == ("shell", "-c") and overrides is None  # stg's own database
        script = args[2]
        self.scripts.append(script)
        if gate_scratch.AUDIT_ACTION in script:
            return subprocess.CompletedProcess(args, 0, gate_integration.MARK + json.dumps(self.removal) + "\n", "")
        if "Performance.objects.create" in script:
            self.books.capacity = int(script.split("capacity=")[1].split(")")[0])
            out = {"event": 7, "performance": 11, "price_type": 13}
        else:
            out = {"tickets": self.books.tickets, "tickets_sold": min(self.books.tickets, self.books.capacity),
                   "capacity": self.books.capacity}
        return subprocess.CompletedProcess(args, 0, gate_integration.MARK + json.dumps(out) + "\n", "")


def _gate(spec, var_dir, books, **thresholds):
    fake_release(var_dir, R1)
    backend = Stg(spec, var_dir, books)
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("integration").model_copy(update={"suites": [], "journeys": [], **thresholds})
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        return gates.run_check(work, gate), backend


def test_the_last_seats_sold_exactly_once_to_32_buyers_pass(spec, var_dir, box):
    result, backend = _gate(spec, var_dir, box)
    print(f"\n{result.summary} {result.figures}")
    assert result.passed, result.summary
    assert result.figures | {"buyers": 32, "seats": 8, "orders_201": 8, "tickets": 8, "oversold": 0,
                             "server_errors": 0, "statuses": {"201": 8, "409": 24}} == result.figures
    assert box.requests == 32  # bounded: one request per buyer
    # The scratch event is labelled with the gate run and taken off sale afterwards.
    assert "[wtx gate integration run1]" in backend.scripts[0]
    assert "update(active=False)" in backend.scripts[1]
    # ...and then removed with what was sold on it, by its pk and slug, in one transaction.
    assert "get(pk=7, slug='wtx-gate-integration-run1')" in backend.scripts[2]
    assert "transaction.atomic()" in backend.scripts[2] and len(backend.scripts) == 3
    assert result.figures["scratch"] == backend.removal
    assert result.summary.endswith("; scratch event removed (8 orders)")


def test_scratch_data_the_release_refuses_to_remove_stays_and_the_gate_says_so(spec, var_dir, box):
    fake_release(var_dir, R1)
    backend = Stg(spec, var_dir, box)
    backend.removal = {"removed": False, "reason": "ProtectedError: a refund refers to an order"}
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("integration").model_copy(update={"suites": [], "journeys": []})  # the race alone
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run2") as work:
        result = gates.run_check(work, gate)
    assert result.passed, result.summary  # the verdict is the count; tidying never fails a gate
    assert result.summary.endswith("; scratch event NOT removed, left off sale: ProtectedError: a refund refers to an order")
    assert result.figures["scratch"]["removed"] is False


def test_a_sale_without_its_lock_oversells_and_fails_the_gate(spec, var_dir, box):
    box.locked = False
    result, _ = _gate(spec, var_dir, box)
    print(f"\n{result.summary} {result.figures}")
    assert not result.passed
    assert result.figures["oversold"] > 0
    assert result.summary.startswith(f"oversold: {box.tickets} tickets for 8 seats")


def test_server_errors_fail_the_gate_even_without_an_oversell(spec, var_dir, box):
    box.fail_every = 16
    result, _ = _gate(spec, var_dir, box)
    assert not result.passed and result.figures["oversold"] == 0
    assert result.summary.startswith("2 of 32 orders answered 5xx or nothing (at most 0)")


def test_a_race_that_sold_fewer_seats_than_it_could_proves_nothing(spec, var_dir, box):
    box.fail_every = 1  # every order refused: nothing sold, nothing oversold
    result, _ = _gate(spec, var_dir, box, max_server_errors=100)
    assert not result.passed
    assert result.summary.startswith("only 0 of 8 seats sold to 32 buyers")


def test_no_app_server_answering_fails_the_gate(spec, var_dir, box):
    box.port = 9  # nothing listens on loopback's discard port
    result, _ = _gate(spec, var_dir, box, buyers=4)
    assert not result.passed and result.figures["statuses"] == {"0": 4}


# --------------------------------------------------------------------------------------------
# The integration suites after the race


class StgWithScratch(Stg):
    def __init__(self, spec: Any, var_dir: Path, books: Box) -> None:
        super().__init__(spec, var_dir, books)
        self.scratch: list[str] = []

    @contextlib.contextmanager
    def scratch_database(self, env: str, progress: Any = None):
        self.scratch.append("made")
        try:
            yield "postgres://one-off:not-a-secret@127.0.0.1:5533/wondertix_stg_integration"
        finally:
            self.scratch.append("dropped")


@pytest.fixture
def fake_suites(monkeypatch):
    """pytest of the suites, faked: its JUnit report says what `outcome` holds."""
    outcome = {"tests": 12, "failures": 0, "skipped": 1, "stdout": "", "calls": []}

    def run(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        outcome["calls"].append((args, options))
        report = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
        Path(report).write_text(f'<testsuites><testsuite tests="{outcome["tests"]}" failures="{outcome["failures"]}" '
                                f'errors="0" skipped="{outcome["skipped"]}"/></testsuites>')
        return subprocess.CompletedProcess(args, 1 if outcome["failures"] else 0, outcome["stdout"], "")

    monkeypatch.setattr(gate_integration, "run_pytest", run)
    monkeypatch.setattr(gates.Workspace, "checkout", lambda self: ROOT)
    monkeypatch.setattr(gates.Workspace, "python", lambda self: Path("/usr/bin/python3"))
    return outcome


def _gate_with_suites(spec, var_dir, books, **thresholds):
    fake_release(var_dir, R1)
    backend = StgWithScratch(spec, var_dir, books)
    backend.running["stg"] = R1
    gate = spec.env("stg").gate("integration").model_copy(update={"journeys": [], **thresholds})
    with gates.Workspace(spec, backend, ROOT, spec.env("stg"), releases.get(R1, var_dir), "run1") as work:
        return gates.run_check(work, gate), backend


def test_the_suites_run_on_a_scratch_database_of_stgs_cluster_that_is_dropped_afterwards(spec, var_dir, box, fake_suites):
    result, backend = _gate_with_suites(spec, var_dir, box)
    print(f"\n{result.summary} {result.figures}")
    assert result.passed, result.summary
    assert backend.scratch == ["made", "dropped"]
    args, options = fake_suites["calls"][0]
    assert args[-len(spec.env("stg").gate("integration").suites):] == spec.env("stg").gate("integration").suites
    assert options["env"]["WONDERTIX_TEST_DATABASE_URL"].endswith("/wondertix_stg_integration")
    assert "DATABASE_URL" not in options["env"]  # nothing of the operator's shell
    assert result.figures | {"suites_passed": 11, "suites_failed": 0, "suites_skipped": 1} == result.figures
    assert result.figures["suites_from"].startswith("checkout at ")
    assert "suites 11 passed, 0 failed, 1 skipped" in result.summary


def test_a_failing_suite_fails_the_gate_naming_the_first_failure_and_still_drops_the_scratch_database(
        spec, var_dir, box, fake_suites):
    fake_suites.update(failures=1, stdout="FAILED tests/integration/test_concurrency.py::test_64_buyers - boom\n")
    result, backend = _gate_with_suites(spec, var_dir, box)
    assert not result.passed and backend.scratch == ["made", "dropped"]
    assert result.summary == ("integration suites: 10 passed, 1 failed (at most 0); "
                              "first: tests/integration/test_concurrency.py::test_64_buyers")


def test_suites_that_pass_nothing_fail_the_gate(spec, var_dir, box, fake_suites):
    fake_suites.update(tests=3, skipped=3)
    result, _ = _gate_with_suites(spec, var_dir, box)
    assert not result.passed and "nothing was checked" in result.summary
