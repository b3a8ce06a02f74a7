"""The environment a release starts with: the whole contract with the app's settings."""

from __future__ import annotations

import re
import stat

from wtx_testing import ROOT

from wtx.render.envfile import (
    app_environment,
    default_database_url,
    parse_envfile,
    secret_names_in,
    write_envfile,
)
from wtx.secrets import ensure_secrets


def started_with(spec, name, var_dir, release_dir=None, slot=None):
    env = spec.env(name)
    secrets = ensure_secrets(env, spec, var_dir)
    url = default_database_url(env, spec, secrets, var_dir)
    return app_environment(env, spec, secrets, var_dir=var_dir, database_url=url, release_dir=release_dir, slot=slot), secrets


def test_every_variable_is_one_the_app_reads(spec, var_dir):
    """A renamed setting breaks this test, not a deploy."""
    settings = (ROOT / "src/wondertix/settings.py").read_text()
    metrics = (ROOT / "src/wondertix/ops/metrics.py").read_text()
    read_by_app = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings)) | {"PROMETHEUS_MULTIPROC_DIR"}
    assert "PROMETHEUS_MULTIPROC_DIR" in metrics
    import tempfile
    from pathlib import Path

    from wtx.spec import load_spec

    spec = load_spec()
    with tempfile.TemporaryDirectory() as tmp:
        for name in spec.names():
            values, _ = started_with(spec, name, Path(tmp))
            unknown = set(values) - read_by_app - {"DJANGO_SETTINGS_MODULE", "PYTHONUNBUFFERED"}
            assert not unknown, f"{name}: the app reads no {sorted(unknown)}"


def test_prd_starts_locked_down(spec, var_dir, tmp_path):
    values, secrets = started_with(spec, "prd", var_dir, release_dir=tmp_path / "releases" / "abc123abc123",
                                   slot="green")
    assert values["WONDERTIX_ENV"] == "prd"
    assert values["DEBUG"] == "false"
    assert values["SECRET_KEY"] == secrets["SECRET_KEY"] != values["STAFF_API_TOKEN_KEY"]
    assert values["ALLOWED_HOSTS"].split(",") == ["wondertix.localhost", "www.wondertix.localhost", "127.0.0.1", "localhost"]
    assert values["CSRF_TRUSTED_ORIGINS"].split(",") == ["https://wondertix.localhost:8443", "https://www.wondertix.localhost:8443"]
    assert values["SESSION_COOKIE_SECURE"] == values["CSRF_COOKIE_SECURE"] == "true"
    assert int(values["SECURE_HSTS_SECONDS"]) > 0
    assert values["LOG_FORMAT"] == "json"
    assert "LOG_FILE" not in values, "the app logs to stderr; supervisord writes and rotates the file"
    assert values["STATIC_ROOT"] == str(tmp_path / "releases" / "abc123abc123" / "static")
    assert values["PROMETHEUS_MULTIPROC_DIR"] == str(var_dir / "envs" / "prd" / "metrics" / "green")
    assert values["DATABASE_URL"] == f"postgres://wondertix_prd:{secrets['DB_PASSWORD']}@127.0.0.1:5534/wondertix_prd"
    assert values["SITE_URL"] == "https://wondertix.localhost:8443"
    assert "BASIC_AUTH_PASSWORD" not in values and "DB_PASSWORD" not in values
    # Requests wait through a database failover this long (the spec's figure, not a second one).
    assert values["DATABASE_RIDE_THROUGH_S"] == str(spec.env("prd").database.ride_through_s) != "0"


def test_stg_allows_only_its_networks_and_no_secure_cookies_without_tls(spec, var_dir):
    values, _ = started_with(spec, "stg", var_dir)
    assert values["ALLOWED_SOURCE_NETWORKS"] == "127.0.0.1/32"
    assert values["TRUSTED_PROXY_NETWORKS"] == "127.0.0.1/32,::1/128"
    assert values["SESSION_COOKIE_SECURE"] == "false" and values["SECURE_HSTS_SECONDS"] == "0"
    assert values["EMAIL_BACKEND"].endswith("filebased.EmailBackend")
    assert values["EMAIL_FILE_PATH"] == str(var_dir / "envs" / "stg" / "mail")


def test_dev_shows_debug_pages_on_its_own_sqlite_file(spec, var_dir):
    values, _ = started_with(spec, "dev", var_dir)
    assert values["DEBUG"] == "true" and values["LOG_LEVEL"] == "DEBUG" and values["LOG_FORMAT"] == "console"
    assert values["DATABASE_URL"] == f"sqlite:///{var_dir}/envs/dev/db/wondertix_dev.sqlite3"
    assert values["WONDERTIX_VAR_DIR"] == str(var_dir / "envs" / "dev")


def test_bak_answers_for_prds_hostnames_with_prds_secrets_but_logs_as_itself(spec, var_dir):
    bak, bak_secrets = started_with(spec, "bak", var_dir)
    prd, prd_secrets = started_with(spec, "prd", var_dir)
    assert bak_secrets == prd_secrets
    for same in ("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SITE_URL", "SECRET_KEY", "STAFF_API_TOKEN_KEY", "DATABASE_URL"):
        assert bak[same] == prd[same], same
    assert bak["WONDERTIX_ENV"] == "bak"


def test_the_env_file_is_private_and_round_trips(spec, var_dir, tmp_path):
    values, secrets = started_with(spec, "stg", var_dir)
    path = write_envfile(tmp_path / "run" / "stg.env", values)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_envfile(path.read_text()) == values
    assert secret_names_in(values, secrets) == {"SECRET_KEY", "STAFF_API_TOKEN_KEY", "DATABASE_URL"}


def test_metrics_directories_are_one_per_environment_and_slot_and_one_off_commands_get_none(spec, var_dir):
    dirs = {
        (env, slot): started_with(spec, env, var_dir, slot=slot)[0]["PROMETHEUS_MULTIPROC_DIR"]
        for env in ("prd", "bak") for slot in ("blue", "green")
    }
    assert len(set(dirs.values())) == 4, dirs
    # The same slot keeps its directory whatever release it holds (emptied at each start).
    again = started_with(spec, "prd", var_dir, release_dir=var_dir / "releases" / "0123456789ab", slot="blue")[0]
    assert again["PROMETHEUS_MULTIPROC_DIR"] == dirs[("prd", "blue")]
    # migrate/seed run outside any slot: their metrics never land among a serving slot's.
    one_off, _ = started_with(spec, "prd", var_dir)
    assert "PROMETHEUS_MULTIPROC_DIR" not in one_off
