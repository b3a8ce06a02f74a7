"""`wtx logs`: every log file of the chosen environments as one time-ordered view, in UTC.

Each process writes its own format (see docs/operations.md, "Log files"):

    access-<slot>.log  gunicorn:  env=prd slot=blue ts=2026-11-27T15:30:00.123Z 127.0.0.1 "GET /x HTTP/1.1" 200 … rid=…
    app-<slot>.log     the app:   {"ts": "2026-11-27T15:30:00.123+00:00", "level": "error", …}   (json)
                                  2026-11-27 07:30:00,123 ERROR [dev <rid>] logger: message  (console,
                                  in the theater's zone: Django sets the process's TZ to it)
                       gunicorn:  [2026-11-27 07:30:00 -0800] [123] [INFO] Booting worker …
    postgres.log       PostgreSQL: 2026-11-27 15:30:00.123 UTC [123] LOG:  …
    haproxy.log        HAProxy (TZ=UTC): 127.0.0.1:5000 [27/Nov/2026:15:30:00.123] fe_main be_prd/prd_blue … 200 … "GET /x HTTP/1.1" id=…
    patroni-<host>.log an HA database member (Patroni, TZ=UTC): 2026-11-27 15:30:00,123 INFO: no action. …
                       and its PostgreSQL's own lines, in postgres.log's format
    etcd-<host>.log    an etcd member (zap): {"level":"info","ts":"2026-11-27T15:30:00.123Z","msg":…}

A line with no time of its own (a traceback's next line) belongs to the entry before it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_LEVEL_ALIASES = {
    "WARN": "WARNING", "FATAL": "CRITICAL", "PANIC": "CRITICAL", "LOG": "INFO", "NOTICE": "INFO",
    "STATEMENT": "INFO", "DETAIL": "INFO", "HINT": "INFO", "CONTEXT": "INFO", "EXCEPTION": "ERROR",
}
_MIN = datetime.min.replace(tzinfo=UTC)
# The files of an environment's logs/ directory, by the first word of their name (HAProxy's
# own file is read separately).
KINDS = ("access", "app", "postgres", "patroni", "etcd")

_ACCESS = re.compile(r"^env=(?P<env>\S+) slot=(?P<slot>\S+) ts=(?P<ts>\S+) .*?\"(?P<method>[A-Z]+) (?P<path>\S+)[^\"]*\" (?P<status>\d{3}) ")
_RID = re.compile(r"(?:^| )(?:rid|id)=(?P<rid>[A-Za-z0-9._-]+)")
_APP_PLAIN = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:[,.]\d+)?) (?P<level>[A-Z]+) \[(?P<env>\S+) (?P<rid>\S+)\]")
_GUNICORN = re.compile(r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4})\] \[\d+\] \[(?P<level>[A-Z]+)\]")
_POSTGRES = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) (?P<zone>UTC|GMT|[+-]\d{2}(?::?\d{2})?) \[\d+\] (?:\S+ )*?(?P<level>[A-Z]+[0-9]?):")
_PATRONI = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) (?P<level>[A-Z]+): ")
_HAPROXY = re.compile(
    r"^\S+ \[(?P<ts>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?)\] \S+ (?P<backend>[^/\s]+)/(?P<server>\S+) \S+ (?P<status>-?\d+) "
    r".*?\"(?:(?P<method>[A-Z]+) (?P<path>\S+))?[^\"]*\"")


@dataclass(frozen=True)
class Source:
    """One log file: where it is, how it is written, whose it is ("" for HAProxy's: per line)."""

    path: Path
    kind: str  # access | app | postgres | haproxy | patroni | etcd
    env: str


@dataclass
class Entry:
    ts: datetime  # aware, UTC
    env: str
    source: str  # the file's name without .log: access-blue, app-green, postgres, haproxy
    level: str
    text: str
    request_id: str | None = None
    path: str | None = None
    seq: int = field(default=0, compare=False)

    def render(self) -> str:
        stamp = "????-??-??T??:??:??.???Z" if self.ts == _MIN else _iso(self.ts)
        return f"{stamp} {self.env:<4} {self.source:<12} {self.level:<8} {self.text}"

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["ts"] = None if self.ts == _MIN else _iso(self.ts)
        del data["seq"]
        return data


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _level(word: str) -> str:
    word = word.upper().rstrip("0123456789") if word.upper().startswith("DEBUG") else word.upper()
    word = _LEVEL_ALIASES.get(word, word)
    return word if word in LEVELS else "INFO"


def _status_level(status: str) -> str:
    code = int(status) if status.lstrip("-").isdigit() else 0
    return "ERROR" if code >= 500 or code < 0 else "WARNING" if code >= 400 else "INFO"


def _path_only(target: str | None) -> str | None:
    if not target:
        return None
    return target.split("?", 1)[0]


def _haproxy_env(backend: str, server: str) -> str:
    """The environment whose app server answered (bak's servers sit in be_prd), else the
    backend's environment, else "" (refused at the front door, unknown host)."""
    if "_" in server and server not in ("<NOSRV>",):
        return server.rsplit("_", 1)[0]
    return backend.removeprefix("be_") if backend.startswith("be_") and backend != "be_unknown_host" else ""


def parse_line(line: str, source: Source, zone: ZoneInfo) -> Entry | None:
    """The entry a line starts, or None when the line has no time of its own."""
    name = _source_name(source.path)
    if source.kind == "access":
        m = _ACCESS.match(line)
        if m:
            return Entry(_parse_iso(m["ts"]), m["env"], name, _status_level(m["status"]), line,
                         _rid(line), _path_only(m["path"]))
    elif source.kind == "app":
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if isinstance(rec, dict) and "ts" in rec:
                rid = rec.get("request_id")
                return Entry(_parse_iso(str(rec["ts"])), str(rec.get("env") or source.env), name,
                             _level(str(rec.get("level", "info"))), line,
                             None if rid in (None, "-") else str(rid), _path_only(rec.get("path")))
        m = _APP_PLAIN.match(line)
        if m:
            naive = datetime.strptime(m["ts"].replace(",", "."), "%Y-%m-%d %H:%M:%S.%f" if "," in m["ts"] or "." in m["ts"] else "%Y-%m-%d %H:%M:%S")
            return Entry(naive.replace(tzinfo=zone).astimezone(UTC), m["env"], name, _level(m["level"]), line,
                         None if m["rid"] == "-" else m["rid"])
        m = _GUNICORN.match(line)
        if m:
            ts = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S %z").astimezone(UTC)
            return Entry(ts, source.env, name, _level(m["level"]), line)
    elif source.kind == "patroni":
        m = _PATRONI.match(line)
        if m:
            ts = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            return Entry(ts, source.env, name, _level(m["level"]), line)
        return parse_line(line, Source(source.path, "postgres", source.env), zone)  # its PostgreSQL's lines
    elif source.kind == "etcd":
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
            if isinstance(rec, dict) and isinstance(rec.get("ts"), str):
                return Entry(_parse_iso(rec["ts"]), source.env, name, _level(str(rec.get("level", "info"))), line)
    elif source.kind == "postgres":
        m = _POSTGRES.match(line)
        if m:
            fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in m["ts"] else "%Y-%m-%d %H:%M:%S"
            ts = datetime.strptime(m["ts"], fmt)
            zone_word = m["zone"]
            if zone_word in ("UTC", "GMT"):
                ts = ts.replace(tzinfo=UTC)
            else:
                ts = datetime.strptime(m["ts"] + " " + zone_word.replace(":", "").ljust(5, "0"), fmt + " %z")
            return Entry(ts.astimezone(UTC), source.env, name, _level(m["level"]), line)
    elif source.kind == "haproxy":
        m = _HAPROXY.match(line)
        if m:
            ts = datetime.strptime(m["ts"], "%d/%b/%Y:%H:%M:%S.%f" if "." in m["ts"] else "%d/%b/%Y:%H:%M:%S")
            return Entry(ts.replace(tzinfo=UTC), _haproxy_env(m["backend"], m["server"]), name,
                         _status_level(m["status"]), line, _rid(line), _path_only(m["path"]))
    return None


def _parse_iso(text: str) -> datetime:
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)


