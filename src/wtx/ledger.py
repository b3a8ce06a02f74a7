"""The ledger: one JSON line per build, deploy, abort and rollback, in var/ledger.jsonl.

Append-only by construction: the file is only ever opened with O_APPEND, each record is one
write() under an exclusive lock, and nothing in wtx truncates or rewrites it. It is the
answer to "what ran where, when, and why did that deploy stop?".
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wtx.secrets import MASK, SecretsError, all_secret_values

# Event names (free-form strings are accepted, these are the ones wtx writes).
BUILD = "build"
DEPLOY = "deploy"
ABORT = "abort"
ROLLBACK = "rollback"


def ledger_path(var_dir: Path) -> Path:
    return Path(var_dir) / "ledger.jsonl"


def _actor() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # no passwd entry in a container
        return f"uid{os.getuid()}@{socket.gethostname()}"


def _redact(text: str, var_dir: Path) -> str:
    """Defense in depth: a reason quoting an error message must not carry a secret into the
    ledger (the records are meant to be read and shared). Values are masked, never logged."""
    try:
        values = all_secret_values(var_dir)
    except (OSError, ValueError, SecretsError):
        return text
    for value in sorted(values.values(), key=len, reverse=True):
        if len(value) >= 8:
            text = text.replace(value, MASK).replace(quote(value, safe=""), MASK)
    return text


def append(var_dir: Path, event: str, **fields: Any) -> dict[str, Any]:
    """Record `event` (with e.g. env=, release=, previous=, reason=) and return the record."""
    if not event or not isinstance(event, str):
        raise ValueError("event must be a non-empty string")
    record: dict[str, Any] = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": event,
        **{k: v for k, v in fields.items() if v is not None},
    }
    record.setdefault("actor", _actor())
    text = json.dumps(record, sort_keys=False, default=str, ensure_ascii=False)
    line = (_redact(text, var_dir) + "\n").encode()
    path = ledger_path(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        written = os.write(fd, line)
        if written != len(line):  # pragma: no cover - a full disk
            raise OSError(f"{path}: short write to the ledger")
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock
    return record


def read(var_dir: Path, env: str | None = None) -> list[dict[str, Any]]:
    """All records, oldest first; with `env`, only those about that environment."""
    path = ledger_path(var_dir)
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc})") from None
            if env is None or record.get("env") == env:
                records.append(record)
    return records


def last(var_dir: Path, *, env: str, events: tuple[str, ...] = (DEPLOY, ROLLBACK)) -> dict[str, Any] | None:
    """The newest record about `env` among `events` (e.g. its last successful deploy)."""
    for record in reversed(read(var_dir, env)):
        if record.get("event") in events:
            return record
    return None
