"""An on-sale rush through the front door, each buyer from an address of its own.

Buyers are threads. Each places orders of two tickets (`POST /api/v1/orders`, an
`Idempotency-Key` per order) one after another with a short pause, as long as the rush lasts
or until the performance is sold out. A buyer behaves like a real client: an answer it got is
final; a 5xx or a connection error (which the platform must never let reach it — that is what
the tests count) is sent again with the same key, a bounded number of times. Every request,
wait and loop is bounded.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.support.buyers import order_payload

from wtx.backends import FrontDoor

ANSWER_TIMEOUT_S = 120.0  # a patron's browser waits this long for one answer
RESENDS = 5               # after a 5xx / connection error, sent again with the same key
PAUSE_S = 1.0             # between a buyer's orders (keeps a buyer under the per-address order limit)
TICKETS_PER_ORDER = 2


class _Connection(http.client.HTTPSConnection):
    """TLS to the front door's address from `source`, SNI and certificate for its hostname."""

    def __init__(self, door: FrontDoor, source: str, ctx: ssl.SSLContext) -> None:
        super().__init__(door.address, door.port, timeout=ANSWER_TIMEOUT_S, context=ctx,
                         source_address=(source, 0))
        self._name, self._ctx = door.host, ctx

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._name)


@dataclass
class Rush:
    door: FrontDoor
    sources: list[str]
    performance: int
    price_type: int
    seconds: float = 120.0                 # the rush ends by itself after this long
    acknowledged: dict[str, str] = field(default_factory=dict)   # key -> order token (201)
    completions: list[float] = field(default_factory=list)       # monotonic time of each 201
    failures: list[str] = field(default_factory=list)            # every 5xx / connection error
    statuses: Counter[int] = field(default_factory=Counter)
    sold_out: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.door.cafile is None or not self.door.tls:
            raise ValueError("the rush goes through the TLS front door with wtx's certificate")
        self._ctx = ssl.create_default_context(cafile=str(self.door.cafile))

    def start(self) -> Rush:
        self._threads = [threading.Thread(target=self._buyer, args=(src,), daemon=True) for src in self.sources]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = ANSWER_TIMEOUT_S + 10) -> None:
        """No new order is started; waits for the ones in flight to be answered."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))

    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait_done(self, timeout: float) -> bool:
        """Until every buyer stopped by itself (sold out) or `timeout`; True when they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            time.sleep(0.2)
        return not self.running()

    def acknowledged_since(self, t: float) -> int:
        with self._lock:
            return sum(1 for c in self.completions if c > t)

    def outage_after(self, t: float) -> float:
        """The longest stretch without an order acknowledged (201), from `t` on."""
        with self._lock:
            times = [t, *sorted(c for c in self.completions if c > t)]
        return max(b - a for a, b in zip(times, times[1:], strict=False)) if len(times) > 1 else float("inf")

    # -- one buyer ---------------------------------------------------------------------------
    def _post(self, source: str, key: str) -> tuple[int, Any]:
        conn = _Connection(self.door, source, self._ctx)
        body = json.dumps(order_payload(self.performance, self.price_type, TICKETS_PER_ORDER,
                                        email=f"rush-{source.replace('.', '-')}@example.org"))
        try:
            conn.request("POST", "/api/v1/orders", body=body, headers={
                "Host": self.door.host, "Content-Type": "application/json", "Idempotency-Key": key,
                "Connection": "close"})
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            return 0, repr(exc)
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw[:200]

    def _buyer(self, source: str) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and not self.sold_out and time.monotonic() < deadline:
            key = str(uuid.uuid4())
            for _attempt in range(1 + RESENDS):
                status, body = self._post(source, key)
                with self._lock:
                    self.statuses[status] += 1
                    if status == 0 or status >= 500:
                        self.failures.append(f"{source} {key}: {status} {str(body)[:160]}")
                if status == 0 or status >= 500:
                    time.sleep(1.0)
                    continue
                break
            if status == 201 and isinstance(body, dict):
                with self._lock:
                    self.acknowledged[key] = str(body.get("token"))
                    self.completions.append(time.monotonic())
            elif status == 409 and isinstance(body, dict) and body.get("code") == "sold_out":
                self.sold_out = True
                return
            elif status == 429:
                time.sleep(float(PAUSE_S * 3))
            time.sleep(PAUSE_S)
