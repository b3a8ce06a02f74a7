"""HAProxy: the front door. Config rendered from the spec; traffic moved with the runtime API.

Every environment with hostnames gets a backend with one server per color slot (blue, green);
the idle slot is `disabled` (maintenance) so a deploy can bring it in with `set server … state
ready` and take the old one out with `drain` → `maint`, no reload needed. prd's backend also
lists bak's servers as `backup`: they take traffic only when no prd server is up.

Overload (the spec's `front_door`): each server gets at most `maxconn` requests at a time (its
worker count), so the queue is held here, where a health check never waits in it; a request
that waits longer than the queue timeout, or finds the queue full, gets a "very busy" 503 with
Retry-After (an HTML page that reloads itself, or JSON under /api/). Per-client-address rate
limits on the sale POSTs answer 429 the same way. /metrics is served only to the
environment's monitoring networks.
"""

from __future__ import annotations

import csv
import io
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wtx.backends.local.layout import SLOTS, Layout
from wtx.spec import FrontDoor


def server_name(env: str, slot: str) -> str:
    return f"{env}_{slot}"


def backend_name(env: str) -> str:
    return f"be_{env}"


@dataclass(frozen=True)
class Route:
    """What the front door needs to know about one environment."""

    env: str
    hostnames: tuple[str, ...]
    url: str
    allowed_networks: tuple[str, ...]
    basic_auth_user: str | None
    basic_auth_hash: str | None  # crypt(3) SHA-512 hash; the plain password never lands here
    tls: bool
    base_port: int
    replicas: int
    active_slot: str | None
    # (env, base_port, active_slot, address): the backup environment's servers, on its host.
    backups: tuple[tuple[str, int, str | None, str], ...] = ()
    maxconn: int = 0  # requests in flight per app server; 0: no limit
    backup_maxconn: int = 0  # the same for the backup environment's servers
    front_door: FrontDoor = field(default_factory=lambda: FrontDoor.model_validate({}))
    monitoring_networks: tuple[str, ...] = ()
    address: str = "127.0.0.1"  # the address of the host the environment's app servers run on
    # How long HAProxy waits for a server's answer: a request riding through a database
    # failover is slow, not dead.
    server_timeout_s: int = 30


@dataclass(frozen=True)
class DatabaseRoute:
    """An HA database's entry point: TCP on `address:port`, forwarded to the one member whose
    Patroni answers `GET /primary` with 200 (the leader)."""

    env: str
    address: str
    port: int
    members: tuple[tuple[str, str, int, int], ...]  # (name, address, port, rest_port)
    inter_ms: int = 500
    connect_timeout_ms: int = 300


# The storefront and API requests that hold seats or attempt an order: what the per-client
# rate limits count (matched on the decoded path, as Django routes it).
HOLD_PATHS = ("/api/v1/holds", "/cart/hold-again/")
HOLD_PATH_PATTERN = "^/performances/[0-9]+/$"
ORDER_PATHS = ("/api/v1/orders", "/checkout/", "/donate/")

_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;"
    "color:rgb(30,30,30)}h1{font-size:1.6rem}"
)


def _var(env: str) -> str:
    return env.replace("-", "_")


