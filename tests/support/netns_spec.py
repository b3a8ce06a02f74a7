"""A variant of the real spec with prd, bak and the front door on three netns hosts.

Everything but the hosts comes from deploy/environments.toml (ports, hostnames, policies);
the variant keeps prd and its backup only (prd taking releases directly, so the test needs no
pipeline), places prd and bak each on its own namespace host and HAProxy on an `edge` host,
and lets the hosts' subnet (where wtx and the test reach the front door from) through prd's
access rules.

bak still runs on prd's one database, which lives on prd's host: with HAProxy checking the
readiness path (app *and* database), losing prd's host would mark bak down too. Until the
database fails over on its own (Patroni, separate work), the variant checks the liveness
path (`/healthz`, the app alone), so what the tests prove is the routing across machines.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

# A /24 no machine of ours routes: the namespaces' own network.
SUBNET = ipaddress.IPv4Network("10.213.47.0/24")
HOSTS = ("edge", "prd", "bak")


def netns_variant(raw: dict[str, Any], subnet: ipaddress.IPv4Network = SUBNET) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    addresses = iter(subnet.hosts())
    next(addresses)  # .1 is left to nobody in particular; wtx's bridge takes a free one
    data["hosts"] = {**data.get("hosts", {}),
                     **{name: {"address": str(next(addresses)), "runner": "netns"} for name in HOSTS}}
    data["defaults"]["front_door_host"] = "edge"
    data["defaults"]["health_check"] = {**data["defaults"].get("health_check", {}), "path": "/healthz"}
    envs = data["environments"]
    prd = envs["prd"]
    backup = prd["failover"]["backup"]
    data["environments"] = {"prd": prd, backup: envs[backup]}
    prd["promote_from"] = ""
    prd.pop("approval", None)
    prd["host"], envs[backup]["host"] = "prd", "bak"
    # One plain cluster on prd's host (its HA members and backup repository live on hosts of
    # their own, which this variant does not run).
    prd["database"].pop("ha", None)
    prd.pop("backups", None)
    for env in data["environments"].values():
        env["access"]["allowed_networks"] = [*env["access"].get("allowed_networks", []), str(subnet)]
    return data
