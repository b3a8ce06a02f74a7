"""Secrets: generated once per environment, 0600, never rewritten, never printed."""

from __future__ import annotations

import stat
import threading

import pytest
from wtx_testing import use_the_real_processor

from wtx.secrets import (
    SecretsError,
    all_secret_values,
    ensure_env_dir,
    ensure_secrets,
    secrets_path,
)
from wtx.spec import parse_spec


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_generated_once_into_a_private_file(spec, var_dir):
    first = ensure_secrets(spec.env("stg"), spec, var_dir)
    path = secrets_path("stg", var_dir)
    assert set(first) == {"SECRET_KEY", "STAFF_API_TOKEN_KEY", "DB_PASSWORD", "BASIC_AUTH_PASSWORD"}
    assert all(len(v) >= 40 for v in first.values())
    assert len(set(first.values())) == 4, "each secret is its own random value"
    assert mode(path) == 0o600 and mode(path.parent) == 0o711
    before = path.read_bytes()
    assert ensure_secrets(spec.env("stg"), spec, var_dir) == first
    assert path.read_bytes() == before, "an existing secrets file is never rewritten"


def test_the_environment_directory_is_0711_whoever_calls_and_however_it_was_left(spec, var_dir):
    """The one rule: var/envs/<env>/ is traversable (the postgres user reaches its cluster's
    data directory inside it) but not listable, and secrets.env is 0600. A later call — any
    command that needs the secrets — never tightens the directory (that broke PostgreSQL's
    next restart), and a directory left 0700 or 0755 is put back to 0711."""
    env_dir = secrets_path("prd", var_dir).parent
    ensure_secrets(spec.env("prd"), spec, var_dir)
    pgdata = env_dir / "pgdata"
    pgdata.mkdir(mode=0o700)
    for left in (0o711, 0o700, 0o755):
        env_dir.chmod(left)
        ensure_secrets(spec.env("prd"), spec, var_dir)
        ensure_secrets(spec.env("bak"), spec, var_dir)  # a backup reads its primary's file
        assert mode(env_dir) == 0o711, oct(left)
        assert mode(secrets_path("prd", var_dir)) == 0o600
        assert mode(pgdata) == 0o700, "what is inside the directory is left alone"
    assert ensure_env_dir("bak", var_dir) == var_dir / "envs" / "bak"
    assert mode(var_dir / "envs" / "bak") == 0o711


def test_each_environment_owns_different_values(spec, var_dir):
    values = {name: ensure_secrets(spec.env(name), spec, var_dir) for name in ("dev", "stg", "prd")}
    assert len({v["SECRET_KEY"] for v in values.values()}) == 3
    assert len({v["STAFF_API_TOKEN_KEY"] for v in values.values()}) == 3
    assert values["stg"]["DB_PASSWORD"] != values["prd"]["DB_PASSWORD"]


def test_bak_runs_with_prds_secrets_and_has_no_file_of_its_own(spec, var_dir):
    bak = ensure_secrets(spec.env("bak"), spec, var_dir)
    prd = ensure_secrets(spec.env("prd"), spec, var_dir)
    assert bak == prd
    assert not secrets_path("bak", var_dir).exists()


def test_a_secret_added_to_the_spec_is_appended_and_earlier_values_kept(raw_spec, spec, tmp_path, var_dir):
    dev_before = ensure_secrets(spec.env("dev"), spec, var_dir)
    before = secrets_path("dev", var_dir).read_bytes()
    raw_spec["environments"]["dev"]["secrets"].append("DB_PASSWORD")
    grown = parse_spec(raw_spec, tmp_path / "environments.toml")
    after = ensure_secrets(grown.env("dev"), grown, var_dir)
    assert {k: after[k] for k in dev_before} == dev_before
    assert "DB_PASSWORD" in after
    assert secrets_path("dev", var_dir).read_bytes().startswith(before)


def test_secrets_only_an_operator_can_provide_are_asked_for_not_invented(raw_spec, tmp_path, var_dir):
    prd = use_the_real_processor(raw_spec)["environments"]["prd"]
    prd["secrets"] += ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
    spec = parse_spec(raw_spec, tmp_path / "environments.toml")
    with pytest.raises(SecretsError, match="STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE_WEBHOOK_SECRET must be added by an operator"):
        ensure_secrets(spec.env("prd"), spec, var_dir)
    path = secrets_path("prd", var_dir)
    with open(path, "a") as fh:
        fh.write("STRIPE_SECRET_KEY=sk_test_given\nSTRIPE_PUBLISHABLE_KEY=pk_test_given\nSTRIPE_WEBHOOK_SECRET=whsec_given\n")
    assert ensure_secrets(spec.env("prd"), spec, var_dir)["STRIPE_SECRET_KEY"] == "sk_test_given"


def test_concurrent_callers_agree_on_one_value(spec, var_dir):
    results = []

    def work(name):
        results.append(ensure_secrets(spec.env(name), spec, var_dir)["SECRET_KEY"])

    threads = [threading.Thread(target=work, args=(n,)) for n in ("prd", "bak") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 8 and len(set(results)) == 1


def test_all_secret_values_finds_every_environment(spec, var_dir):
    for name in ("dev", "prd"):
        ensure_secrets(spec.env(name), spec, var_dir)
    found = all_secret_values(var_dir)
    assert {"dev:SECRET_KEY", "prd:SECRET_KEY", "prd:DB_PASSWORD"} <= set(found)