def busy_page(seconds: int) -> str:
    """The patron's page when the box office is saturated: it reloads itself after `seconds`
    (a GET of the same page; a cart stays held in the meantime)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{seconds}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Very busy</title><style>{_PAGE_STYLE}</style></head><body>"
        f"<h1>Very busy — you keep your place, retrying in {seconds} s</h1>"
        "<p>Many people are buying tickets right now. Seats in your cart stay held for you, "
        f"and this page tries again by itself in {seconds} seconds. There is no need to reload it.</p>"
        "</body></html>"
    )


def busy_json(seconds: int) -> str:
    return (
        '{"code": "busy", "message": "The box office is very busy. Nothing was done; '
        f'send the same request again in {seconds} seconds (Retry-After).", '
        f'"details": {{"retry_after": {seconds}}}}}'
    )


def slow_down_page(seconds: int) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Too many requests</title><style>{_PAGE_STYLE}</style></head><body>"
        "<h1>Too many requests from your address</h1>"
        f"<p>Nothing was done. Please wait {seconds} seconds, then go back and try again.</p>"
        "</body></html>"
    )


def slow_down_json(seconds: int) -> str:
    return (
        '{"code": "rate_limited", "message": "Too many requests from your address. Nothing was done; '
        f'send it again in {seconds} seconds (Retry-After).", "details": {{"retry_after": {seconds}}}}}'
    )


def _quoted(text: str) -> str:
    """`text` as a single-quoted log-format string in haproxy.cfg (no escapes inside single
    quotes: the bodies are ours and contain no quote, percent sign or line break)."""
    if any(c in text for c in "'%\n\r"):
        raise ValueError(f"cannot quote {text[:40]!r}… for haproxy.cfg")
    return f"'{text}'"


def _slot_port(base_port: int, slot: str) -> int:
    return base_port + SLOTS.index(slot)


def render_config(
    *,
    routes: list[Route],
    layout: Layout,
    http_port: int,
    https_port: int,
    stats_port: int,
    health_path: str,
    inter_ms: int,
    fall: int,
    rise: int,
    certificates: Mapping[str, Path],
    bind_address: str = "127.0.0.1",
    databases: tuple[DatabaseRoute, ...] = (),
) -> str:
    """haproxy.cfg for every route. `certificates` maps env → PEM (cert + key) for TLS envs;
    `bind_address` is the front door host's address (its listeners bind there)."""
    out: list[str] = []
    w = out.append
    w("# Rendered by wtx from deploy/environments.toml; edits are overwritten.")
    w("global")
    w("    log stdout format raw local0 info")
    w(f"    stats socket {layout.haproxy_sock} mode 600 level admin expose-fd listeners")
    w("    stats timeout 10s")
    w("    maxconn 2000")
    w("    tune.ssl.default-dh-param 2048")
    # The bodies HAProxy answers with when it turns a request away, one set per environment.
    for r in routes:
        fd, v = r.front_door, _var(r.env)
        w(f"    set-var-fmt proc.busy_html_{v} {_quoted(busy_page(fd.retry_after_s))}")
        w(f"    set-var-fmt proc.busy_json_{v} {_quoted(busy_json(fd.retry_after_s))}")
        w(f"    set-var-fmt proc.slow_html_{v} {_quoted(slow_down_page(fd.rate_limit_window_s))}")
        w(f"    set-var-fmt proc.slow_json_{v} {_quoted(slow_down_json(fd.rate_limit_window_s))}")
    w("")
    w("defaults")
    w("    mode http")
    w("    log global")
    w("    option httplog")
    w("    option dontlognull")
    # One request per server connection: never reuse one the app server is closing (that race
    # would look like a dead server), and a drained server keeps no idle connection.
    w("    option http-server-close")
    w("    timeout connect 500ms")
    w("    timeout client 30s")
    w("    timeout server 30s")
    w("    timeout queue 15s")
    w("    timeout check 2s")
    w("    timeout http-request 10s")
    w("    timeout http-keep-alive 5s")
    # A request to a server that just died (connection refused/reset, empty answer) is tried
    # again, on another server when there is one. 500 is left out on purpose: an application
    # error is an answer, and retrying it would repeat a request that did run.
    w("    retries 3")
    w("    option redispatch 1")
    w("    retry-on conn-failure empty-response junk-response response-timeout 502 503 504")
    w("")
    w("frontend stats")
    w(f"    bind {bind_address}:{stats_port}")
    w("    stats enable")
    w("    stats uri /")
    w("    stats refresh 5s")
    w("    stats show-legends")
    w("")
    w("frontend fe_main")
    w(f"    bind {bind_address}:{http_port}")
    pems = sorted({str(p) for p in certificates.values()})
    if pems:
        crt = " ".join(f"crt {p}" for p in pems)
        w(f"    bind {bind_address}:{https_port} ssl {crt}")
    w("    unique-id-format %[uuid()]")
    w("    http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m reg ^[A-Za-z0-9._-]{8,64}$ }")
    w("    http-request set-header X-Forwarded-For %[src]")
    w("    http-request set-header X-Forwarded-Proto https if { ssl_fc }")
    w("    http-request set-header X-Forwarded-Proto http unless { ssl_fc }")
    w("    http-request set-var(txn.rid) req.hdr(x-request-id)")
    w("    http-response set-header X-Request-Id %[var(txn.rid)]")
    w("    http-after-response set-header X-Request-Id %[var(txn.rid)]")
    w('    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r id=%[var(txn.rid)]"')
    # Requests that are not idempotent and carry no Idempotency-Key are never replayed.
    w("    http-request disable-l7-retry if !METH_GET !METH_HEAD !{ req.hdr(idempotency-key) -m found }")
    for r in routes:
        hosts = " ".join(h.lower() for h in r.hostnames)
        w(f"    acl host_{r.env} hdr(host),field(1,:),lower -m str {hosts}")
    for r in routes:
        nets = " ".join(r.allowed_networks)
        w(f"    acl src_{r.env} src {nets}" if nets else f"    acl src_{r.env} always_false")
        w(f"    http-request deny deny_status 403 if host_{r.env} !src_{r.env}")
        if r.tls and r.url.startswith("https://"):
            w(f"    http-request redirect prefix {r.url.rstrip('/')} code 301 if host_{r.env} !{{ ssl_fc }}")
        if r.basic_auth_user and r.basic_auth_hash:
            w(f"    acl auth_{r.env} http_auth(users_{r.env})")
            w(f'    http-request auth realm "{r.env}" if host_{r.env} !auth_{r.env}')
            # The app has its own Authorization scheme (staff Bearer tokens): not a basic pair.
            w(f"    http-request del-header Authorization if host_{r.env} auth_{r.env}")
    for r in routes:
        w(f"    use_backend {backend_name(r.env)} if host_{r.env}")
    w("    default_backend be_unknown_host")
    w("")
    for r in routes:
        if r.basic_auth_user and r.basic_auth_hash:
            w(f"userlist users_{r.env}")
            w(f"    user {r.basic_auth_user} password {r.basic_auth_hash}")
            w("")
    for r in routes:
        host = r.hostnames[0] if r.hostnames else "localhost"
        proto = "https" if r.tls else "http"
        w(f"backend {backend_name(r.env)}")
        # leastconn, not roundrobin: with roundrobin, while the backend's own queue is not
        # empty HAProxy queues every new or redispatched request there without asking the
        # servers, so when prd dies nothing ever reaches bak's idle backup server (only a
        # server that frees a slot or comes UP takes from that queue).
        w("    balance leastconn")
        w(f"    timeout server {r.server_timeout_s}s")
        w("    option allbackups")
        w("    option httpchk")
        w(f"    http-check send meth GET uri {health_path} ver HTTP/1.1 hdr Host {host} hdr X-Forwarded-Proto {proto}")
        w("    http-check expect status 200")
        w(
            f"    default-server check inter {inter_ms}ms fall {fall} rise {rise}"
            " observe layer4 error-limit 1 on-error mark-down"
        )
        out.extend(_front_door(r))
        # A request goes straight to the environment's own server that is up and not
        # draining, so when every one is full it waits in *that server's* queue. When the
        # server dies, HAProxy hands its queue on (option redispatch) to the servers left —
        # bak's when prd has none. Left to the balancer, a request would wait in the
        # backend's own queue, which HAProxy hands to a backup server only when one comes UP
        # or frees a slot: everyone queued at prd's death would wait out the queue timeout.
        for slot in SLOTS:
            srv = f"{backend_name(r.env)}/{server_name(r.env, slot)}"
            w(f"    use-server {server_name(r.env, slot)} if {{ srv_is_up({srv}) }} {{ srv_weight({srv}) gt 0 }}")
        limit = f" maxconn {r.maxconn}" if r.maxconn else ""
        for slot in SLOTS:
            state = "" if slot == r.active_slot else " disabled"
            port = _slot_port(r.base_port, slot)
            w(f"    server {server_name(r.env, slot)} {r.address}:{port}{limit}{state}")
        blimit = f" maxconn {r.backup_maxconn}" if r.backup_maxconn else ""
        for benv, bport, bactive, baddress in r.backups:
            for slot in SLOTS:
                state = "" if slot == bactive else " disabled"
                port = _slot_port(bport, slot)
                w(f"    server {server_name(benv, slot)} {baddress}:{port}{blimit} backup{state}")
        w("")
        w(f"backend {rate_table(r.env)}")
        window = r.front_door.rate_limit_window_s
        w(f"    stick-table type ipv6 size 100k expire {window}s store gpc0_rate({window}s),gpc1_rate({window}s)")
        w("")
    for db in databases:
        out.extend(_database_listen(db))
    w("backend be_unknown_host")
    w('    http-request return status 404 content-type text/plain string "No WonderTix environment answers to this host name.\\n"')
    w("")
    return "\n".join(out)


