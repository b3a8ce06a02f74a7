"""The environment spec: the real file validates; every mistake is named by file, env and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.specs import refused
from wtx_testing import SPEC_FILE, use_the_real_processor

from wtx.spec import APP_PORT_SLOTS, SpecError, load_spec, project_root


def test_the_real_spec_declares_four_isolated_environments(spec):
    assert spec.names() == ["dev", "stg", "prd", "bak"]
    assert spec.path == SPEC_FILE
    dev, stg, prd, bak = (spec.env(n) for n in spec.names())
    assert dev.debug and not (stg.debug or prd.debug or bak.debug)
    assert stg.access.basic_auth and "BASIC_AUTH_PASSWORD" in stg.secrets
    assert prd.access.tls and prd.url.startswith("https://")
    assert prd.failover.mode == "backup" and spec.backup_for(prd) is bak
    assert bak.backup_of == "prd" and bak.secrets_owner == "prd" and spec.primary_for(bak) is prd
    assert prd.database.data_policy == "real" and dev.database.data_policy == "demo"
    # every environment has its own app ports and (except bak, prd's standby) its own database
    ports = [set(spec.env(n).app_ports) for n in spec.names()]
    assert all(a.isdisjoint(b) for i, a in enumerate(ports) for b in ports[i + 1:])
    assert len({(e.database.port, e.database.name) for e in (dev, stg, prd)}) == 3
    assert spec.defaults.release_keep >= 2


def test_default_location_is_the_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("WTX_ROOT", raising=False)
    monkeypatch.chdir(SPEC_FILE.parent)
    assert project_root() == SPEC_FILE.parent.parent
    assert load_spec().path == SPEC_FILE
    monkeypatch.setenv("WTX_ROOT", str(tmp_path))
    with pytest.raises(SpecError, match="file not found"):
        load_spec()


def test_unknown_environment_lists_the_known_ones(spec):
    with pytest.raises(SpecError, match=r"no environment 'prod' \(did you mean 'prd'\?\) \(known: dev, stg, prd, bak\)"):
        spec.env("prod")


def test_a_typo_in_a_field_is_an_error_naming_env_and_field(raw_spec, write_spec):
    access = raw_spec["environments"]["stg"]["access"]
    access["basic_auht"] = access.pop("basic_auth")
    message = refused(write_spec, raw_spec)
    assert "environment 'stg'" in message
    assert "field 'access.basic_auht': unknown field (did you mean 'basic_auth'?)" in message


def test_a_typo_in_defaults_is_an_error(raw_spec, write_spec):
    raw_spec["defaults"]["relase_keep"] = 3
    message = refused(write_spec, raw_spec)
    assert "[defaults]: field 'relase_keep': unknown field (did you mean 'release_keep'?)" in message


def test_a_missing_required_field_is_named(raw_spec, write_spec):
    del raw_spec["environments"]["dev"]["database"]["engine"]
    assert "environment 'dev': field 'database.engine': required field is missing" in refused(write_spec, raw_spec)


def test_a_wrong_choice_is_named(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["app"]["payments"] = "paypal"
    message = refused(write_spec, raw_spec)
    assert "environment 'prd': field 'app.payments'" in message and "'test' or 'stripe'" in message


def test_unknown_promote_from_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["promote_from"] = "staging"
    message = refused(write_spec, raw_spec)
    assert "environment 'prd': field 'promote_from': names unknown environment 'staging'" in message


def test_promotion_cannot_go_round_in_a_circle(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["promote_from"] = "prd"
    assert "promotion goes round in a circle" in refused(write_spec, raw_spec)


def test_overlapping_app_ports_are_refused(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["app"]["base_port"] = 9100 + APP_PORT_SLOTS - 1  # overlaps dev
    message = refused(write_spec, raw_spec)
    assert "environment 'stg': field 'app.base_port': port 9109 is already used by environment 'dev' app ports" in message


def test_a_database_port_used_twice_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["database"]["port"] = 5534  # prd's cluster
    message = refused(write_spec, raw_spec)
    assert "environment 'prd': field 'database.port': port 5534 is already used by environment 'stg'" in message


def test_an_app_port_may_not_take_haproxys(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["app"]["base_port"] = 8075  # 8075..8084 includes 8080
    assert "is already used by [defaults] haproxy_http_port" in refused(write_spec, raw_spec)


def test_two_environments_may_not_share_a_database(raw_spec, write_spec):
    stg = raw_spec["environments"]["stg"]
    stg["database"].update(name="wondertix_prd", port=5534, role="wondertix_prd")
    message = refused(write_spec, raw_spec)
    assert "field 'database': shares 'stg''s database" in message or "already used" in message


def test_basic_auth_needs_its_password_secret(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["secrets"].remove("BASIC_AUTH_PASSWORD")
    message = refused(write_spec, raw_spec)
    assert "environment 'stg': field 'secrets': basic_auth = true needs BASIC_AUTH_PASSWORD" in message


def test_basic_auth_needs_a_user(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["access"]["basic_auth_user"] = ""
    assert "field 'access.basic_auth_user': required when basic_auth = true" in refused(write_spec, raw_spec)


def test_postgresql_needs_a_db_password(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["secrets"].remove("DB_PASSWORD")
    assert "environment 'prd': field 'secrets': engine = \"postgresql\" needs DB_PASSWORD" in refused(write_spec, raw_spec)


def test_every_environment_signs_with_its_own_keys(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["secrets"].remove("STAFF_API_TOKEN_KEY")
    assert "environment 'dev': field 'secrets': must include STAFF_API_TOKEN_KEY" in refused(write_spec, raw_spec)


def test_an_unknown_secret_name_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["secrets"].append("SECRET_KYE")
    message = refused(write_spec, raw_spec)
    assert "environment 'dev': field 'secrets': unknown secret 'SECRET_KYE' (did you mean 'SECRET_KEY'?)" in message


def test_stripe_payments_need_the_stripe_secrets(raw_spec, write_spec):
    use_the_real_processor(raw_spec)
    assert "payments = \"stripe\" needs STRIPE_SECRET_KEY" in refused(write_spec, raw_spec)


def test_real_data_never_shows_debug_pages(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["debug"] = True
    assert "environment 'prd': field 'debug'" in refused(write_spec, raw_spec)


def test_a_backup_failover_must_be_pointed_back_at(raw_spec, write_spec):
    del raw_spec["environments"]["bak"]["backup_of"]
    raw_spec["environments"]["bak"]["promote_from"] = "prd"
    message = refused(write_spec, raw_spec)
    assert "field 'failover.backup': 'bak' must declare backup_of = \"prd\"" in message


def test_a_backup_must_name_an_existing_environment(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["failover"]["backup"] = "bck"
    message = refused(write_spec, raw_spec)
    assert "environment 'prd': field 'failover.backup': names unknown environment 'bck' (did you mean 'bak'?)" in message


def test_a_backup_uses_its_primarys_secrets(raw_spec, write_spec):
    raw_spec["environments"]["bak"]["secrets"] = ["SECRET_KEY", "STAFF_API_TOKEN_KEY"]
    assert "environment 'bak': field 'secrets': a backup uses its primary's secrets" in refused(write_spec, raw_spec)


def test_the_url_scheme_follows_tls(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["url"] = "http://wondertix.localhost:8080"
    assert "environment 'prd': field 'url': must use https://" in refused(write_spec, raw_spec)


def test_the_url_host_must_be_one_of_the_hostnames(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["url"] = "http://devel.wondertix.localhost:8080"
    assert "environment 'dev': field 'url': host 'devel.wondertix.localhost' is not one of hostnames" in refused(write_spec, raw_spec)


def test_a_hostname_is_served_by_one_environment(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["hostnames"].append("dev.wondertix.localhost")
    assert "'dev.wondertix.localhost' is already served by 'dev'" in refused(write_spec, raw_spec)


def test_allowed_networks_must_be_networks(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["access"]["allowed_networks"] = ["127.0.0.1/33"]
    assert "environment 'stg': field 'access.allowed_networks'" in refused(write_spec, raw_spec)


def test_release_keep_leaves_a_rollback_target(raw_spec, write_spec):
    raw_spec["defaults"]["release_keep"] = 1
    assert "[defaults]: field 'release_keep'" in refused(write_spec, raw_spec)


def test_broken_toml_names_the_file(tmp_path: Path):
    path = tmp_path / "environments.toml"
    path.write_text("[environments.dev\n")
    with pytest.raises(SpecError, match=rf"^{path}: not valid TOML"):
        load_spec(path)


def test_gates_are_named_checks_with_thresholds_and_mistakes_name_the_gate(raw_spec, write_spec, spec):
    unit = spec.env("dev").gate("unit")
    assert unit.workers == 2 and unit.max_failures == 0 and spec.env("prd").approval
    assert [g.check for g in spec.env("stg").gates][:2] == ["security", "smoke"]
    dev = raw_spec["environments"]["dev"]
    dev["gates"] = ["unit"]
    assert "gate 1 is a bare name ('unit'): declare it as a check with its thresholds" in refused(write_spec, raw_spec)
    dev["gates"] = [{"check": "unti"}]
    assert "field 'gates': gate 1: unknown check 'unti' (did you mean 'unit'?)" in refused(write_spec, raw_spec)
    dev["gates"] = [{"check": "unit", "max_failure": 1}]
    assert "field 'gates[1] (check 'unit').max_failure': unknown parameter (did you mean 'max_failures'?)" in refused(write_spec, raw_spec)
    dev["gates"] = [{"check": "unit"}, {"check": "unit"}]
    assert "check 'unit' is listed twice" in refused(write_spec, raw_spec)


def test_an_environment_others_are_promoted_from_must_check_something(raw_spec, write_spec):
    raw_spec["environments"]["dev"]["gates"] = []
    assert "environment 'dev': field 'gates': 'stg' is promoted from here: declare at least one gate" in refused(write_spec, raw_spec)


def test_approval_guards_a_promotion_and_is_never_set_on_a_backup(raw_spec, write_spec):
    raw_spec["environments"]["bak"]["approval"] = True
    assert "environment 'bak': field 'approval': a backup follows the deploys of 'prd'" in refused(write_spec, raw_spec)
    raw_spec["environments"]["bak"]["approval"] = False
    raw_spec["environments"]["dev"]["approval"] = True
    assert "environment 'dev': field 'approval': approval guards a promotion into this environment" in refused(write_spec, raw_spec)


def test_demo_data_is_loaded_by_a_gate_only_where_the_data_is_demo(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["gates"].append({"check": "integration-minimal"})
    assert "check 'integration-minimal': seed_demo = true needs data_policy = \"demo\"" in refused(write_spec, raw_spec)


def test_ride_through_is_validated_and_leaves_room_under_the_app_timeouts(raw_spec, write_spec, spec):
    from wtx.backends.local.gunicorn import GunicornConfig
    from wtx.spec import RIDE_THROUGH_MAX_S

    # prd and its backup wait through the leader machine's failover (~21 s); stg a restart.
    assert spec.env("prd").database.ride_through_s == spec.env("bak").database.ride_through_s > 21
    assert 0 < spec.env("stg").database.ride_through_s < spec.env("prd").database.ride_through_s
    assert spec.env("dev").database.ride_through_s == 0
    # Every budget leaves a request seconds of work before HAProxy gives up on its server
    # (`timeout server`) and under gunicorn's worker timeout (both follow the spec).
    for name in ("prd", "bak", "stg"):
        env = spec.env(name)
        assert spec.server_timeout_s(env) - env.database.ride_through_s >= 5
    assert GunicornConfig.__dataclass_fields__["timeout"].default <= spec.server_timeout_s(spec.env("dev"))
    raw_spec["environments"]["prd"]["database"]["ride_through_s"] = RIDE_THROUGH_MAX_S + 1
    assert "ride_through_s" in refused(write_spec, raw_spec)
    raw_spec["environments"]["prd"]["database"]["ride_through_s"] = -1
    assert "ride_through_s" in refused(write_spec, raw_spec)
    raw_spec["environments"]["prd"]["database"]["ride_through_s"] = 25
    raw_spec["environments"]["dev"]["database"]["ride_through_s"] = 5
    assert "environment 'dev': field 'database.ride_through_s': not used with engine = \"sqlite\"" in refused(write_spec, raw_spec)
