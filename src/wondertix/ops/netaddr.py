"""Source-address rules: which client networks may reach an environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def address_in(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(remote_addr: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The real client: the last X-Forwarded-For hop added by a trusted proxy, else REMOTE_ADDR."""
    if forwarded_for and address_in(remote_addr, trusted):
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not address_in(hop, trusted):
                return hop
        if hops:
            return hops[0]
    return remote_addr