def _database_listen(db: DatabaseRoute) -> list[str]:
    """TCP to the leader only. A member that stops being the leader is marked down after two
    failed checks and its sessions are cut (on-marked-down shutdown-sessions), so no client
    keeps writing to a demoted member; the short connect timeout is also the pause between
    HAProxy's retries while no member is up yet."""
    out = [
        f"listen db_{db.env}",
        "    mode tcp",
        "    option tcplog",
        f"    bind {db.address}:{db.port}",
        f"    timeout connect {db.connect_timeout_ms}ms",
        # The app keeps connections open between requests (CONN_MAX_AGE): idle is fine here.
        "    timeout client 1h",
        "    timeout server 1h",
        "    option httpchk",
        "    http-check send meth GET uri /primary",
        "    http-check expect status 200",
        # While a member is down it is checked twice as often, so a new leader is routed to
        # within about one `inter` of Patroni promoting it.
        f"    default-server inter {db.inter_ms}ms downinter {max(100, db.inter_ms // 2)}ms fall 2 rise 2"
        " on-marked-down shutdown-sessions",
    ]
    out += [f"    server {name} {addr}:{port} check port {rest}" for name, addr, port, rest in db.members]
    out.append("")
    return out


def rate_table(env: str) -> str:
    """The stick table counting each client address's sale requests in `env`."""
    return f"st_{env}_sales"


