"""HAProxy as the front door under overload: per-server maxconn, a bounded queue that answers
"very busy" (503 + Retry-After), per-client rate limits (429), /metrics only to the monitoring
networks, and a readiness check with hysteresis — all from the spec.

The rendered config is checked by HAProxy itself (`haproxy -c`), and one test runs HAProxy
with it in front of a deliberately slow app server on loopback, as a patron would meet it.
"""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.support.specs import refused

from wtx.backends.local import LocalBackend
from wtx.backends.local import haproxy as hap
from wtx.backends.local.layout import Layout
from wtx.spec import FrontDoor

ROOT = Path(__file__).resolve().parents[3]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"




# --------------------------------------------------------------------------------------------
# The spec


def test_prd_servers_take_one_request_per_worker_and_bak_likewise(spec):
    prd, bak = spec.env("prd"), spec.env("bak")
    assert prd.front_door.maxconn_per_server == 0  # 0: one per worker
    assert prd.server_maxconn == prd.app.replicas
    assert bak.server_maxconn == bak.app.replicas


def test_the_health_check_is_readiness_with_hysteresis(spec):
    check = spec.defaults.health_check
    assert check.path == spec.defaults.readiness_path
    assert check.fall >= 2 and check.rise >= 2


def test_front_door_limits_are_validated(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["front_door"]["queue_timeout_s"] = 0
    assert "environment 'prd': field 'front_door.queue_timeout_s'" in refused(write_spec, raw_spec)


def test_the_queue_outlasts_a_database_ride_through(spec, raw_spec, write_spec):
    from wtx.spec import QUEUE_AFTER_RIDE_THROUGH_S

    prd, bak = spec.env("prd"), spec.env("bak")
    longest = max(prd.database.ride_through_s, bak.database.ride_through_s)
    assert longest and prd.front_door.queue_timeout_s >= longest + QUEUE_AFTER_RIDE_THROUGH_S
    raw_spec["environments"]["prd"]["front_door"]["queue_timeout_s"] = longest + QUEUE_AFTER_RIDE_THROUGH_S - 1
    message = refused(write_spec, raw_spec)
    assert "environment 'prd': field 'front_door.queue_timeout_s'" in message and "ride_through_s" in message


def test_the_backups_ride_through_counts_for_the_queue_too(raw_spec, write_spec):
    from wtx.spec import QUEUE_AFTER_RIDE_THROUGH_S

    envs = raw_spec["environments"]
    envs["prd"]["database"]["ride_through_s"] = 5
    envs["bak"]["database"]["ride_through_s"] = 20
    envs["prd"]["front_door"]["queue_timeout_s"] = 5 + QUEUE_AFTER_RIDE_THROUGH_S
    assert "shorter than bak's database.ride_through_s (20 s)" in refused(write_spec, raw_spec)


def test_a_rate_limit_of_zero_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["front_door"]["orders_per_window"] = 0
    assert "environment 'prd': field 'front_door.orders_per_window'" in refused(write_spec, raw_spec)


def test_a_misspelled_front_door_field_is_named(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["front_door"]["max_queu"] = 5
    message = refused(write_spec, raw_spec)
    assert "field 'front_door.max_queu': unknown field (did you mean 'max_queue'?)" in message


def test_maxconn_far_beyond_the_workers_is_refused(raw_spec, write_spec):
    prd = raw_spec["environments"]["prd"]
    prd["front_door"]["maxconn_per_server"] = prd["app"]["replicas"] * 4 + 1
    assert "field 'front_door.maxconn_per_server'" in refused(write_spec, raw_spec)


def test_a_backup_takes_its_primarys_front_door(raw_spec, write_spec):
    raw_spec["environments"]["bak"]["front_door"] = {"queue_timeout_s": 3}
    assert "environment 'bak': field 'front_door': a backup's traffic goes through 'prd''s" in refused(write_spec, raw_spec)


def test_monitoring_networks_must_be_networks(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["logging"]["monitoring_networks"] = ["10.0.0.300/32"]
    assert "environment 'prd': field 'logging.monitoring_networks'" in refused(write_spec, raw_spec)


def test_monitoring_networks_need_metrics(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["logging"]["metrics"] = False
    assert "field 'logging.monitoring_networks': set only with metrics = true" in refused(write_spec, raw_spec)


# --------------------------------------------------------------------------------------------
# The rendered haproxy.cfg (the real spec, through the local backend, checked by haproxy -c)


def _backend_section(cfg: str, name: str) -> str:
    start = cfg.index(f"\nbackend {name}\n")
    end = cfg.find("\nbackend ", start + 1)
    return cfg[start:end if end != -1 else None]


@pytest.fixture
def rendered(spec, var_dir) -> str:  # noqa: ANN001 - fixtures
    backend = LocalBackend(spec, ROOT, var_dir)
    backend.render_haproxy()  # raises when haproxy -c refuses the file
    return backend.layout.haproxy_cfg.read_text()


def test_rendered_prd_servers_have_maxconn_and_a_queue_timeout_from_the_spec(spec, rendered):
    prd, bak = spec.env("prd"), spec.env("bak")
    section = _backend_section(rendered, "be_prd")
    assert f"    timeout queue {prd.front_door.queue_timeout_s}s\n" in section
    for slot in ("blue", "green"):
        assert f"server prd_{slot} 127.0.0.1:{prd.app.base_port + ('blue', 'green').index(slot)} maxconn {prd.server_maxconn}" in section
        assert f"server bak_{slot} 127.0.0.1:{bak.app.base_port + ('blue', 'green').index(slot)} maxconn {bak.server_maxconn} backup" in section
    assert f"http-request deny deny_status 503 if {{ queue gt {prd.front_door.max_queue} }}" in section


def test_rendered_check_is_the_readiness_path_with_fall_and_rise(spec, rendered):
    check = spec.defaults.health_check
    section = _backend_section(rendered, "be_prd")
    assert f"http-check send meth GET uri {spec.defaults.readiness_path} " in section
    assert f"check inter {check.inter_ms}ms fall {check.fall} rise {check.rise}" in section


def test_rendered_busy_answer_is_a_503_with_retry_after_and_a_page_that_retries(spec, rendered):
    fd = spec.env("prd").front_door
    section = _backend_section(rendered, "be_prd")
    assert f"http-error status 503 content-type \"text/html; charset=utf-8\" lf-string \"%[var(txn.busy_body)]\" hdr Retry-After {fd.retry_after_s}" in section
    assert f'<meta http-equiv="refresh" content="{fd.retry_after_s}">' in rendered
    assert f"Very busy — you keep your place, retrying in {fd.retry_after_s} s" in rendered
    assert '"code": "busy"' in rendered


def test_rendered_stick_table_limits_sale_posts_per_client(spec, rendered):
    fd = spec.env("prd").front_door
    section = _backend_section(rendered, "be_prd")
    assert f"track-sc0 src table {hap.rate_table('prd')}" in section
    assert f"acl over_holds sc0_gpc0_rate gt {fd.holds_per_window}" in section
    assert f"acl over_orders sc0_gpc1_rate gt {fd.orders_per_window}" in section
    assert "/api/v1/holds" in section and "/api/v1/orders" in section and "/checkout/" in section
    table = _backend_section(rendered, hap.rate_table("prd"))
    assert f"expire {fd.rate_limit_window_s}s store gpc0_rate({fd.rate_limit_window_s}s)" in table


def test_rendered_metrics_only_for_the_monitoring_networks(spec, rendered):
    for name in ("dev", "stg", "prd"):
        nets = " ".join(spec.env(name).logging.monitoring_networks)
        section = _backend_section(rendered, f"be_{name}")
        assert f"acl monitoring src {nets}\n" in section
        assert "http-request deny deny_status 403 if metrics !monitoring" in section


def test_no_monitoring_network_means_no_metrics_through_haproxy(tmp_path):
    route = _route(base_port=9000, monitoring=())
    cfg = _render(route, tmp_path, http_port=8000)
    assert "acl monitoring always_false" in cfg


# --------------------------------------------------------------------------------------------
# HAProxy running the rendered config in front of a slow app server


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _route(*, base_port: int, monitoring: tuple[str, ...] = ("127.0.0.1/32",), maxconn: int = 1) -> hap.Route:
    return hap.Route(
        env="prd", hostnames=("shop.localhost",), url="http://shop.localhost", allowed_networks=("127.0.0.0/8",),
        basic_auth_user=None, basic_auth_hash=None, tls=False, base_port=base_port, replicas=1,
        active_slot="blue", maxconn=maxconn, monitoring_networks=monitoring,
        front_door=FrontDoor.model_validate({
            "queue_timeout_s": 1, "max_queue": 3, "retry_after_s": 2, "rate_limit_window_s": 30,
            "holds_per_window": 2, "orders_per_window": 3,
        }),
    )


def _render(route: hap.Route, var_dir: Path, *, http_port: int, stats_port: int = 0) -> str:
    return hap.render_config(
        routes=[route], layout=Layout(var_dir), http_port=http_port, https_port=http_port + 1,
        stats_port=stats_port or http_port + 2, health_path="/readyz", inter_ms=200, fall=2, rise=1,
        certificates={},
    )


class _SlowApp(http.server.BaseHTTPRequestHandler):
    """An app server whose every request takes `delay` seconds (readiness answers at once)."""

    delay = 0.0

    def _answer(self) -> None:
        if self.path != "/readyz":
            time.sleep(self.delay)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b'{"status": "ok"}'
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def front_door(tmp_path: Path) -> Iterator[tuple[int, type[_SlowApp]]]:
    """HAProxy (rendered config, maxconn 1, queue timeout 1 s) in front of one slow server."""
    app_port, http_port, stats_port = _free_ports(3)

    class App(_SlowApp):
        pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", app_port), App)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    var_dir = tmp_path / "var"
    (var_dir / "haproxy").mkdir(parents=True)
    cfg = var_dir / "haproxy" / "haproxy.cfg"
    cfg.write_text(_render(_route(base_port=app_port), var_dir, http_port=http_port, stats_port=stats_port))
    hap.check_config(HAPROXY, cfg)
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _ask(http_port, "GET", "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("HAProxy in front of the test app never answered /readyz")
        yield http_port, App
    finally:
        proc.terminate()
        proc.wait(10)
        server.shutdown()
        server.server_close()


def _ask(port: int, method: str, path: str, *, source: str | None = None,
         timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"Host": "shop.localhost", "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_a_patron_queued_past_the_timeout_gets_the_busy_page_and_an_api_client_json(front_door):
    port, app = front_door
    app.delay = 2.5  # longer than the queue timeout (1 s); the server takes one request at a time
    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(_ask, port, "GET", "/slow")
        time.sleep(0.3)  # the first request holds the server's only slot
        page = pool.submit(_ask, port, "GET", "/performances/1/")
        api = pool.submit(_ask, port, "GET", "/api/v1/events")
        status, headers, body = page.result()
        api_status, api_headers, api_body = api.result()
        assert first.result()[0] == 200
    assert status == 503
    assert headers["retry-after"] == "2"
    assert headers["content-type"].startswith("text/html")
    text = body.decode()
    assert "Very busy — you keep your place, retrying in 2 s" in text
    assert '<meta http-equiv="refresh" content="2">' in text
    assert api_status == 503 and api_headers["retry-after"] == "2"
    assert api_headers["content-type"] == "application/json"
    assert json.loads(api_body) == {
        "code": "busy",
        "message": "The box office is very busy. Nothing was done; send the same request again in 2 seconds (Retry-After).",
        "details": {"retry_after": 2},
    }


def test_health_checks_do_not_queue_behind_patrons(front_door):
    """The server's only patron slot is busy for longer than a check interval; checks still
    reach it (they are not subject to maxconn), so it is never marked down for being busy."""
    port, app = front_door
    app.delay = 1.5
    with ThreadPoolExecutor(max_workers=4) as pool:
        busy = [pool.submit(_ask, port, "GET", f"/slow/{i}") for i in range(2)]
        time.sleep(1.0)  # five check intervals (200 ms) while the slot is taken
        statuses = [f.result()[0] for f in busy]
    # One was served; the other waited past the queue timeout (or, on a slow machine, was served).
    assert 200 in statuses and set(statuses) <= {200, 503}, statuses
    app.delay = 0.0
    assert _ask(port, "GET", "/quick")[0] == 200  # the server was never marked down


def test_a_client_over_the_hold_limit_gets_429_with_retry_after_and_others_are_not_affected(front_door):
    port, _app = front_door
    answers = [_ask(port, "POST", "/api/v1/holds", source="127.0.0.21") for _ in range(3)]
    assert [a[0] for a in answers] == [201, 201, 429]
    status, headers, body = answers[-1]
    assert headers["retry-after"] == "30"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "rate_limited"
    # The storefront's add-to-cart counts against the same limit and answers a page.
    status, headers, body = _ask(port, "POST", "/performances/7/", source="127.0.0.21")
    assert status == 429 and headers["content-type"].startswith("text/html")
    assert "Too many requests from your address" in body.decode()
    # Another address is not affected; reading is never limited.
    assert _ask(port, "POST", "/api/v1/holds", source="127.0.0.22")[0] == 201
    assert _ask(port, "GET", "/api/v1/events", source="127.0.0.21")[0] == 200


def test_orders_have_their_own_limit_per_client(front_door):
    port, _app = front_door
    answers = [_ask(port, "POST", "/api/v1/orders", source="127.0.0.31")[0] for _ in range(4)]
    assert answers == [201, 201, 201, 429]
    assert _ask(port, "POST", "/checkout/", source="127.0.0.31")[0] == 429


def test_metrics_are_served_only_to_the_monitoring_network(front_door):
    port, _app = front_door
    assert _ask(port, "GET", "/metrics", source="127.0.0.1")[0] == 200
    for path in ("/metrics", "/%6detrics", "//metrics/"):
        status, _headers, _body = _ask(port, "GET", path, source="127.0.0.5")
        assert status == 403, path


def test_requests_queued_for_a_server_that_dies_go_to_the_backup_before_the_queue_timeout(tmp_path):
    """The on-sale rush meets prd's death: requests waiting in HAProxy's queue for prd's (full)
    server are handed to bak's backup server once prd's is marked down, not left to wait out
    the queue timeout for a server that will never free a slot."""
    active_port, backup_port, http_port, stats_port = _free_ports(4)

    def app(name: str, delay: float) -> http.server.ThreadingHTTPServer:
        class App(_SlowApp):
            def _answer(self) -> None:
                if self.path != "/readyz":
                    time.sleep(delay)
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer

        server = http.server.ThreadingHTTPServer(("127.0.0.1", active_port if name == "prd" else backup_port), App)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    prd, bak = app("prd", 4.0), app("bak", 0.0)  # prd answers its one request in flight late
    route = hap.Route(
        env="prd", hostnames=("shop.localhost",), url="http://shop.localhost", allowed_networks=("127.0.0.0/8",),
        basic_auth_user=None, basic_auth_hash=None, tls=False, base_port=active_port, replicas=1,
        active_slot="blue", maxconn=1, backups=(("bak", backup_port, "blue", "127.0.0.1"),), backup_maxconn=1,
        front_door=FrontDoor.model_validate({"queue_timeout_s": 8, "max_queue": 100}),
    )
    var_dir = tmp_path / "var"
    (var_dir / "haproxy").mkdir(parents=True)
    cfg = var_dir / "haproxy" / "haproxy.cfg"
    cfg.write_text(_render(route, var_dir, http_port=http_port, stats_port=stats_port))
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _ask(http_port, "GET", "/", timeout=3)[2] == b"prd":
                    break
            except OSError:
                pass
            time.sleep(0.1)
        with ThreadPoolExecutor(max_workers=6) as pool:
            began = time.monotonic()
            def timed(n: int) -> tuple[int, bytes, float]:
                status, _h, body = _ask(http_port, "GET", f"/{n}", timeout=20)
                return status, body, time.monotonic() - began

            answers = [pool.submit(timed, n) for n in range(6)]
            time.sleep(0.3)  # one request on prd's only slot, the others queued behind it
            prd.shutdown()
            prd.server_close()  # prd's server is gone: connections refused from now on
            results = [a.result(timeout=30) for a in answers]
    finally:
        proc.terminate()
        proc.wait(10)
        bak.shutdown()
        bak.server_close()
    assert [status for status, _b, _t in results] == [200] * 6
    by_bak = [took for _s, body, took in results if body == b"bak"]
    assert len(by_bak) >= 5  # every queued request (prd's one in flight may be retried there too)
    # Even while prd's dying server still holds a request, its queue goes to bak at once.
    assert max(by_bak) < 3, f"the queued requests waited {max(by_bak):.1f}s for bak"
