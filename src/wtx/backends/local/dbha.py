"""Running an HA database: bring-up, who leads, switchover, and a host's death and return.

Everything here asks Patroni (its REST API on each member) or HAProxy (its runtime API) and
waits with a bound; a wait that runs out says what it saw last.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from wtx.backends.local import haproxy as hap
from wtx.backends.local.patroni import (
    REST_USER,
    HACluster,
    PatroniError,
    cluster_secrets,
    etcd_program_name,
    patroni_program_name,
)
from wtx.backends.local.supervisors import Supervisors

Say = Callable[[str], None]


def db_listen_name(env: str) -> str:
    """HAProxy's `listen` section that forwards `env`'s database port to its leader."""
    return f"db_{env}"


# -- Patroni's REST API ----------------------------------------------------------------------
def rest(cl: HACluster, host: str, method: str, path: str, body: dict[str, Any] | None = None,
         timeout: float = 3.0) -> tuple[int, Any]:
    """(status, decoded JSON or text) of one call to `host`'s Patroni; (0, reason) unreachable."""
    m = cl.member(host)
    conn = http.client.HTTPConnection(cl.address(host), m.rest_port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if method != "GET":
        pw = cluster_secrets(cl.paths)["REST_PASSWORD"]
        headers["Authorization"] = "Basic " + base64.b64encode(f"{REST_USER}:{pw}".encode()).decode()
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def members(cl: HACluster) -> list[dict[str, Any]]:
    """Patroni's view of the cluster (`GET /cluster` of the first member that answers):
    per member name, role (leader / sync_standby / replica), state, lag."""
    for m in cl.ha.members:
        status, data = rest(cl, m.host, "GET", "/cluster", timeout=1.5)
        if status == 200 and isinstance(data, dict):
            return list(data.get("members", []))
    return []


def leader(cl: HACluster) -> str | None:
    found = [m["name"] for m in members(cl) if m.get("role") == "leader" and m.get("state") == "running"]
    return found[0] if len(found) == 1 else None


def sync_standbys(cl: HACluster) -> list[str]:
    return [m["name"] for m in members(cl) if m.get("role") == "sync_standby" and m.get("state") == "streaming"]


def wait_for(what: str, check: Callable[[], Any], timeout: float, describe: Callable[[], str], poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise PatroniError(f"{what}: not within {timeout:.0f}s ({describe()})")


def summary(cl: HACluster) -> str:
    """`wtx status`'s words: the leader, then each other member's role, state and lag."""
    found = members(cl)
    if not found:
        return f"{len(cl.ha.members)} members, none answers"
    lead = [m["name"] for m in found if m.get("role") == "leader"]
    others = [f"{m.get('name')} {m.get('role')} {m.get('state')} lag {m.get('lag', '?')}"
              for m in found if m.get("role") != "leader"]
    missing = sorted({m.host for m in cl.ha.members} - {m.get("name") for m in found})
    return "; ".join([f"leader {lead[0] if lead else 'none'}", *others, *(f"{h} absent" for h in missing)])


def describe(cl: HACluster) -> str:
    found = members(cl)
    if not found:
        return "no Patroni member answers"
    return ", ".join(f"{m.get('name')} {m.get('role')} {m.get('state')}" for m in found)


# -- HAProxy ----------------------------------------------------------------------------------
def primaries_up(runtime: hap.RuntimeApi, env: str) -> list[str]:
    """The members HAProxy routes `env`'s database port to (its /primary check passes)."""
    try:
        rows = runtime.stats()
    except OSError:
        return []
    return [r["svname"] for r in rows if r.get("pxname") == db_listen_name(env)
            and r.get("svname") not in ("FRONTEND", "BACKEND") and str(r.get("status", "")).startswith("UP")]


def wait_one_primary(cl: HACluster, runtime: hap.RuntimeApi, timeout: float) -> str:
    """Until HAProxy routes to exactly one member and it is Patroni's leader (at HAProxy's
    start every server is briefly "up": never write before this holds)."""
    def check() -> str | None:
        up = primaries_up(runtime, cl.env.name)
        return up[0] if len(up) == 1 and up[0] == leader(cl) else None
    return str(wait_for(f"{cl.env.name}: exactly one primary behind HAProxy", check, timeout,
                        lambda: f"HAProxy routes to {primaries_up(runtime, cl.env.name) or 'nobody'}; {describe(cl)}"))


# -- bring-up ----------------------------------------------------------------------------------
def start(cl: HACluster, sup: Supervisors, say: Say, timeout: float = 90.0) -> str:
    """etcd everywhere, then the first member (it bootstraps a new cluster), then the others;
    returns the leader once every member runs (a replica: streaming)."""
    for e in cl.ha.etcd:
        sup.start_program(etcd_program_name(cl.env.name, e.host))
    wait_for(f"{cl.env.name}: etcd quorum", lambda: _etcd_healthy(cl), 30,
             lambda: "no etcd member reports health")
    say(f"{cl.env.name}: etcd ready; starting Patroni members")
    first = cl.ha.members[0].host
    if leader(cl) is None and not any(Path(cl.paths.pgdata(m.host), "PG_VERSION").exists() for m in cl.ha.members[1:]):
        sup.start_program(patroni_program_name(cl.env.name, first))
        wait_for(f"{cl.env.name}: a leader", lambda: leader(cl), timeout, lambda: describe(cl))
    for m in cl.ha.members:
        sup.start_program(patroni_program_name(cl.env.name, m.host))
    lead = str(wait_for(f"{cl.env.name}: a leader", lambda: leader(cl), timeout, lambda: describe(cl)))
    wait_all_running(cl, timeout)
    return lead


def wait_all_running(cl: HACluster, timeout: float) -> None:
    want = {m.host for m in cl.ha.members}

    def check() -> bool:
        found = {m["name"]: m for m in members(cl)}
        return set(found) == want and all(
            m.get("state") == ("running" if m.get("role") == "leader" else "streaming") for m in found.values()) \
            and (not cl.ha.synchronous or len(want) < 2 or bool(sync_standbys(cl)))
    wait_for(f"{cl.env.name}: every member running (replicas streaming{', one synchronous' if cl.ha.synchronous else ''})",
             check, timeout, lambda: describe(cl))


def etcd_health(cl: HACluster) -> dict[str, bool]:
    """Each etcd member (by host): does it answer /health with health true."""
    found: dict[str, bool] = {}
    for e in cl.ha.etcd:
        conn = http.client.HTTPConnection(cl.address(e.host), e.client_port, timeout=1.0)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            found[e.host] = resp.status == 200 and b"true" in resp.read()
        except (OSError, http.client.HTTPException):
            found[e.host] = False
        finally:
            conn.close()
    return found


def _etcd_healthy(cl: HACluster) -> bool:
    return sum(etcd_health(cl).values()) > len(cl.ha.etcd) // 2


def restart_members(cl: HACluster, timeout: float) -> None:
    """Restart PostgreSQL on every member through Patroni (a setting that needs a restart, e.g.
    archive_mode, is pending until then); replicas first, the leader last, each waited for."""
    lead = leader(cl)
    for m in sorted(cl.ha.members, key=lambda m: m.host == lead):
        status, body = rest(cl, m.host, "POST", "/restart", {}, timeout=timeout)
        if status not in (200, 202):
            raise PatroniError(f"{cl.env.name}: Patroni on {m.host} refused the restart ({status}: {body})")
    wait_all_running(cl, timeout)


def stop(cl: HACluster, sup: Supervisors) -> None:
    """Patroni members side by side (each takes seconds: it stops PostgreSQL), then etcd."""
    from wtx.backends.local.backend import run_parallel

    run_parallel({m.host: partial(sup.stop_program, patroni_program_name(cl.env.name, m.host))
                  for m in cl.ha.members})
    run_parallel({e.host: partial(sup.stop_program, etcd_program_name(cl.env.name, e.host))
                  for e in cl.ha.etcd})


# -- switchover -----------------------------------------------------------------------------
def switchover(cl: HACluster, runtime: hap.RuntimeApi, candidate: str | None = None,
               timeout: float = 60.0) -> dict[str, Any]:
    """A planned change of leader through Patroni's REST API; waits until HAProxy routes to
    the new leader and the old one is a streaming replica again."""
    old = leader(cl)
    if old is None:
        raise PatroniError(f"{cl.env.name}: no leader to switch over from ({describe(cl)})")
    if candidate is None:
        standbys = sync_standbys(cl) or [m.host for m in cl.ha.members if m.host != old]
        candidate = standbys[0]
    if candidate == old or candidate not in {m.host for m in cl.ha.members}:
        raise PatroniError(f"{cl.env.name}: {candidate!r} is not a replica to switch over to "
                           f"(members: {', '.join(m.host for m in cl.ha.members)}; leader {old})")
    began = time.monotonic()
    status, body = rest(cl, old, "POST", "/switchover", {"leader": old, "candidate": candidate}, timeout=30)
    if status != 200:
        raise PatroniError(f"{cl.env.name}: Patroni refused the switchover ({status}: {body})")
    wait_for(f"{cl.env.name}: {candidate} leads behind HAProxy",
             lambda: primaries_up(runtime, cl.env.name) == [candidate] and leader(cl) == candidate, timeout,
             lambda: f"HAProxy routes to {primaries_up(runtime, cl.env.name)}; {describe(cl)}")
    routed = time.monotonic() - began
    wait_all_running(cl, timeout)
    return {"env": cl.env.name, "from": old, "to": candidate, "routed_s": round(routed, 2),
            "rejoined_s": round(time.monotonic() - began, 2)}


# -- a host's death and return (drills and tests) ------------------------------------------------
def host_pids(cl: HACluster, sup: Supervisors, host: str) -> list[int]:
    """Every process of `host` that belongs to this cluster: its etcd, its Patroni, and its
    PostgreSQL postmaster with every backend."""
    pids: list[int] = []
    for name in (etcd_program_name(cl.env.name, host), patroni_program_name(cl.env.name, host)):
        info = sup.info(name)
        if info and info.get("pid"):
            pids.append(int(info["pid"]))
    if host in {m.host for m in cl.ha.members}:
        pm = postmaster_pid(cl, host)
        if pm:
            pids.append(pm)
    return pids + [c for p in list(pids) for c in _descendants(p)]


def postmaster_pid(cl: HACluster, host: str) -> int | None:
    try:
        pid = int((cl.paths.pgdata(host) / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def postgres_pids(cl: HACluster, host: str) -> list[int]:
    """The member's PostgreSQL server: its postmaster and every process it started."""
    pm = postmaster_pid(cl, host)
    return [] if pm is None else [pm, *_descendants(pm)]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_host(cl: HACluster, sup: Supervisors, host: str) -> list[int]:
    """`host` dies: every process of it SIGKILLed at once, and (the marker) nothing of it
    starts again until revive_host. Returns the pids killed."""
    marker = cl.paths.host_down_marker(host)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    pids = host_pids(cl, sup, host)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def revive_host(cl: HACluster, sup: Supervisors, host: str) -> None:
    """`host` boots again: its etcd, then its Patroni (which rejoins, rewinding if needed)."""
    cl.paths.host_down_marker(host).unlink(missing_ok=True)
    for name in (etcd_program_name(cl.env.name, host), patroni_program_name(cl.env.name, host)):
        if sup.info(name) is not None:
            if sup.state(name) not in ("RUNNING", "STARTING"):
                sup.start_program(name)
