"""[hosts]: the machines environments run on, named once and checked like every other field."""

from __future__ import annotations

import pytest
from tests.support.specs import refused

from wtx.spec import load_spec


def test_every_environment_and_the_front_door_run_on_a_declared_host(spec):
    for name in spec.names():
        assert spec.host_name(spec.env(name)) in spec.hosts
    assert spec.front_door_host_name in spec.hosts
    assert spec.front_door_host.address.startswith("127.")


def test_an_environment_on_an_unknown_host_is_refused(raw_spec, write_spec):
    raw_spec["environments"]["prd"]["host"] = "prd-machien"
    message = refused(write_spec, raw_spec)
    assert "environment 'prd'" in message and "field 'host'" in message and "unknown host 'prd-machien'" in message


def test_the_front_door_on_an_unknown_host_is_refused(raw_spec, write_spec):
    raw_spec["defaults"]["front_door_host"] = "nowhere"
    assert "field 'front_door_host'" in refused(write_spec, raw_spec)


@pytest.mark.parametrize(("host", "words"), [
    ({"address": "10.77.0.2"}, "loopback"),                          # this-machine needs 127/8
    ({"address": "127.0.0.2", "runner": "netns"}, "non-loopback"),     # a namespace needs its own
    ({"address": "8.8.8.8", "runner": "netns"}, "private"),
    ({"address": "not-an-ip"}, "IPv4"),
    ({"address": "10.77.0.2", "runner": "docker"}, "runner"),
])
def test_a_host_address_must_fit_its_runner(raw_spec, write_spec, host, words):
    raw_spec.setdefault("hosts", {})["odd"] = host
    message = refused(write_spec, raw_spec)
    assert "host 'odd'" in message and words in message


def test_two_namespaces_may_not_share_an_address(raw_spec, write_spec):
    hosts = raw_spec.setdefault("hosts", {})
    hosts["a"] = {"address": "10.77.0.2", "runner": "netns"}
    hosts["b"] = {"address": "10.77.0.2", "runner": "netns"}
    assert "share an address" in refused(write_spec, raw_spec)


def test_hosts_named_in_the_spec_are_where_environments_run(raw_spec, write_spec):
    raw_spec.setdefault("hosts", {})["prd-1"] = {"address": "10.77.0.2", "runner": "netns"}
    raw_spec["environments"]["prd"]["host"] = "prd-1"
    spec = load_spec(write_spec(raw_spec))
    assert spec.host_of(spec.env("prd")).address == "10.77.0.2"
    assert spec.host_of(spec.env("dev")) is spec.hosts[spec.defaults.host]
