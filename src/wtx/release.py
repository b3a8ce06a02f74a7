"""Releases: built once, identified by the hash of their contents, promoted unchanged.

A release lives in var/releases/<id>/ and holds:

    manifest.json      commit, build facts, every file with its sha256, the id
    requirements.lock  the runtime dependencies, pinned (a subset of the repo's lock)
    wheelhouse/        the app wheel and every dependency wheel: installing needs no network
    static/            collected static files (hashed names + compressed copies, whitenoise)

The id is the first 12 hex digits of sha256 over the sorted "sha256  path" lines of those
files, so the same commit builds to the same id and any changed byte gives a new one. Build
facts that vary between builds (time, who) are in the manifest but not in the id.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wtx import ledger
from wtx.secrets import all_secret_values

Progress = Callable[[str], None]
"""Called with a short description as each long step starts (the CLI shows a spinner)."""

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
ID_LENGTH = 12
APP_DISTRIBUTION = "wondertix"

# Patterns of credentials that must never ship, whoever's they are.
SECRET_PATTERNS: dict[str, re.Pattern[bytes]] = {
    "private key": re.compile(rb"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "Stripe live key": re.compile(rb"\b(?:sk|rk)_live_[0-9A-Za-z]{16,}"),
    "Stripe webhook secret": re.compile(rb"\bwhsec_[0-9A-Za-z]{20,}"),
    "AWS access key": re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(rb"\bgh[pousr]_[0-9A-Za-z]{36,}"),
    "Slack token": re.compile(rb"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
}
SECRET_FILENAMES = re.compile(r"(^|/)(secrets\.env|\.env|id_rsa|id_ed25519|[^/]*\.pem|[^/]*\.key)$")


class ReleaseError(Exception):
    """A release cannot be built or found; the message is one line for the operator."""


@dataclass(frozen=True)
class Release:
    id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def commit(self) -> str:
        return str(self.manifest.get("commit", ""))

    @property
    def built_at(self) -> str:
        return str(self.manifest.get("built_at", ""))

    @property
    def app_wheel(self) -> Path:
        return self.path / self.manifest["app"]["wheel"]

    @property
    def wheelhouse(self) -> Path:
        return self.path / "wheelhouse"

    @property
    def requirements(self) -> Path:
        return self.path / "requirements.lock"

    @property
    def static_dir(self) -> Path:
        return self.path / "static"

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.id,
            "commit": self.commit,
            "dirty": bool(m.get("dirty")),
            "built_at": self.built_at,
            "version": m.get("app", {}).get("version", ""),
            "files": len(m.get("files", {})),
            "size_bytes": m.get("size_bytes", 0),
            "path": str(self.path),
        }


def releases_dir(var_dir: Path) -> Path:
    return Path(var_dir) / "releases"


# --------------------------------------------------------------------------------------------
# Finding releases


def _load(path: Path) -> Release:
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    return Release(id=manifest["id"], path=path, manifest=manifest)


def list_releases(var_dir: Path) -> list[Release]:
    """Every built release, oldest build first."""
    base = releases_dir(var_dir)
    if not base.is_dir():
        return []
    found = [_load(p) for p in base.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda r: (r.built_at, r.id))


def get(release_id: str, var_dir: Path) -> Release:
    """The release whose id is or starts with `release_id` (at least 4 characters)."""
    release_id = release_id.strip().lower()
    if len(release_id) < 4 or not re.fullmatch(r"[0-9a-f]+", release_id):
        raise ReleaseError(f"{release_id!r} is not a release id (hex, at least 4 characters; see `wtx releases`)")
    matches = [r for r in list_releases(var_dir) if r.id.startswith(release_id)]
    if not matches:
        raise ReleaseError(f"no release {release_id!r} in {releases_dir(var_dir)} (see `wtx releases`)")
    if len(matches) > 1:
        raise ReleaseError(f"{release_id!r} matches {len(matches)} releases: {', '.join(r.id for r in matches)}")
    return matches[0]


def latest(var_dir: Path) -> Release:
    """The most recently built release (a rebuild of an older commit counts as newest)."""
    for record in reversed(ledger.read(var_dir)):
        if record.get("event") == ledger.BUILD and record.get("release"):
            path = releases_dir(var_dir) / record["release"]
            if (path / MANIFEST).is_file():
                return _load(path)
    releases = list_releases(var_dir)
    if not releases:
        raise ReleaseError("no release has been built yet; run `wtx build`")
    return releases[-1]


def verify(release: Release) -> list[str]:
    """Files that are missing or differ from the manifest (empty: the release is intact)."""
    problems = []
    for rel, digest in release.manifest["files"].items():
        path = release.path / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif _sha256_file(path) != digest:
            problems.append(f"{rel}: changed since the build")
    return problems


# --------------------------------------------------------------------------------------------
# Hashing


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _walk_files(base: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def file_hashes(base: Path) -> dict[str, str]:
    return {p.relative_to(base).as_posix(): _sha256_file(p) for p in _walk_files(base) if p.name != MANIFEST}


def content_id(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(f"{files[rel]}  {rel}\n".encode())
    return h.hexdigest()[:ID_LENGTH]


# --------------------------------------------------------------------------------------------
# Git


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise ReleaseError("git is not installed; a release records the commit it was built from") from None
    except subprocess.CalledProcessError as exc:
        raise ReleaseError(f"git {' '.join(args)} failed in {root}: {exc.stderr.strip() or exc}") from None
    return out.stdout


def _git_state(root: Path) -> tuple[str, int, list[str]]:
    commit = _git(root, "rev-parse", "HEAD").strip()
    commit_time = int(_git(root, "show", "-s", "--format=%ct", "HEAD").strip())
    changes = [line[3:] for line in _git(root, "status", "--porcelain", "--untracked-files=normal").splitlines() if line]
    return commit, commit_time, changes


def _export_source(root: Path, dest: Path, *, dirty: bool) -> None:
    """The sources the release is built from: the commit, or (dirty) the work tree's files."""
    dest.mkdir(parents=True)
    if not dirty:
        archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", "HEAD"],
                                 check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
        return
    listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, listing.split("\0")):
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


