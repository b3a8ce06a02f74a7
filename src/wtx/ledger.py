"""The ledger: one JSON line per build, deploy, abort and rollback, in var/ledger.jsonl.

Append-only by construction: the file is only ever opened with O_APPEND, each record is one
write() under an exclusive lock, and nothing in wtx truncates or rewrites it. It is the
answer to "what ran where, when, and why did that deploy stop?".

Tamper-evident: each record carries `seq` (1, 2, …) and `prev`, the SHA-256 of the previous
record's line, and var/ledger.head holds the sequence number and hash of the last one. An
edited, removed, inserted or reordered record breaks the chain, and records cut from the end
no longer match the head; `verify` (`wtx history --verify`) names the line. A torn last line
(a crash or a full disk mid-write) is reported and skipped: readers never fail on it, and the
next append starts on a new line and chains to the last whole record.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
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


GENESIS = "0" * 64  # `prev` of the first record


def ledger_path(var_dir: Path) -> Path:
    return Path(var_dir) / "ledger.jsonl"


def head_path(var_dir: Path) -> Path:
    return Path(var_dir) / "ledger.head"


def line_hash(line: bytes) -> str:
    """The chain link: SHA-256 of a record's line as written, without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _seq(record: dict[str, Any]) -> int:
    seq = record.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _last_whole_record(fd: int) -> tuple[bytes, dict[str, Any]] | None:
    """The newest line of the file that is a whole record (torn lines skipped), read back
    from the end in blocks so that an append stays cheap however long the ledger grows."""
    pos, data = os.fstat(fd).st_size, b""
    while pos > 0:
        step = min(8192, pos)
        pos -= step
        data = os.pread(fd, step, pos) + data
        lines = data.split(b"\n")
        whole = lines if pos == 0 else lines[1:]  # the first piece may be cut by the block edge
        for line in reversed(whole):
            record = _parse(line) if line.strip() else None
            if record is not None:
                return line, record
    return None


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
    path = ledger_path(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        last = _last_whole_record(fd)
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": event,
            **{k: v for k, v in fields.items() if v is not None and k not in ("seq", "prev")},
        }
        record.setdefault("actor", _actor())
        record["seq"] = _seq(last[1]) + 1 if last else 1
        record["prev"] = line_hash(last[0]) if last else GENESIS
        text = json.dumps(record, sort_keys=False, default=str, ensure_ascii=False)
        body = _redact(text, var_dir).encode()
        line = (b"\n" if torn else b"") + body + b"\n"  # a torn line is closed, never extended
        written = os.write(fd, line)
        if written != len(line):  # pragma: no cover - a full disk
            raise OSError(f"{path}: short write to the ledger")
        os.fsync(fd)
        _write_head(var_dir, record["seq"], line_hash(body))
    finally:
        os.close(fd)  # closing releases the lock
    return json.loads(body)


def _write_head(var_dir: Path, seq: int, digest: str) -> None:
    head = head_path(var_dir)
    tmp = head.with_name(f".{head.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"seq": seq, "hash": digest}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, head)


def read(var_dir: Path, env: str | None = None) -> list[dict[str, Any]]:
    """All whole records, oldest first; with `env`, only those about that environment. Torn
    lines are skipped (`verify` reports them): status, deploy and rollback never fail on one."""
    path = ledger_path(var_dir)
    if not path.exists():
        return []
    records = []
    for raw in path.read_bytes().split(b"\n"):
        record = _parse(raw) if raw.strip() else None
        if record is not None and (env is None or record.get("env") == env):
            records.append(record)
    return records


@dataclass
class Verdict:
    """What `verify` found: problems mean the ledger was changed; warnings do not."""

    records: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(var_dir: Path) -> Verdict:
    """Walk the chain: every record must name the hash and follow the sequence number of the
    whole record before it, and the last one must match var/ledger.head."""
    verdict = Verdict()
    path = ledger_path(var_dir)
    if not path.exists():
        return verdict
    data = path.read_bytes()
    lines = data.split(b"\n")
    prev_line: bytes | None = None
    prev_seq = 0
    unchained = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        record = _parse(raw)
        if record is None:
            where = "the last line" if number == len(lines) else f"line {number}"
            verdict.warnings.append(f"{where} is a torn record (an interrupted write) and is ignored")
            continue
        verdict.records += 1
        if "prev" not in record:
            if prev_seq:
                verdict.problems.append(f"line {number}: a record without a chain link among chained ones (inserted)")
            else:
                unchained += 1
            prev_line = raw
            continue
        want = line_hash(prev_line) if prev_line is not None else GENESIS
        if record["prev"] != want:
            verdict.problems.append(
                f"line {number} (seq {record.get('seq')}): does not follow the record before it — "
                "a record was edited, removed or reordered"
            )
        if record.get("seq") != prev_seq + 1:
            verdict.problems.append(f"line {number}: sequence {record.get('seq')} after {prev_seq} — a record was removed or reordered")
        prev_seq = _seq(record) or prev_seq + 1
        prev_line = raw
    if unchained:
        verdict.warnings.append(f"{unchained} record(s) predate the hash chain and cannot be verified")
    head = head_path(var_dir)
    if head.exists() and prev_seq:
        try:
            expected = json.loads(head.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            verdict.problems.append(f"{head.name} is unreadable")
        else:
            if expected.get("seq") != prev_seq or expected.get("hash") != line_hash(prev_line or b""):
                verdict.problems.append(
                    f"the ledger ends at seq {prev_seq} but {head.name} records seq {expected.get('seq')}: "
                    "records were removed from the end or the last record was edited"
                )
    elif prev_seq:
        verdict.problems.append(f"{head.name} is missing")
    return verdict


def last(var_dir: Path, *, env: str, events: tuple[str, ...] = (DEPLOY, ROLLBACK)) -> dict[str, Any] | None:
    """The newest record about `env` among `events` (e.g. its last successful deploy)."""
    for record in reversed(read(var_dir, env)):
        if record.get("event") in events:
            return record
    return None
