"""Every string the spec lets into haproxy.cfg, supervisord.conf or an env file is refused at
the spec when it could add or cut a line there (a newline, a space, a quote, a '#')."""

from __future__ import annotations

import pytest
from tests.support.specs import refused

from wtx.spec import load_spec

INJECTION = "\n    http-request return status 200 string owned"




def test_a_newline_in_the_basic_auth_user_is_refused_naming_env_and_field(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["access"]["basic_auth_user"] = "rehearsal" + INJECTION
    message = refused(write_spec, raw_spec)
    assert "environment 'stg': field 'access.basic_auth_user'" in message
    assert "letters, digits and '._-'" in message


@pytest.mark.parametrize("user", ["rehearsal insecure-password x", "ré", "a'b", "a#b", ""])
def test_a_basic_auth_user_is_letters_digits_and_dot_dash_underscore(raw_spec, write_spec, user):
    raw_spec["environments"]["stg"]["access"]["basic_auth_user"] = user
    message = refused(write_spec, raw_spec)
    assert "field 'access.basic_auth_user'" in message


def test_a_newline_in_the_health_check_path_is_refused(raw_spec, write_spec):
    raw_spec["defaults"]["health_check"]["path"] = "/healthz" + INJECTION
    message = refused(write_spec, raw_spec)
    assert "[defaults]: field 'health_check.path'" in message
    assert "absolute URL path" in message


@pytest.mark.parametrize("path", ["/healthz HTTP/1.0", '/health"z', "/healthz#x", "healthz", "/a'b", "/a\tb"])
def test_the_health_check_path_is_an_absolute_path_of_safe_characters(raw_spec, write_spec, path):
    raw_spec["defaults"]["health_check"]["path"] = path
    assert "field 'health_check.path'" in refused(write_spec, raw_spec)


def test_the_readiness_path_is_checked_like_the_health_path(raw_spec, write_spec):
    raw_spec["defaults"]["readiness_path"] = "/readyz\nx"
    assert "[defaults]: field 'readiness_path'" in refused(write_spec, raw_spec)


@pytest.mark.parametrize(("env", "field", "value", "named"), [
    ("dev", "hostnames", ["dev.wondertix.localhost\n"], "field 'hostnames'"),
    ("dev", "url", "http://dev.wondertix.localhost:8080\n", "field 'url'"),
    ("dev", "url", "http://dev.wondertix.localhost:8080\tx", "field 'url'"),
    ("dev", "description", "Development" + INJECTION, "field 'description'"),
    ("dev", "gates", ["unit\n"], "field 'gates'"),
    ("dev", "gates", ["unit tests"], "field 'gates'"),
])
def test_every_string_that_reaches_a_rendered_file_is_one_safe_token(raw_spec, write_spec, env, field, value, named):
    raw_spec["environments"][env][field] = value
    message = refused(write_spec, raw_spec)
    assert f"environment '{env}': {named}" in message


def test_a_certificate_path_with_a_space_or_newline_is_refused(raw_spec, write_spec):
    for bad in ("/etc/ssl/my cert.pem", "/etc/ssl/cert.pem\n    bind :80"):
        raw_spec["environments"]["prd"]["access"]["tls_certificate"] = bad
        assert "environment 'prd': field 'access.tls_certificate'" in refused(write_spec, raw_spec)


def test_a_newline_in_an_environment_name_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["dev\n"] = raw_spec["environments"].pop("dev")
    assert "the name must be lower-case letters" in refused(write_spec, raw_spec)


def test_the_real_spec_and_ordinary_values_still_pass(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["access"]["basic_auth_user"] = "box.office-2_x"
    raw_spec["defaults"]["health_check"]["path"] = "/ops/healthz"
    raw_spec["environments"]["prd"]["access"]["tls_certificate"] = "/etc/ssl/private/wondertix.pem"
    spec = load_spec(write_spec(raw_spec))
    assert spec.env("stg").access.basic_auth_user == "box.office-2_x"


@pytest.mark.parametrize("name", ["my var", "var;x", "var#1", "var%s", "var\nx", "it's"])
def test_a_var_dir_that_would_cut_a_rendered_line_is_refused(spec, tmp_path, name):
    from wtx.backends import DeployError
    from wtx.backends.local import LocalBackend

    with pytest.raises(DeployError, match="may hold only letters, digits"):
        LocalBackend(spec, tmp_path, tmp_path / name)