# --------------------------------------------------------------------------------------------
# Building


def _run(args: list[str], *, what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if not ln.startswith("WARNING: Location")]
        detail = tail[-1] if tail else f"exit code {proc.returncode}"
        raise ReleaseError(f"{what} failed: {detail}")
    return proc.stdout


def _lock_entries(lock: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, sha256 hashes) of a requirements file in pip's hash-checking format
    (``name==version \\`` then ``--hash=sha256:…`` continuation lines)."""
    entries: dict[str, tuple[str, frozenset[str]]] = {}
    text = lock.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" not in line or line.startswith("-"):
            continue
        spec, *options = line.split()
        name, version = spec.split("==", 1)
        hashes = frozenset(o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=sha256:"))
        entries[_normalize(name.split("[")[0])] = (version.strip(), hashes)
    return entries


def _pins(lock: Path) -> dict[str, str]:
    return {name: version for name, (version, _hashes) in _lock_entries(lock).items()}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_name_version(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return _normalize(name), version


def _runtime_lock(wheelhouse: Path, repo_lock: Path) -> str:
    """requirements.lock of the release: every dependency wheel, as pinned by the repo lock,
    with the sha256 of the very wheel in the wheelhouse (installs use --require-hashes)."""
    entries = _lock_entries(repo_lock)
    lines = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version = _wheel_name_version(wheel.name)
        if name == APP_DISTRIBUTION:
            continue
        pinned, hashes = entries.get(name, ("nothing", frozenset()))
        if pinned != version:
            raise ReleaseError(
                f"dependency {name} {version} is not pinned in requirements.lock "
                f"(lock says {pinned}); update the lock"
            )
        digest = _sha256_file(wheel)
        if digest not in hashes:
            raise ReleaseError(
                f"dependency wheel {wheel.name} has sha256 {digest}, which requirements.lock does "
                "not list for it; regenerate the lock's hashes or find who changed the wheel"
            )
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return "# Runtime dependencies of this release (generated by `wtx build` from requirements.lock).\n" + "\n".join(lines) + "\n"


def wheel_cache_dir() -> Path:
    """Dependency wheelhouses already resolved, keyed by what they were resolved from."""
    if os.environ.get("WTX_CACHE_DIR"):
        return Path(os.environ["WTX_CACHE_DIR"]) / "wheelhouse"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wtx" / "wheelhouse"


def _requires_dist(app_wheel: Path) -> bytes:
    with zipfile.ZipFile(app_wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    return "\n".join(sorted(ln for ln in lines if ln.startswith("Requires-Dist:"))).encode()


def _dependency_wheels(app_wheel: Path, lock: Path, wheelhouse: Path, env: dict[str, str]) -> None:
    """Every dependency of the app wheel as a wheel, pinned by the lock (`pip wheel -c`).

    Resolving is the slow part and its answer depends only on the app's declared
    dependencies and the lock, so the result is cached under that key; the release still
    records every wheel's sha256, so a cache can never change what a release id means.
    """
    key = hashlib.sha256(lock.read_bytes() + b"\0" + _requires_dist(app_wheel)).hexdigest()[:24]
    cached = wheel_cache_dir() / key
    if (cached / "complete").is_file():
        for wheel in sorted(cached.glob("*.whl")):
            shutil.copy2(wheel, wheelhouse / wheel.name)
        return
    fetched = wheelhouse.parent.parent / "dependency-wheels"
    # Hash-checking mode: every file pip fetches must carry a sha256 the lock lists (the
    # constraints give the dependencies theirs; the app wheel gets its own here).
    wanted = wheelhouse.parent.parent / "app-requirement.txt"
    wanted.write_text(f"{APP_DISTRIBUTION} @ {app_wheel.resolve().as_uri()} --hash=sha256:{_sha256_file(app_wheel)}\n")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--require-hashes", "-c", str(lock), "-r", str(wanted),
          "-w", str(fetched)],
         what="collecting dependency wheels", env=env)
    for wheel in sorted(fetched.glob("*.whl")):
        if _wheel_name_version(wheel.name)[0] != APP_DISTRIBUTION:
            shutil.copy2(wheel, wheelhouse / wheel.name)
    try:  # best effort: a read-only home only costs the next build its speed
        tmp = cached.with_name(f".{key}.{os.getpid()}.{os.urandom(4).hex()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for wheel in sorted(wheelhouse.glob("*.whl")):
            if wheel.name != app_wheel.name:
                shutil.copy2(wheel, tmp / wheel.name)
        (tmp / "complete").write_text("")
        _publish(tmp, cached)
    except OSError:
        pass


def _unpack(wheels: list[Path], dest: Path) -> None:
    """A wheel is installed by unpacking it; for a throwaway import path that is all we need
    (a second, where `pip install --target` takes many)."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(dest)  # noqa: S202 - wheels we just built or resolved; zipfile sanitizes names  # nosec B202


