"""The checked-in spec with every port moved by one offset.

`make test` runs the deploy tests' stack (every environment on the spec's own ports, prd's HA
database among them) beside the other layers. The integration tests that start prd's HA
database themselves (etcd, Patroni, HAProxy's entry point) run on this variant: the same
environments, the same roles for each port, each port the spec's plus OFFSET — never a number
written a second time.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from wtx.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
# The spec's ports (2381…9409) plus this stay below the kernel's ephemeral range (32768 up),
# so no client socket of another test takes one of them.
OFFSET = 20000
_URL_PORT = re.compile(r"(?<=:)(\d+)(?=/|$)")


def _is_port(key: str, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (key == "port" or key.endswith("_port"))


def moved(node: Any, offset: int = OFFSET) -> Any:
    """A copy of a raw spec (or any part of it) with each `port` / `*_port` value and the port
    of each `url` moved by `offset`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if _is_port(key, value):
                out[key] = value + offset
            elif key == "url" and isinstance(value, str):
                out[key] = _URL_PORT.sub(lambda m: str(int(m.group(1)) + offset), value, count=1)
            else:
                out[key] = moved(value, offset)
        return out
    if isinstance(node, list):
        return [moved(item, offset) for item in node]
    return node


def moved_spec(dest: Path, offset: int = OFFSET) -> Spec:
    """The moved spec, written to dest/deploy/environments.toml and loaded from there. `dest`
    then serves as the `wtx` command line's root (`--root`, WTX_ROOT): deploy/ holds the other
    files wtx reads from it too (Patroni's lock)."""
    deploy = ROOT / "deploy"
    path = dest / "deploy" / "environments.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    for other in deploy.iterdir():
        if other.is_file() and other.name != path.name:
            shutil.copyfile(other, path.parent / other.name)
    path.write_text(tomli_w.dumps(moved(tomllib.loads((deploy / path.name).read_text()), offset)))
    return load_spec(path)
