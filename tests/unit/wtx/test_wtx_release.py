"""Releases: content-addressed, reproducible, and never carrying a secret."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import pytest
import wtx_testing
from wtx_testing import commit_change, git

from wtx import ledger
from wtx import release as releases
from wtx.release import ReleaseError, content_id, scan_for_secrets
from wtx.secrets import ensure_secrets, read_secrets_file, secrets_path


def test_a_release_holds_the_wheel_locked_dependencies_static_files_and_a_manifest(built):
    release, repo = built["release"], built["repo"]
    m = release.manifest
    assert m["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert m["dirty"] is False
    assert release.app_wheel.is_file() and release.app_wheel.name.startswith("wondertix-")
    with zipfile.ZipFile(release.app_wheel) as wheel:
        names = wheel.namelist()
    assert any(n.startswith("wondertix/sales/migrations/0001") for n in names), "the migrations ship in the wheel"
    assert "wtx/spec.py" in names
    lock = release.requirements.read_text()
    assert "django==5.2.19" in lock and "gunicorn==27.0.1" in lock
    assert "pytest" not in lock and "playwright" not in lock, "dev tools are not runtime dependencies"
    wheels = {p.name.split("-")[0].lower() for p in release.wheelhouse.glob("*.whl")}
    assert {"django", "gunicorn", "psycopg_binary", "whitenoise"} <= wheels
    assert (release.static_dir / "staticfiles.json").is_file(), "static collected with hashed names"
    assert set(m["files"]) == set(releases.file_hashes(release.path))
    assert release.id == m["id"] == content_id(m["files"]) == release.path.name
    assert releases.verify(release) == []


def test_building_the_same_commit_again_gives_the_same_id(built):
    """The second build hashes its own freshly built files, then finds the release exists."""
    again = releases.build(built["repo"], built["var"])
    assert again.id == built["release"].id
    assert again.manifest["files"] == built["release"].manifest["files"]
    builds = [r for r in ledger.read(built["var"]) if r["event"] == "build" and r["release"] == again.id]
    assert len(builds) >= 2 and builds[-1]["reused"] is True


def test_a_changed_file_gives_a_new_id_and_a_dirty_tree_is_refused(built, clone, tmp_path):
    var = tmp_path / "var"
    (clone / "src/wondertix/catalog/services.py").write_text(
        (clone / "src/wondertix/catalog/services.py").read_text() + "\n# an edit\n")
    with pytest.raises(ReleaseError, match=r"uncommitted change.*src/wondertix/catalog/services.py.*--allow-dirty"):
        releases.build(clone, var)
    assert not (var / "ledger.jsonl").exists() or ledger.read(var) == []

    dirty = releases.build(clone, var, allow_dirty=True)
    assert dirty.manifest["dirty"] is True and dirty.id != built["release"].id
    with zipfile.ZipFile(dirty.app_wheel) as wheel:
        assert b"# an edit" in wheel.read("wondertix/catalog/services.py"), "the id reflects what is on disk"

    git(clone, "checkout", "-q", "--", ".")
    commit = commit_change(clone, "src/wondertix/catalog/services.py", "\n# a committed edit\n")
    changed = releases.build(clone, var)
    assert changed.id not in (built["release"].id, dirty.id)
    assert changed.commit == commit
    builds = [r for r in ledger.read(var) if r["event"] == "build"]
    assert [b["release"] for b in builds] == [dirty.id, changed.id]
    assert releases.latest(var).id == changed.id


def test_a_release_never_contains_a_secret_value_from_this_machine(built, spec):
    """Scan every file of a built release (and inside its wheels) for every secret value."""
    var, release = built["var"], built["release"]
    for name in spec.names():
        ensure_secrets(spec.env(name), spec, var)
    values = {f"{p.parent.name}:{k}": v for p in (var / "envs").glob("*/secrets.env")
              for k, v in read_secrets_file(p).items()}
    assert len(values) >= 9
    assert scan_for_secrets(release.path, values, first_party=("wheelhouse/wondertix-", "static/")) == []


def test_a_planted_secret_makes_the_build_refuse(clone, spec, tmp_path):
    var = tmp_path / "var"
    leaked = ensure_secrets(spec.env("prd"), spec, var)["STAFF_API_TOKEN_KEY"]
    commit_change(clone, "src/wondertix/urls.py", f"\n# {leaked}\n")
    with pytest.raises(ReleaseError) as info:
        releases.build(clone, var)
    message = str(info.value)
    assert "refusing to build" in message and "wondertix/urls.py contains the value of prd:STAFF_API_TOKEN_KEY" in message
    assert leaked not in message
    assert releases.list_releases(var) == [] and ledger.read(var) == []
    assert secrets_path("prd", var).exists()


def test_a_credential_looking_string_makes_the_build_refuse(clone, tmp_path):
    commit_change(clone, "src/wondertix/urls.py", "\nSTRIPE = 'sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc" + "'\n")
    with pytest.raises(ReleaseError, match="urls.py contains what looks like a Stripe live key"):
        releases.build(clone, tmp_path / "var")


def test_scanning_opens_wheels_and_names_no_value(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/settings.py", "KEY = 'hunter2hunter2hunter2'\n" * 50)
        zf.writestr("pkg/deploy/secrets.env", "X=1\n")
    (tmp_path / "wheelhouse").mkdir()
    (tmp_path / "wheelhouse" / "pkg-1.0-py3-none-any.whl").write_bytes(buf.getvalue())
    (tmp_path / "wheelhouse" / "dep-1.0-py3-none-any.whl").write_bytes(buf.getvalue())
    findings = scan_for_secrets(tmp_path, {"stg:SECRET_KEY": "hunter2hunter2hunter2"},
                                first_party=("wheelhouse/pkg-",))
    assert "wheelhouse/pkg-1.0-py3-none-any.whl!pkg/settings.py contains the value of stg:SECRET_KEY" in findings
    assert "wheelhouse/pkg-1.0-py3-none-any.whl!pkg/deploy/secrets.env is a credentials file" in findings
    assert any(f.startswith("wheelhouse/dep-") and "stg:SECRET_KEY" in f for f in findings), "values are sought everywhere"
    assert not any(f.startswith("wheelhouse/dep-") and "credentials file" in f for f in findings), "patterns only in ours"
    assert not any("hunter2" in f for f in findings)


def test_releases_are_found_by_prefix_and_tampering_is_detected(built, tmp_path):
    var, release = built["var"], built["release"]
    assert releases.get(release.id[:6], var).id == release.id
    with pytest.raises(ReleaseError, match="no release 'ffff0000'"):
        releases.get("ffff0000", var)
    with pytest.raises(ReleaseError, match="not a release id"):
        releases.get("../x", var)
    copy = tmp_path / "copy"
    shutil.copytree(release.path, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (copy / "requirements.lock").write_text("django==1.0\n")
    tampered = releases.Release(id=release.id, path=copy, manifest=json.loads((copy / "manifest.json").read_text()))
    assert releases.verify(tampered) == ["requirements.lock: changed since the build"]


def test_every_build_is_in_the_ledger(built):
    builds = [r for r in ledger.read(built["var"]) if r["event"] == "build"]
    assert builds and builds[0]["release"] == built["release"].id
    assert builds[0]["commit"] == built["release"].commit and builds[0]["dirty"] is False


# --------------------------------------------------------------------------------------------
# Hash-checking installs: the repo lock and every release lock carry sha256 hashes


def test_the_repo_lock_pins_every_package_with_its_hashes():
    lock = releases._lock_entries(wtx_testing.ROOT / "requirements.lock")
    assert {"django", "gunicorn", "pytest", "setuptools"} <= set(lock)
    unhashed = sorted(name for name, (_version, hashes) in lock.items() if not hashes)
    assert unhashed == [], f"pinned without a hash: {unhashed}"
    assert all(len(h) == 64 for _v, hashes in lock.values() for h in hashes)
    text = (wtx_testing.ROOT / "requirements.lock").read_text()
    assert "--index-url" not in text and "--find-links" not in text and "://" not in text


def test_a_releases_lock_lists_the_sha256_of_each_wheel_it_ships(built):
    release = built["release"]
    lock = releases._lock_entries(release.requirements)
    wheels = [w for w in release.wheelhouse.glob("*.whl") if w != release.app_wheel]
    assert wheels and len(lock) == len(wheels)
    for wheel in wheels:
        name, version = releases._wheel_name_version(wheel.name)
        assert lock[name] == (version, frozenset({releases._sha256_file(wheel)})), wheel.name


def test_a_dependency_wheel_the_lock_does_not_list_is_refused(tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / "django-5.2.19-py3-none-any.whl").write_bytes(b"not the wheel that was locked")
    lock = tmp_path / "requirements.lock"
    lock.write_text("Django==5.2.19 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(ReleaseError, match="django-5.2.19-py3-none-any.whl has sha256 .* not list"):
        releases._runtime_lock(wheelhouse, lock)


def test_installing_a_release_whose_wheel_changed_after_the_build_is_refused(built, tmp_path):
    from wtx.backends.local.install import InstallError, install
    from wtx.backends.local.layout import Layout

    release = built["release"]
    copy = tmp_path / "release"
    shutil.copytree(release.path, copy)
    for path in [copy, copy / "wheelhouse"]:
        path.chmod(0o755)
    victim = next(w for w in (copy / "wheelhouse").glob("sqlparse-*.whl"))
    victim.chmod(0o644)
    with zipfile.ZipFile(victim, "a") as wheel:
        wheel.writestr("sqlparse/planted.py", "print('not what was locked')\n")
    tampered = releases.Release(id=release.id, path=copy, manifest=release.manifest)
    with pytest.raises(InstallError, match="installing the release's locked dependencies failed"):
        install(Layout(tmp_path / "var"), tampered)
