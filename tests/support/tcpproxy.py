"""A TCP proxy on loopback that can lose the answer to a COMMIT: the in-doubt commit of a
database failover, on demand.

The app connects to the proxy instead of PostgreSQL. Once armed with a marker (a piece of SQL,
e.g. the payment insert), the proxy forwards the first COMMIT sent after that marker on the
same connection, gives the server time to carry it out, then cuts the connection on both
sides without passing the server's answer on. The transaction is committed; the client sees
"server closed the connection unexpectedly". Only once per arming; every other byte is passed
through unchanged.

    with CommitDropper(pg_port) as proxy:
        proxy.arm(b'INSERT INTO "payments_payment"')
        ...                      # the app, connected to 127.0.0.1:proxy.port, commits an order
        assert proxy.dropped.wait(5)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from tests.support.pgcluster import free_port

COMMIT = b"COMMIT\x00"  # the statement as it travels (simple or extended query protocol)
SETTLE_S = 0.5  # time the server gets to carry out the COMMIT before the connection is cut
IDLE_S = 120.0  # a connection silent this long in both directions is closed (bounded threads)


class CommitDropper:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.marker: bytes | None = None
        self.dropped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CommitDropper:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def arm(self, marker: bytes) -> None:
        """Lose the answer to the next COMMIT of a transaction that sent `marker`."""
        with self._lock:
            self.marker = marker
            self.dropped.clear()

    def _take_marker(self) -> bytes | None:
        with self._lock:
            return self.marker

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the database is down: refuse, as its own port would
                continue
            with self._lock:
                self._sockets += [client, server]
            cut = threading.Event()  # set: nothing more from the server reaches this client
            threading.Thread(target=self._client_to_server, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, cut), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        client.settimeout(IDLE_S)
        since_commit = b""
        try:
            while not self._stopping.is_set():
                data = client.recv(65536)
                if not data:
                    break
                since_commit = (since_commit + data)[-1_000_000:]
                marker = self._take_marker()
                if marker and marker in since_commit and COMMIT in since_commit[since_commit.index(marker):]:
                    with self._lock:
                        if self.marker != marker:
                            marker = None
                        else:
                            self.marker = None
                    if marker:
                        cut.set()
                        server.sendall(data)
                        self.dropped.set()
                        time.sleep(SETTLE_S)
                        break  # cut both sides: the client never hears the COMMIT's answer
                server.sendall(data)
                if COMMIT in data:
                    since_commit = b""
        except OSError:
            pass
        finally:
            self._close(client, server)

    def _pump(self, src: socket.socket, dst: socket.socket, cut: threading.Event) -> None:
        src.settimeout(IDLE_S)
        try:
            while not self._stopping.is_set():
                data = src.recv(65536)
                if not data or cut.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src, dst)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
