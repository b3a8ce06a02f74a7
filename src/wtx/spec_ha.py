"""The spec of a highly available database: `[environments.<env>.database] ha = { … }`.

An environment whose database declares `ha` runs it as a Patroni cluster: one PostgreSQL
member per host (`members`, the first one bootstraps the cluster), kept consistent by an etcd
cluster (`etcd`, one member per host, an odd number of at least three so that losing any one
host keeps a quorum). The environment's `database.port` is then the database's entry point on
the front door's host: HAProxy forwards it to whichever member is the leader (Patroni's
REST `GET /primary`). Field by field: docs/environments.md#database-ha.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HAMember(_Strict):
    """One PostgreSQL member: its host, PostgreSQL's port there and Patroni's REST port."""

    host: str
    port: int = Field(ge=1024, le=65535)
    rest_port: int = Field(ge=1024, le=65535)


class EtcdMember(_Strict):
    """One etcd member: its host, the port clients (Patroni) use and the port peers use."""

    host: str
    client_port: int = Field(ge=1024, le=65535)
    peer_port: int = Field(ge=1024, le=65535)


class DatabaseHA(_Strict):
    members: list[HAMember] = Field(min_length=2, max_length=5)
    etcd: list[EtcdMember] = Field(min_length=3, max_length=5)
    # Patroni's leader lease (seconds; 20 is Patroni's minimum: a lower value is raised to it),
    # its loop period and how long it retries the DCS and PostgreSQL before demoting.
    ttl: int = Field(20, ge=20, le=300)
    loop_wait: int = Field(1, ge=1, le=60)
    retry_timeout: int = Field(5, ge=1, le=120)
    # A commit is acknowledged only once a standby has it (Patroni's synchronous_mode).
    synchronous: bool = True
    # A replica further behind the leader than this (MiB of WAL) is out of sync: `wtx status`
    # fails while it lags (a synchronous standby's replay trails its flushed WAL in a burst).
    max_lag_mb: int = Field(16, ge=1, le=65_536)
    # HAProxy's check of each member's REST /primary, and its connect timeout (also the
    # pause between its connection retries).
    check_inter_ms: int = Field(500, ge=100, le=10_000)
    connect_timeout_ms: int = Field(300, ge=50, le=10_000)

    @field_validator("etcd")
    @classmethod
    def _odd(cls, v: list[EtcdMember]) -> list[EtcdMember]:
        if len(v) % 2 == 0:
            raise ValueError(f"{len(v)} etcd members: use an odd number (3 or 5) so a majority survives a split")
        return v


def ha_problems(ha: DatabaseHA, hosts: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for every rule that spans members, hosts and timings."""
    out: list[tuple[str, str]] = []
    known = ", ".join(hosts)
    for kind, items in (("members", ha.members), ("etcd", ha.etcd)):
        names = [m.host for m in items]
        for i, name in enumerate(names):
            if name not in hosts:
                out.append((f"database.ha.{kind}[{i + 1}].host", f"names unknown host {name!r} (known: {known})"))
        if len(set(names)) != len(names):
            out.append((f"database.ha.{kind}", "two members on one host: each member needs a host of its own "
                        "(losing that host would take both)"))
    if ha.loop_wait + 2 * ha.retry_timeout > ha.ttl:
        out.append(("database.ha.ttl", f"must be at least loop_wait + 2 x retry_timeout ({ha.loop_wait + 2 * ha.retry_timeout}): "
                    "else a leader is demoted by a short DCS hiccup"))
    return out


def ha_ports(ha: DatabaseHA, hosts: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(address, port, what) of every listener of the HA database."""
    out: list[tuple[str, int, str]] = []
    for m in ha.members:
        addr = hosts[m.host].address if m.host in hosts else m.host
        out += [(addr, m.port, f"database.ha member {m.host} port"), (addr, m.rest_port, f"database.ha member {m.host} rest_port")]
    for e in ha.etcd:
        addr = hosts[e.host].address if e.host in hosts else e.host
        out += [(addr, e.client_port, f"database.ha etcd {e.host} client_port"),
                (addr, e.peer_port, f"database.ha etcd {e.host} peer_port")]
    return out