def _rid(line: str) -> str | None:
    m = _RID.search(line)
    return m["rid"] if m and m["rid"] != "-" else None


def read_entries(source: Source, zone: ZoneInfo, lines: Iterable[str], previous: Entry | None = None) -> list[Entry]:
    """Entries of `lines` (one file's, in order). An indented or time-less line continues the
    entry before it; a time-less line with nothing before it gets its own, at the file's
    previous entry's time."""
    out: list[Entry] = []
    last = previous
    undated: list[Entry] = []  # time-less lines before the file's first dated one
    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        entry = parse_line(line, source, zone)
        if entry is None:
            if last is not None and (line[:1].isspace() or source.kind != "haproxy"):
                last.text += "\n" + line
                continue
            entry = Entry(last.ts if last else _MIN, last.env if last else source.env,
                          _source_name(source.path), "INFO", line)
            if last is None:
                undated.append(entry)
        elif undated:
            for early in undated:  # written just before the first line that has a time
                early.ts = entry.ts
            undated = []
        if source.env and source.kind != "haproxy":
            entry.env = entry.env or source.env
        out.append(entry)
        last = entry
    return out


def _source_name(path: Path) -> str:
    """access-blue for access-blue.log and its rotated copies (access-blue.log.1, …)."""
    return path.name.split(".log", 1)[0]


def _files(directory: Path, stem: str, rotated: bool) -> list[Path]:
    """`stem`.log, and with `rotated` its older copies (stem.log.1, .2, … as supervisord
    names them), oldest first."""
    paths = [p for p in directory.glob(f"{stem}.log.*") if p.suffix[1:].isdigit()] if rotated else []
    paths.sort(key=lambda p: -int(p.suffix[1:]))
    current = directory / f"{stem}.log"
    return [*paths, current] if current.is_file() else paths


