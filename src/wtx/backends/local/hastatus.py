"""`wtx status` of an HA database: who leads, each replica's lag and sync state, and whether
bak's copy is in sync (the condition under which losing the leader loses nothing).

`evaluate` is pure (Patroni's `GET /cluster` members in, a verdict out) so every case is unit
tested with fakes; `status` asks the running cluster.
"""

from __future__ import annotations

from typing import Any

from wtx.backends.local import dbha
from wtx.backends.local.patroni import HACluster

MIB = 1_048_576


def _lag_bytes(value: Any) -> int | None:
    """Patroni's `lag` of a replica: bytes behind the leader, or "unknown" (not streaming)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def evaluate(found: list[dict[str, Any]], expected: list[str], *, synchronous: bool,
             max_lag_bytes: int) -> dict[str, Any]:
    """The verdict on one HA database from Patroni's view of it.

    In sync means: exactly one member leads and runs; with synchronous replication one replica
    is the streaming synchronous standby (a commit is acknowledged only once it has it); every
    other member streams; no streaming replica is more than `max_lag_bytes` behind. `problem`
    says, in the operator's words, what is not so. in_sync is None when no member answers at
    all: the database is down (or never started), which the health column reports."""
    by_name = {str(m.get("name")): m for m in found}
    members: list[dict[str, Any]] = []
    for name in [*expected, *sorted(set(by_name) - set(expected))]:
        m = by_name.get(name)
        if m is None:
            members.append({"name": name, "role": "absent", "state": "not answering", "lag_bytes": None,
                            "sync": False})
            continue
        role, state = str(m.get("role", "?")), str(m.get("state", "?"))
        members.append({"name": name, "role": role, "state": state,
                        "lag_bytes": None if role == "leader" else _lag_bytes(m.get("lag")),
                        "sync": role == "sync_standby" and state == "streaming"})
    leaders = [m for m in members if m["role"] == "leader" and m["state"] == "running"]
    replicas = [m for m in members if m["role"] != "leader"]
    sync = [m["name"] for m in members if m["sync"]]
    problems: list[str] = []
    if not found:
        problems.append("no Patroni member answers")
    elif len(leaders) != 1:
        problems.append("no leader" if not leaders else f"{len(leaders)} leaders")
    if found and synchronous and replicas and not sync:
        why = ", ".join(f"{m['name']} {m['role']} {m['state']}" for m in replicas)
        problems.append(f"no synchronous standby ({why}): a failover now could lose acknowledged orders")
    for m in replicas:
        if m["role"] == "absent" or m["state"] != "streaming":
            if not (synchronous and not sync):  # already said
                problems.append(f"{m['name']} is {m['state']}, not streaming")
        elif m["lag_bytes"] is not None and m["lag_bytes"] > max_lag_bytes:
            problems.append(f"{m['name']} is {m['lag_bytes'] / MIB:.1f} MiB behind the leader "
                            f"(limit {max_lag_bytes / MIB:g} MiB)")
        elif m["lag_bytes"] is None:
            problems.append(f"{m['name']}: its lag is unknown")
    return {"leader": leaders[0]["name"] if len(leaders) == 1 else None, "members": members,
            "sync_standbys": sync, "max_lag_bytes": max_lag_bytes,
            "in_sync": None if not found else not problems,
            "problem": "; ".join(problems)}


def etcd_verdict(health: dict[str, bool]) -> dict[str, Any]:
    """etcd's members: how many answer, and what one more loss would do. Reported, never a
    failure of `wtx status` by itself: the database keeps its leader while a majority answers."""
    down = sorted(h for h, ok in health.items() if not ok)
    majority = len(health) // 2 + 1
    up = len(health) - len(down)
    if not down:
        warning = ""
    elif up >= majority:
        spare = up - majority
        warning = (f"etcd on {', '.join(down)} not answering: {up} of {len(health)} keep the quorum"
                   + ("; one more loss stops every write" if spare == 0 else ""))
    else:
        warning = f"etcd has no quorum ({up} of {len(health)} answer): no leader can hold its lease"
    return {"members": health, "healthy": up, "quorum": up >= majority, "warning": warning}


def status(cl: HACluster) -> dict[str, Any]:
    found = evaluate(dbha.members(cl), [m.host for m in cl.ha.members], synchronous=cl.ha.synchronous,
                     max_lag_bytes=cl.ha.max_lag_mb * MIB)
    found["etcd"] = etcd_verdict(dbha.etcd_health(cl))
    return found

