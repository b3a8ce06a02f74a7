"""Helpers for the deploy tests: an HTTP client that talks to HAProxy on loopback with any
Host header (and, for TLS, the right SNI), and a bounded load generator.

Every request goes to 127.0.0.0/8 only. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Http(http.client.HTTPConnection):
    def __init__(self, port: int, source: str | None, timeout: float) -> None:
        super().__init__("127.0.0.1", port, timeout=timeout,
                         source_address=(source, 0) if source else None)


class _Https(http.client.HTTPSConnection):
    """TLS to 127.0.0.1 with SNI and certificate check for `server_name`."""

    def __init__(self, port: int, server_name: str, cafile: Path, source: str | None,
                 timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(cafile))
        super().__init__("127.0.0.1", port, timeout=timeout, context=ctx,
                         source_address=(source, 0) if source else None)
        self._server_name = server_name
        self._ctx = ctx

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout, self.source_address)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


@dataclass
class Site:
    """One environment as a client sees it: HAProxy's port, the Host, TLS or not."""

    host: str
    port: int
    tls: bool = False
    cafile: Path | None = None
    basic_auth: tuple[str, str] | None = None

    def request(self, method: str, path: str, *, body: Any = None,
                headers: dict[str, str] | None = None, source: str | None = None,
                timeout: float = 15.0, auth: bool = True) -> Reply:
        conn: http.client.HTTPConnection
        if self.tls:
            assert self.cafile is not None
            conn = _Https(self.port, self.host, self.cafile, source, timeout)
        else:
            conn = _Http(self.port, source, timeout)
        hdrs = {"Host": f"{self.host}:{self.port}", "Connection": "close"}
        if self.basic_auth and auth:
            token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            hdrs["Authorization"] = f"Basic {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)


def direct(port: int, host: str) -> Site:
    """An app server itself (bypassing HAProxy), as HAProxy's own checks reach it."""
    return Site(host=host, port=port)


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Sent:
    """One request of a load run: when it started and ended, its request id, its outcome."""

    start: float
    end: float
    rid: str
    ok: bool
    what: str


@dataclass
class LoadResult:
    sent: int = 0
    requests: list[Sent] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    orders: dict[str, str] = field(default_factory=dict)  # idempotency key -> order token
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def buyer(n: int) -> dict[str, Any]:
    return {"first_name": "Load", "last_name": f"Buyer {n}", "email": f"load{n}@example.com"}


GOOD_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


class Load:
    """Threads sending a paced mix of storefront GETs and API purchases at one site.

    Bounded: stops after `seconds` or `max_requests`, whichever comes first. A request
    *fails* when it raises (connection refused/reset, timeout) or answers 5xx; a purchase
    also fails unless it answers 201.
    """

    def __init__(self, site: Site, *, rate: float, seconds: float, threads: int = 8,
                 gets: list[str], purchase: Callable[[int], dict[str, Any]] | None = None,
                 purchase_every: int = 4, max_requests: int = 20_000, clients: int = 1) -> None:
        self.site, self.rate, self.seconds, self.threads = site, rate, seconds, threads
        # clients > 1: request n comes from loopback address n % clients (127.2.x.y), as
        # many patrons do from their own addresses (HAProxy limits sale POSTs per address).
        self.clients = clients
        self.gets, self.purchase, self.purchase_every = gets, purchase, purchase_every
        self.max_requests = max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._n = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def _next(self) -> int | None:
        with self._lock:
            if self._n >= self.max_requests or self._stop.is_set():
                return None
            n = self._n
            self._n += 1
            return n

    def _one(self, n: int) -> None:
        is_purchase = self.purchase is not None and n % self.purchase_every == 0
        key = f"load-{uuid.uuid4().hex}" if is_purchase else ""
        rid = f"load-{uuid.uuid4().hex}"
        path = "/api/v1/orders" if is_purchase else self.gets[n % len(self.gets)]
        what = f"{'POST' if is_purchase else 'GET'} {path} #{n}"
        client = n % self.clients
        source = f"127.2.{client // 250}.{client % 250 + 1}" if self.clients > 1 else None
        start = time.monotonic()
        try:
            if is_purchase:
                assert self.purchase is not None
                reply = self.site.request("POST", path, body=self.purchase(n), source=source,
                                          headers={"Idempotency-Key": key, "X-Request-Id": rid})
            else:
                reply = self.site.get(path, headers={"X-Request-Id": rid}, source=source)
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none ignored
            with self._lock:
                self.result.sent += 1
                self.result.statuses["error"] += 1
                self.result.failures.append(f"{what}: {type(exc).__name__}: {exc}")
                self.result.requests.append(Sent(start, time.monotonic(), rid, False, what))
            return
        with self._lock:
            self.result.sent += 1
            self.result.statuses[str(reply.status)] += 1
            failed = reply.status >= 500 or (is_purchase and reply.status != 201)
            self.result.requests.append(Sent(start, time.monotonic(), rid, not failed, what))
            if failed:
                self.result.failures.append(f"{what}: {reply.status} {reply.text[:200]}")
            elif is_purchase:
                self.result.orders[key] = reply.json()["token"]

    def _worker(self) -> None:
        interval = self.threads / self.rate
        deadline = self._started + self.seconds
        next_at = time.monotonic()
        while time.monotonic() < deadline:
            n = self._next()
            if n is None:
                return
            self._one(n)
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                self._stop.wait(min(pause, max(0.0, deadline - time.monotonic())))
            elif pause < -1.0:
                next_at = time.monotonic()  # fell behind: do not burst to catch up

    def start(self) -> Load:
        self._started = time.monotonic()
        for i in range(self.threads):
            t = threading.Thread(target=self._worker, name=f"load-{i}", daemon=True)
            self._workers.append(t)
            t.start()
            time.sleep(1.0 / self.rate)  # stagger the threads so the pacing is even
        return self

    def join(self) -> LoadResult:
        for t in self._workers:
            t.join(self.seconds + 60)
        self._stop.set()
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def stop(self) -> None:
        self._stop.set()


def log_text(logs: Path, kind: str) -> str:
    """Every line of an environment's `kind` logs ("access", "app"): one file per slot.
    (`logs/access.log` or `logs/app.log`, the single files of old, mean their directory.)"""
    if logs.name in ("access.log", "app.log"):
        logs = logs.parent
    return "".join(p.read_text(errors="replace") for p in sorted(logs.glob(f"{kind}-*.log")))


def served_by(logs: Path) -> dict[str, str]:
    """request id -> "env/slot" of the app server that answered it (from the access logs)."""
    found: dict[str, str] = {}
    for line in log_text(logs, "access").splitlines():
        parts = dict(p.split("=", 1) for p in line.split() if "=" in p and not p.startswith('"'))
        if parts.get("rid") and parts["rid"] != "-":
            found[parts["rid"]] = f"{parts.get('env')}/{parts.get('slot')}"
    return found


def poll(fn: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Call fn until it returns True or `timeout` passes (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(interval)
    return False
