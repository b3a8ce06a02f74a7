"""Many buyers at once: fire requests from threads released together by a barrier.

Every request has a bounded timeout and the whole race a bounded wait, so a deadlock in the
app shows up as a failed outcome, never as a hung test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

GOOD_CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def order_payload(performance_id: int, price_type_id: int, quantity: int = 1, *, email: str = "buyer@example.org") -> dict[str, Any]:
    return {
        "lines": [{"performance_id": performance_id, "price_type_id": price_type_id, "quantity": quantity}],
        "buyer": {"first_name": "Rush", "last_name": "Buyer", "email": email},
        "card": GOOD_CARD,
    }


@dataclass(frozen=True)
class Request:
    path: str
    json: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: int  # 0: no HTTP answer (timeout, connection error)
    body: Any
    seconds: float
    error: str = ""

    @property
    def code(self) -> str:
        return self.body.get("code", "") if isinstance(self.body, dict) else ""


def race(base_url: str, requests: list[Request], *, timeout: float = 30.0) -> list[Outcome]:
    """POST every request at once (one thread each) and return the outcomes in order."""
    barrier = threading.Barrier(len(requests), timeout=timeout)

    def one(req: Request) -> Outcome:
        with httpx.Client(base_url=base_url, timeout=timeout) as client:
            barrier.wait()
            started = time.perf_counter()
            try:
                r = client.post(req.path, json=req.json, headers=req.headers)
            except httpx.HTTPError as exc:
                return Outcome(0, None, time.perf_counter() - started, repr(exc))
            try:
                body = r.json()
            except ValueError:
                body = r.text
            return Outcome(r.status_code, body, time.perf_counter() - started)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(one, req) for req in requests]
        return [f.result(timeout=timeout * 2) for f in futures]


def tally(outcomes: list[Outcome]) -> Counter[tuple[int, str]]:
    """(status, error code) -> how many: a readable summary for assertion messages."""
    return Counter((o.status, o.code) for o in outcomes)
