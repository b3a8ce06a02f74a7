"""stg's email can never reach a real address: the spec refuses smtp on a copy of prd's data
unless a catch-all relay is declared, and the release is then started pointed at that relay."""

from __future__ import annotations

import pytest

from wtx.render.envfile import app_environment
from wtx.spec import SpecError, parse_spec


def test_the_checked_in_stg_captures_its_mail_in_a_file(spec):
    assert spec.env("stg").database.data_policy == "scrubbed-copy-of-prd"
    assert spec.env("stg").app.email == "file"


def test_smtp_on_a_copy_of_prd_is_refused_without_a_catch_all_relay(raw_spec, tmp_path):
    raw_spec["environments"]["stg"]["app"]["email"] = "smtp"
    with pytest.raises(SpecError) as exc:
        parse_spec(raw_spec, tmp_path / "environments.toml")
    assert "environment 'stg': field 'app.email': an environment holding a copy of prd's data" in str(exc.value)
    assert "email_catch_all_relay" in str(exc.value)


def test_smtp_through_a_catch_all_relay_is_allowed_and_the_release_uses_that_relay(raw_spec, tmp_path, var_dir):
    raw_spec["environments"]["stg"]["app"].update(email="smtp", email_catch_all_relay="127.0.0.1:1025")
    spec = parse_spec(raw_spec, tmp_path / "environments.toml")
    values = app_environment(spec.env("stg"), spec, {"SECRET_KEY": "s", "STAFF_API_TOKEN_KEY": "t", "DB_PASSWORD": "p"},
                             var_dir=var_dir, database_url="postgres://x")
    assert values["EMAIL_BACKEND"].endswith("smtp.EmailBackend")
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"]) == ("127.0.0.1", "1025")


@pytest.mark.parametrize(("change", "message"), [
    ({"email": "file", "email_catch_all_relay": "127.0.0.1:1025"}, "set only with email = \"smtp\""),
    ({"email": "smtp", "email_catch_all_relay": "mailpit"}, "'mailpit' is not host:port"),
])
def test_a_relay_must_be_host_port_and_only_with_smtp(raw_spec, tmp_path, change, message):
    raw_spec["environments"]["stg"]["app"].update(change)
    with pytest.raises(SpecError, match=message):
        parse_spec(raw_spec, tmp_path / "environments.toml")