def _front_door(r: Route) -> list[str]:
    """A backend's overload rules: /metrics only to the monitoring networks, per-client rate
    limits (429), a bounded queue (503), and the bodies of those answers."""
    fd, v = r.front_door, _var(r.env)
    out = [
        f"    timeout queue {fd.queue_timeout_s}s",
        # Django routes the decoded path: match what it will see.
        "    acl api path,url_dec -m beg /api/",
        "    acl metrics path,url_dec -m reg ^/+metrics/*$",
        "    acl sale_post method POST",
        f"    acl hold_path path,url_dec -m str {' '.join(HOLD_PATHS)}",
        f"    acl hold_path path,url_dec -m reg {HOLD_PATH_PATTERN}",
        f"    acl order_path path,url_dec -m str {' '.join(ORDER_PATHS)}",
    ]
    nets = " ".join(r.monitoring_networks)
    out.append(f"    acl monitoring src {nets}" if nets else "    acl monitoring always_false")
    out += [
        "    http-request deny deny_status 403 if metrics !monitoring",
        "    http-request set-var(txn.api) bool(true) if api",
        f"    http-request set-var(txn.busy_body) var(proc.busy_json_{v}) if api",
        f"    http-request set-var(txn.busy_body) var(proc.busy_html_{v}) if !api",
        f"    http-request track-sc0 src table {rate_table(r.env)} if sale_post hold_path || sale_post order_path",
        "    http-request sc-inc-gpc0(0) if sale_post hold_path",
        "    http-request sc-inc-gpc1(0) if sale_post order_path",
        f"    acl over_holds sc0_gpc0_rate gt {fd.holds_per_window}",
        f"    acl over_orders sc0_gpc1_rate gt {fd.orders_per_window}",
        f"    http-request set-var(txn.slow_body) var(proc.slow_json_{v}) if api sale_post",
        f"    http-request set-var(txn.slow_body) var(proc.slow_html_{v}) if !api sale_post",
        "    http-request deny deny_status 429 if sale_post hold_path over_holds || sale_post order_path over_orders",
        # Already this many waiting: answer at once rather than after the queue timeout.
        f"    http-request deny deny_status 503 if {{ queue gt {fd.max_queue} }}",
        # Every 503 HAProxy itself answers here (queue timeout, queue full, no server up).
        '    http-error status 503 content-type "text/html; charset=utf-8" lf-string "%[var(txn.busy_body)]"'
        f" hdr Retry-After {fd.retry_after_s} hdr Cache-Control no-store",
        '    http-error status 429 content-type "text/html; charset=utf-8" lf-string "%[var(txn.slow_body)]"'
        f" hdr Retry-After {fd.rate_limit_window_s} hdr Cache-Control no-store",
        "    http-after-response set-header Content-Type application/json if { var(txn.api) -m bool } { status 429 503 }",
    ]
    return out


