"""Variants of the real spec whose prd, bak and the front door are network-namespace hosts.

Everything but the hosts comes from deploy/environments.toml (ports, hostnames, policies,
timings); a variant keeps prd and its backup only (prd taking releases directly, so the test
needs no pipeline), places prd and bak each on its own namespace host and HAProxy on an
`edge` host, and lets the hosts' subnet (where wtx and the test reach the front door from)
through the access rules.

`netns_variant`: prd on one plain cluster on prd's host (its HA members and backup repository
left out). bak then runs on a database that lives on prd's host, so HAProxy checks the
liveness path (`/healthz`, the app alone): what it proves is the routing across machines.

`netns_ha_variant`: prd's HA database as the spec declares it, each member on a machine of its
own: the first Patroni member and an etcd member on prd's host (with prd's app), the second
member (the synchronous standby) and an etcd member on bak's host (with bak's app), the third
etcd member on a `witness` host. HAProxy on `edge` is both the front door and the database's
entry point. The readiness path is checked, as in the real spec.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

# /24s no machine of ours routes: the namespaces' own networks (one per variant, so a
# leftover of one never meets the other).
SUBNET = ipaddress.IPv4Network("10.213.47.0/24")
HA_SUBNET = ipaddress.IPv4Network("10.213.48.0/24")
HOSTS = ("edge", "prd", "bak")
HA_HOSTS = ("edge", "prd", "bak", "witness")


def _place(raw: dict[str, Any], subnet: ipaddress.IPv4Network, hosts: tuple[str, ...]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    addresses = iter(subnet.hosts())
    next(addresses)  # .1 is left to nobody in particular; wtx's bridge takes a free one
    data["hosts"] = {**data.get("hosts", {}),
                     **{name: {"address": str(next(addresses)), "runner": "netns"} for name in hosts}}
    data["defaults"]["front_door_host"] = "edge"
    envs = data["environments"]
    prd = envs["prd"]
    backup = prd["failover"]["backup"]
    data["environments"] = {"prd": prd, backup: envs[backup]}
    prd["promote_from"] = ""
    prd.pop("approval", None)
    prd["host"], envs[backup]["host"] = "prd", "bak"
    # The backup repository's host is not among the machines a variant runs.
    prd.pop("backups", None)
    for env in data["environments"].values():
        env["access"]["allowed_networks"] = [*env["access"].get("allowed_networks", []), str(subnet)]
    return data


def netns_variant(raw: dict[str, Any], subnet: ipaddress.IPv4Network = SUBNET) -> dict[str, Any]:
    data = _place(raw, subnet, HOSTS)
    data["defaults"]["health_check"] = {**data["defaults"].get("health_check", {}), "path": "/healthz"}
    data["environments"]["prd"]["database"].pop("ha", None)
    return data


def netns_ha_variant(raw: dict[str, Any], subnet: ipaddress.IPv4Network = HA_SUBNET) -> dict[str, Any]:
    data = _place(raw, subnet, HA_HOSTS)
    prd = data["environments"]["prd"]
    ha = prd["database"]["ha"]
    # The spec's database hosts, by role: the first member's host becomes prd's, the second's
    # bak's, any other host of an etcd member the witness.
    bak = data["environments"][prd["failover"]["backup"]]
    placed = {ha["members"][0]["host"]: prd["host"], ha["members"][1]["host"]: bak["host"]}
    for member in ha["members"]:
        member["host"] = placed[member["host"]]
    for member in ha["etcd"]:
        member["host"] = placed.get(member["host"], "witness")
    # The spec's this-machine database hosts are replaced by the namespaces.
    for old in placed:
        if old not in HA_HOSTS:
            data["hosts"].pop(old, None)
    return data
