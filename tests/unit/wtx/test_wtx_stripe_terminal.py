"""The spec names the Stripe Terminal location whose card readers the window offers; the app
is started with it (STRIPE_TERMINAL_LOCATION) and a malformed one is refused up front."""

from __future__ import annotations

from test_wtx_envfile import started_with
from test_wtx_spec import refused
from wtx_testing import use_the_real_processor

from wtx.render.envfile import app_environment
from wtx.spec import load_spec


def test_a_malformed_terminal_location_is_refused(raw_spec, write_spec):
    use_the_real_processor(raw_spec)
    raw_spec["environments"]["prd"]["app"]["stripe_terminal_location"] = "location one"
    assert "stripe_terminal_location" in refused(write_spec, raw_spec)


def test_the_app_is_started_with_the_terminal_location(raw_spec, write_spec, var_dir):
    raw_spec["environments"]["prd"]["app"]["stripe_terminal_location"] = "tml_FDOtHwxAAdIJOh"
    spec = load_spec(write_spec(raw_spec))
    values, secrets = started_with(spec, "prd", var_dir)
    assert "STRIPE_TERMINAL_LOCATION" not in values  # only where payments go through Stripe
    env = spec.env("prd")
    on_stripe = env.model_copy(update={"app": env.app.model_copy(update={"payments": "stripe"})})
    secrets = secrets | {"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    values = app_environment(on_stripe, spec, secrets, var_dir=var_dir, database_url=values["DATABASE_URL"])
    assert values["STRIPE_TERMINAL_LOCATION"] == "tml_FDOtHwxAAdIJOh"