def sources(var_dir: Path, envs: list[str], *, rotated: bool = False) -> list[Source]:
    """Every log file of `envs` (with `rotated`, the rotated copies too), and HAProxy's (its
    lines are picked per environment)."""
    found = []
    for env in envs:
        logs = Path(var_dir) / "envs" / env / "logs"
        stems = sorted({_source_name(p) for p in logs.glob("*.log*")}) if logs.is_dir() else []
        for stem in stems:
            kind = stem.split("-", 1)[0]
            if kind in KINDS:
                found += [Source(path, kind, env) for path in _files(logs, stem, rotated)]
    found += [Source(path, "haproxy", "") for path in _files(Path(var_dir) / "haproxy", "haproxy", rotated)]
    return found


@dataclass(frozen=True)
class Filters:
    envs: frozenset[str]
    min_level: str | None = None
    request_id: str | None = None
    path: str | None = None
    since: datetime | None = None
    all_envs: bool = False  # then HAProxy's lines of no environment (refused, unknown host) too
    # Only these files: a name (patroni-prd-db, access-blue) or a kind (patroni, etcd, haproxy).
    sources: frozenset[str] = frozenset()

    def keep(self, e: Entry) -> bool:
        if e.env not in self.envs and not (self.all_envs and e.env == ""):
            return False
        if self.sources and not (e.source in self.sources or e.source.split("-", 1)[0] in self.sources):
            return False
        if self.min_level and LEVELS.index(e.level) < LEVELS.index(self.min_level):
            return False
        if self.request_id and e.request_id != self.request_id:
            return False
        if self.path and not (e.path and (e.path == self.path or e.path.startswith(self.path.rstrip("/") + "/"))):
            return False
        return not (self.since and e.ts < self.since)


def merge(per_file: Iterable[list[Entry]]) -> list[Entry]:
    """One time-ordered list; entries at the same time keep their file's order."""
    everything = []
    for index, entries in enumerate(per_file):
        for n, e in enumerate(entries):
            e.seq = index * 10_000_000 + n
            everything.append(e)
    return sorted(everything, key=lambda e: (e.ts, e.seq))


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30s`, `15m`, `2h`, `1d` ago, or an ISO time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if m:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m[2]]
        return now - timedelta(**{unit: int(m[1])})
    try:
        return _parse_iso(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30s, 15m, 2h, 1d) or an ISO time (2026-11-27T15:00:00Z)") from None


def view(sources_: list[Source], filters: Filters, zone: ZoneInfo, last: int) -> list[Entry]:
    """The last `last` entries that pass the filters, oldest first."""
    per_file = []
    for src in sources_:
        with open(src.path, errors="replace") as fh:
            per_file.append(read_entries(src, zone, fh))
    kept = [e for e in merge(per_file) if filters.keep(e)]
    return kept[-last:] if last else kept


def follow(sources_: list[Source], filters: Filters, zone: ZoneInfo, *, interval: float = 0.5,
           rescan: Iterator[list[Source]] | None = None) -> Iterator[Entry]:
    """New entries as they are written, from the current end of each file. A rotated file
    (new inode, or shorter than what was read) is read again from its start."""
    state: dict[Path, tuple[int, int]] = {}
    last_entry: dict[Path, Entry] = {}
    for src in sources_:
        try:
            st = src.path.stat()
        except OSError:
            continue
        state[src.path] = (st.st_ino, st.st_size)
    current = sources_
    while True:
        time.sleep(interval)
        if rescan is not None:
            current = next(rescan)
        batch = []
        for src in current:
            try:
                st = src.path.stat()
            except OSError:
                continue
            ino, offset = state.get(src.path, (st.st_ino, 0))
            if st.st_ino != ino or st.st_size < offset:
                offset = 0
            if st.st_size == offset:
                state[src.path] = (st.st_ino, offset)
                continue
            with open(src.path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            complete = data[: data.rfind(b"\n") + 1]
            state[src.path] = (st.st_ino, offset + len(complete))
            lines = complete.decode(errors="replace").splitlines()
            # Lines continuing an entry already shown (a traceback written in two goes) are
            # shown as an entry of their own, at that entry's time.
            prev = last_entry.get(src.path)
            carrier = Entry(prev.ts, prev.env, prev.source, prev.level, "", prev.request_id, prev.path) if prev else None
            entries = read_entries(src, zone, lines, previous=carrier)
            if carrier is not None and carrier.text:
                carrier.text = carrier.text.lstrip("\n")
                entries.insert(0, carrier)
            if entries:
                last_entry[src.path] = entries[-1]
            batch.append(entries)
        for entry in merge(batch):
            if filters.keep(entry):
                yield entry