def _dependency_site(wheels: list[Path], fallback: Path) -> Path:
    """The dependencies unpacked, cached by the wheels' hashes (used only to run collectstatic)."""
    key = hashlib.sha256("".join(f"{w.name}={_sha256_file(w)};" for w in wheels).encode()).hexdigest()[:24]
    cached = wheel_cache_dir().parent / "site" / key
    if (cached / ".complete").is_file():
        return cached
    try:
        tmp = cached.with_name(f".{key}.{os.getpid()}.{os.urandom(4).hex()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _unpack(wheels, tmp)
        (tmp / ".complete").write_text("")
        _publish(tmp, cached)
        return cached
    except OSError:
        _unpack(wheels, fallback)
        return fallback


def _publish(tmp: Path, cached: Path) -> None:
    """Move a finished cache entry into place. An entry, once published, is never removed or
    replaced (another build may be reading it); if one appeared meanwhile, ours is dropped."""
    try:
        os.rename(tmp, cached)
    except OSError:
        if not cached.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _collect_static(stage: Path, app_wheel: Path) -> None:
    """Run the release's own collectstatic (its code, its pinned dependencies, a throwaway key)."""
    app_dir = stage.parent / "app"
    _unpack([app_wheel], app_dir)
    site = _dependency_site([w for w in sorted((stage / "wheelhouse").glob("*.whl")) if w != app_wheel],
                            stage.parent / "site")
    scratch = stage.parent / "scratch"
    scratch.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{app_dir}{os.pathsep}{site}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "wondertix.settings",
        "DEBUG": "false",  # the storage that writes hashed names and compressed copies
        "SECRET_KEY": "collectstatic-only-" + os.urandom(24).hex(),
        "STAFF_API_TOKEN_KEY": "collectstatic-only-" + os.urandom(24).hex(),
        "WONDERTIX_ENV": "build",
        "WONDERTIX_VAR_DIR": str(scratch),
        "DATABASE_URL": f"sqlite:///{scratch / 'unused.sqlite3'}",
        "STATIC_ROOT": str(stage / "static"),
        "LOG_FILE": "",
        "METRICS_ENABLED": "false",
    }
    # -S: only the release's own packages, never the ones installed next to wtx.
    _run([sys.executable, "-S", "-m", "django", "collectstatic", "--noinput", "-v", "0"],
         what="collectstatic", env=env, cwd=scratch)


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of a built file; archives and compressed copies are opened."""
    data = path.read_bytes()
    yield path.name, data
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield f"{path.name}!{info.filename}", zf.read(info)
    elif path.suffix == ".gz":
        try:
            yield f"{path.name}!", gzip.decompress(data)
        except OSError:
            pass


def scan_for_secrets(base: Path, secret_values: dict[str, str], *, first_party: Iterable[str]) -> list[str]:
    """Findings (never the values): a known secret's value anywhere in the release, and
    credential-looking patterns or files in what this project wrote (`first_party` prefixes)."""
    needles = {label: value.encode() for label, value in secret_values.items() if len(value) >= 8}
    prefixes = tuple(first_party)
    findings = []
    for path in _walk_files(base):
        rel = path.relative_to(base).as_posix()
        ours = rel.startswith(prefixes)
        for name, data in _members(path):
            where = f"{rel}{name[len(path.name):]}"
            for label, needle in needles.items():
                if needle in data:
                    findings.append(f"{where} contains the value of {label}")
            if ours:
                inner = name.split("!", 1)[-1]
                if SECRET_FILENAMES.search(inner):
                    findings.append(f"{where} is a credentials file")
                for kind, pattern in SECRET_PATTERNS.items():
                    if pattern.search(data):
                        findings.append(f"{where} contains what looks like a {kind}")
    return findings


def _refuse_secrets(stage: Path, values: dict[str, str], *, first_party: tuple[str, ...]) -> None:
    findings = scan_for_secrets(stage, values, first_party=first_party)
    if findings:
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise ReleaseError(f"refusing to build: {findings[0]}{more}")


def _local_secret_values(root: Path, var_dir: Path) -> dict[str, str]:
    values = all_secret_values(var_dir)
    for candidate in {Path(var_dir) / "dev-secret-key", root / "var" / "dev-secret-key"}:
        if candidate.is_file():
            values[f"{candidate}"] = candidate.read_text(encoding="utf-8").strip()
    return values


def build(root: Path, var_dir: Path, *, allow_dirty: bool = False,
          progress: Progress | None = None) -> Release:
    """`wtx build`: build (or find, when the contents are unchanged) the release of `root`."""
    say = progress or (lambda _msg: None)
    root, var_dir = Path(root).resolve(), Path(var_dir).resolve()
    started = time.monotonic()

    commit, commit_time, changes = _git_state(root)
    dirty = bool(changes)
    if dirty and not allow_dirty:
        shown = ", ".join(changes[:5]) + (" …" if len(changes) > 5 else "")
        raise ReleaseError(
            f"the work tree has {len(changes)} uncommitted change(s) ({shown}); commit them, "
            "or pass --allow-dirty to build what is on disk"
        )

    base = releases_dir(var_dir)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        stage = work / "release"
        (stage / "wheelhouse").mkdir(parents=True)
        build_env = {**os.environ, "SOURCE_DATE_EPOCH": str(commit_time), "PYTHONHASHSEED": "0"}

        say(f"exporting {'the work tree' if dirty else 'commit ' + commit[:12]}")
        source = work / "source"
        _export_source(root, source, dirty=dirty)

        say("building the app wheel")
        # No build isolation: the build backend is the one installed from the hashed lock,
        # not whatever an isolated build environment would fetch unchecked.
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", str(stage / "wheelhouse"), str(source)],
             what="building the app wheel", env=build_env)
        wheels = list((stage / "wheelhouse").glob("*.whl"))
        if len(wheels) != 1:
            raise ReleaseError(f"expected one app wheel, found {[w.name for w in wheels]}")
        app_wheel = wheels[0]
        app_name, app_version = _wheel_name_version(app_wheel.name)
        secret_values = _local_secret_values(root, var_dir)
        # First look at what this project wrote (seconds), before fetching anything.
        _refuse_secrets(stage, secret_values, first_party=(f"wheelhouse/{app_wheel.name}",))

        say("collecting dependency wheels (requirements.lock)")
        _dependency_wheels(app_wheel, source / "requirements.lock", stage / "wheelhouse", build_env)
        (stage / "requirements.lock").write_text(
            _runtime_lock(stage / "wheelhouse", source / "requirements.lock"), encoding="utf-8")

        say("collecting static files")
        _collect_static(stage, app_wheel)

        say("scanning for secrets")
        _refuse_secrets(stage, secret_values,
                        first_party=(f"wheelhouse/{app_wheel.name}", "static/", "requirements.lock"))

        say("hashing")
        files = file_hashes(stage)
        release_id = content_id(files)
        manifest = {
            "format": MANIFEST_FORMAT,
            "id": release_id,
            "commit": commit,
            "commit_time": datetime.fromtimestamp(commit_time, UTC).isoformat().replace("+00:00", "Z"),
            "dirty": dirty,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "built_by": ledger._actor(),
            "python": f"{sys.version_info.major}.{sys.version_info.minor}",
            "app": {"name": app_name, "version": app_version, "wheel": f"wheelhouse/{app_wheel.name}"},
            "size_bytes": sum((stage / rel).stat().st_size for rel in files),
            "files": files,
        }
        target = base / release_id
        reused = (target / MANIFEST).is_file()
        if not reused:
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if target.exists() and not (target / MANIFEST).exists():
                shutil.rmtree(target)  # not a release: a directory without a manifest
            try:
                os.rename(stage, target)
                _make_read_only(target)
            except OSError:
                if not (target / MANIFEST).is_file():
                    raise
                reused = True  # a concurrent build of the same contents got there first
    finally:
        shutil.rmtree(work, ignore_errors=True)

    release = _load(target)
    if reused:
        problems = verify(release)
        if problems:
            raise ReleaseError(
                f"release {release.id} already exists but no longer matches its manifest "
                f"({problems[0]}); move {release.path} away and build again")
    ledger.append(var_dir, ledger.BUILD, release=release.id, commit=commit, dirty=dirty,
                  reused=reused, size_bytes=release.manifest["size_bytes"],
                  seconds=round(time.monotonic() - started, 1))
    return release


def _make_read_only(base: Path) -> None:
    for path in _walk_files(base):
        path.chmod(0o444)
    for dirpath, _dirs, _files in os.walk(base):
        os.chmod(dirpath, 0o555)  # noqa: S103 - read-only, and a release holds no secret