def crypt_password(password: str) -> str:
    """SHA-512 crypt(3) hash for a userlist (openssl, so no plain password in haproxy.cfg)."""
    res = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip()


def ensure_certificate(pem: Path, hostnames: list[str]) -> Path:
    """A self-signed certificate for local TLS (cert + key in one 0600 PEM), made once."""
    if pem.exists():
        return pem
    pem.parent.mkdir(parents=True, exist_ok=True)
    pem.parent.chmod(0o700)
    key, crt = pem.with_suffix(".key"), pem.with_suffix(".crt")
    names = hostnames or ["localhost"]
    san = ",".join(f"DNS:{h}" for h in names)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", "825", "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}",
            "-keyout", str(key), "-out", str(crt),
        ],
        check=True,
        capture_output=True,
    )
    pem.write_bytes(crt.read_bytes() + key.read_bytes())
    pem.chmod(0o600)
    key.unlink()
    return pem


def check_config(haproxy: str, cfg: Path) -> None:
    res = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, text=True)
    if res.returncode != 0:
        alerts = [ln for ln in (res.stderr + res.stdout).splitlines() if "ALERT" in ln]
        raise RuntimeError(f"haproxy rejected {cfg}: {alerts[0] if alerts else res.returncode}")


class RuntimeApi:
    """HAProxy's runtime API on its admin unix socket."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def command(self, cmd: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.sock))
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()

    def available(self) -> bool:
        try:
            self.command("show info")
        except OSError:
            return False
        return True

    def set_state(self, backend: str, server: str, state: str) -> None:
        out = self.command(f"set server {backend}/{server} state {state}").strip()
        if out:
            raise RuntimeError(f"haproxy: set server {backend}/{server} state {state}: {out}")

    def stats(self) -> list[dict[str, Any]]:
        text = self.command("show stat")
        text = text.lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def server(self, backend: str, server: str) -> dict[str, Any] | None:
        for row in self.stats():
            if row.get("pxname") == backend and row.get("svname") == server:
                return row
        return None

    def status(self, backend: str, server: str) -> str:
        row = self.server(backend, server)
        return "ABSENT" if row is None else str(row.get("status", ""))

    def wait_status(self, backend: str, server: str, prefix: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(backend, server).startswith(prefix):
                return True
            time.sleep(0.05)
        return False

    def wait_drained(self, backend: str, server: str, timeout: float) -> bool:
        """True once the server has no request in flight and none queued."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.server(backend, server)
            if row is None or (int(row.get("scur") or 0) == 0 and int(row.get("qcur") or 0) == 0):
                return True
            time.sleep(0.05)
        return False
