"""A lean HTTP/1.1 load generator (asyncio, raw sockets).

It shares the machine's cores with gunicorn and PostgreSQL, so it is kept cheap on purpose:
no HTTP library, one coroutine per buyer, keep-alive when the server allows it. Its own CPU
time is measured and reported separately by onsale.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    status: int
    seconds: float
    body: bytes


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    wall_seconds: float = 0.0

    def statuses(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in hdrs:
            payload = await self.reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            payload = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                payload += chunk[:-2]
        else:
            payload = await self.reader.read()
            hdrs["connection"] = "close"
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, payload


async def _buyers(
    host: str, port: int, path: str, *, buyers: int, orders: int, seconds: float,
    make_body: Callable[[int], dict[str, Any]], stop_on: Callable[[int, bytes], bool] | None,
) -> Run:
    run = Run()
    next_index = 0
    deadline = time.monotonic() + seconds
    stopped = [False] * buyers

    async def buyer(b: int) -> None:
        nonlocal next_index
        conn = Connection(host, port)
        try:
            while next_index < orders and time.monotonic() < deadline and not stopped[b]:
                i = next_index
                next_index += 1
                body = json.dumps(make_body(i)).encode()
                started = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(
                        conn.post(path, body, {"Idempotency-Key": uuid.uuid4().hex}), timeout=60
                    )
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    conn.close()
                    status, payload = 0, b""
                run.results.append(Result(status, time.perf_counter() - started, payload))
                if stop_on is not None and stop_on(status, payload):
                    stopped[b] = True
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(buyer(b) for b in range(buyers)))
    run.wall_seconds = time.perf_counter() - started
    return run


def buy(
    url: str, *, buyers: int, orders: int, seconds: float, make_body: Callable[[int], dict[str, Any]],
    path: str = "/api/v1/orders", stop_on: Callable[[int, bytes], bool] | None = None,
) -> Run:
    """`buyers` concurrent buyers place at most `orders` orders within `seconds`."""
    hostport = url.split("//", 1)[1]
    host, port = hostport.rsplit(":", 1)
    return asyncio.run(
        _buyers(host, int(port), path, buyers=buyers, orders=orders, seconds=seconds, make_body=make_body, stop_on=stop_on)
    )


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
