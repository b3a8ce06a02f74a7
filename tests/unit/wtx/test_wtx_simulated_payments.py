"""Real data never meets the simulated card processor: the spec refuses it, unless a local demo
says so in the exact words, and the app is told both facts through its environment."""

from __future__ import annotations

import pytest
from test_wtx_envfile import started_with
from test_wtx_spec import refused

from wtx.spec import SIMULATED_PAYMENTS_DEMO_PHRASE, load_spec


def test_the_checked_in_prd_is_a_declared_local_demo(spec):
    for name in ("prd", "bak"):
        app = spec.env(name).app
        assert app.payments == "test"
        assert app.simulated_payments_on_real_data == SIMULATED_PAYMENTS_DEMO_PHRASE


@pytest.mark.parametrize("env", ["prd", "bak"])
def test_simulated_payments_on_real_data_without_the_demo_words_are_refused(raw_spec, write_spec, env):
    for name in ("prd", "bak"):
        raw_spec["environments"][name]["app"].pop("simulated_payments_on_real_data")
    message = refused(write_spec, raw_spec)
    assert "environment 'prd'" in message and "field 'app.payments'" in message
    assert "never takes simulated card payments" in message


def test_the_demo_words_must_be_exact(raw_spec, write_spec):
    for name in ("prd", "bak"):
        raw_spec["environments"][name]["app"]["simulated_payments_on_real_data"] = "yes"
    message = refused(write_spec, raw_spec)
    assert "field 'app.payments'" in message and SIMULATED_PAYMENTS_DEMO_PHRASE in message


def test_stg_made_real_with_simulated_payments_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["database"]["data_policy"] = "real"
    message = refused(write_spec, raw_spec)
    assert "environment 'stg'" in message and "field 'app.payments'" in message


def test_the_demo_words_where_data_is_not_real_are_refused(raw_spec, write_spec):
    raw_spec["environments"]["stg"]["app"]["simulated_payments_on_real_data"] = SIMULATED_PAYMENTS_DEMO_PHRASE
    message = refused(write_spec, raw_spec)
    assert "environment 'stg'" in message and "field 'app.simulated_payments_on_real_data'" in message


def test_bak_takes_the_same_payments_as_prd(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["app"]["payments"] = "stripe"
    raw_spec["environments"]["prd"]["app"].pop("simulated_payments_on_real_data")
    raw_spec["environments"]["prd"]["secrets"] += ["STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"]
    message = refused(write_spec, raw_spec)
    assert "environment 'bak'" in message and "must equal 'prd'" in message
    raw_spec["environments"]["bak"]["app"]["payments"] = "stripe"
    raw_spec["environments"]["bak"]["app"].pop("simulated_payments_on_real_data")
    fixed = load_spec(write_spec(raw_spec))
    assert fixed.env("prd").app.payments == fixed.env("bak").app.payments == "stripe"


def test_the_app_is_told_whether_its_data_is_real_and_whether_it_is_a_demo(spec, var_dir):
    told = {name: started_with(spec, name, var_dir)[0] for name in spec.names()}
    assert [told[n]["DATA_IS_REAL"] for n in ("dev", "stg", "prd", "bak")] == ["false", "false", "true", "true"]
    assert [told[n]["SIMULATED_PAYMENTS_ON_REAL_DATA"] for n in ("dev", "stg", "prd", "bak")] == ["false", "false", "true", "true"]
