"""prd's HA database as the spec declares it, and what wtx renders from it: Patroni's config,
etcd's and Patroni's programs, HAProxy's entry point. Nothing here starts a process."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from tests.support.specs import refused

from wtx.backends.local import LocalBackend
from wtx.backends.local.haproxy import render_config
from wtx.backends.local.patroni import cluster_secrets
from wtx.render.envfile import default_database_url
from wtx.spec import load_spec


def ha_of(raw):
    return raw["environments"]["prd"]["database"]["ha"]


def test_prd_runs_a_synchronous_pair_on_two_hosts_with_etcd_on_three(raw_spec, write_spec):
    spec = load_spec(write_spec(raw_spec))
    prd, bak = spec.env("prd"), spec.env("bak")
    ha = prd.database.ha
    assert ha is not None and ha.synchronous
    assert len({m.host for m in ha.members}) == 2
    assert len({e.host for e in ha.etcd}) == 3, "losing any one host keeps etcd's quorum"
    assert spec.database_ha(bak) == ha, "bak's copy is a member of prd's HA database"
    assert bak.database.port == prd.database.port
    assert ha.ttl >= ha.loop_wait + 2 * ha.retry_timeout


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda ha: ha["members"][1].update(host="bak-dbb"), "database.ha.members[2].host", "unknown host 'bak-dbb'"),
    (lambda ha: ha["members"][1].update(host="prd-db"), "database.ha.members", "two members on one host"),
    (lambda ha: ha["etcd"].pop(), "database.ha.etcd", "at least 3"),
    (lambda ha: ha["etcd"].append({"host": "local", "client_port": 2387, "peer_port": 2388}),
     "database.ha.etcd", "odd number"),
    (lambda ha: ha.update(ttl=10), "database.ha.ttl", "greater than or equal to 20"),
    (lambda ha: ha.update(ttl=20, retry_timeout=10), "database.ha.ttl", "loop_wait + 2 x retry_timeout"),
    (lambda ha: ha["members"][0].update(rest_port=9105), "database.ha", "port 9105 is already used by environment 'dev'"),
    (lambda ha: ha["etcd"][2].update(peer_port=ha["etcd"][2]["client_port"]), "database.ha", "is already used"),
    (lambda ha: ha["members"][0].update(hots="x"), "database.ha.members.0.hots", "unknown field"),
])
def test_a_wrong_ha_database_is_refused_naming_the_field(raw_spec, write_spec, edit, field, words):
    edit(ha_of(raw_spec))
    message = refused(write_spec, raw_spec)
    assert f"environment 'prd': field '{field}" in message and words in message, message


def test_a_backup_declares_no_ha_of_its_own(raw_spec, write_spec):
    raw_spec["environments"]["bak"]["database"]["ha"] = ha_of(raw_spec)
    message = refused(write_spec, raw_spec)
    assert "environment 'bak': field 'database.ha': a backup uses 'prd''s database" in message


def test_sqlite_has_no_ha(raw_spec, write_spec):
    ha = ha_of(raw_spec)
    for m in ha["members"]:
        m.update(port=m["port"] + 100, rest_port=m["rest_port"] + 100)
    for e in ha["etcd"]:
        e.update(client_port=e["client_port"] + 100, peer_port=e["peer_port"] + 100)
    raw_spec["environments"]["dev"]["database"]["ha"] = ha
    assert "environment 'dev': field 'database.ha': needs engine = \"postgresql\"" in refused(write_spec, raw_spec)


@pytest.fixture
def moved(raw_spec, write_spec, tmp_path):
    """The spec with its database hosts and front door on addresses of their own (as a
    netns runner would give them): every rendered address must follow."""
    raw_spec["hosts"].update({
        "prd-db": {"address": "127.0.0.21"}, "bak-db": {"address": "127.0.0.22"},
        "witness": {"address": "127.0.0.23"}, "edge": {"address": "127.0.0.24"},
    })
    raw_spec["defaults"]["front_door_host"] = "edge"
    spec = load_spec(write_spec(raw_spec))
    backend = LocalBackend(spec, tmp_path, tmp_path / "var")
    ha = backend.ha_cluster(spec.env("prd"))
    assert ha is not None
    return backend, ha


def test_patroni_config_is_synchronous_rewinds_and_takes_every_address_from_the_hosts(moved):
    backend, ha = moved
    pw = {n: f"pw-{n}" for n in ("REPLICATION_PASSWORD", "REWIND_PASSWORD", "SUPERUSER_PASSWORD", "REST_PASSWORD")}
    conf = ha.patroni_config("bak-db", pw)
    assert "127.0.0.1" not in json.dumps(conf)
    member = ha.member("bak-db")
    assert conf["postgresql"]["listen"] == f"127.0.0.22:{member.port}"
    assert conf["restapi"]["listen"] == f"127.0.0.22:{member.rest_port}"
    assert conf["etcd3"]["hosts"] == [f"127.0.0.{21 + i}:{e.client_port}" for i, e in enumerate(ha.ha.etcd)]
    dcs = conf["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["synchronous_mode_strict"] is False
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (ha.ha.ttl, ha.ha.loop_wait, ha.ha.retry_timeout)
    assert dcs["postgresql"]["use_pg_rewind"] and dcs["postgresql"]["use_slots"]
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    # pg_hba: the app's role only to its database, only from the front door; nothing for "all".
    hba = conf["postgresql"]["pg_hba"]
    db = backend.spec.env("prd").database
    assert f"host {db.name} {db.role} 127.0.0.24/32 scram-sha-256" in hba
    assert not [line for line in hba if line.startswith("host") and " all " in line]
    assert conf["postgresql"]["parameters"]["unix_socket_directories"] != \
        ha.patroni_config("prd-db", pw)["postgresql"]["parameters"]["unix_socket_directories"]


def test_haproxy_routes_the_database_port_to_the_member_whose_patroni_says_primary(moved):
    backend, ha = moved
    prd = backend.spec.env("prd")
    text = render_config(routes=[], layout=backend.layout, http_port=8080, https_port=8443, stats_port=8404,
                         health_path="/healthz", inter_ms=500, fall=2, rise=2, certificates={},
                         databases=backend.database_routes())
    section = text.split("listen db_prd", 1)[1].split("\n\n", 1)[0]
    assert f"bind 127.0.0.24:{prd.database.port}" in section
    assert "http-check send meth GET uri /primary" in section and "on-marked-down shutdown-sessions" in section
    for i, m in enumerate(ha.ha.members):
        assert f"server {m.host} 127.0.0.{21 + i}:{m.port} check port {m.rest_port}" in section
    assert backend.database_host(prd) == "127.0.0.24"
    for env in (prd, backend.spec.env("bak")):  # what prd's and bak's apps are started with
        url = default_database_url(env, backend.spec, {"DB_PASSWORD": "x"}, backend.var_dir)
        assert url == f"postgres://{prd.database.role}:x@127.0.0.24:{prd.database.port}/{prd.database.name}"


def test_the_cluster_passwords_stay_in_one_private_file_and_out_of_the_programs(moved):
    backend, ha = moved
    ha.paths.root.mkdir(parents=True)
    pw = cluster_secrets(ha.paths)
    assert stat.S_IMODE(ha.paths.secrets_file.stat().st_mode) == 0o600
    assert cluster_secrets(ha.paths) == pw, "generated once"
    programs = ha.programs(Path("/nowhere"))
    names = {p.name for p in programs}
    assert names == {f"prd-patroni-{m.host}" for m in ha.ha.members} | {f"prd-etcd-{e.host}" for e in ha.ha.etcd}
    rendered = "\n".join(p.render() for p in programs)
    assert not [v for v in pw.values() if v in rendered]
    for p in programs:
        if p.name.startswith("prd-patroni-"):
            assert p.user == "postgres" and not p.autostart, "wtx starts the members, the first one first"


def test_every_member_archives_with_its_own_data_directory_so_a_new_leader_archives_too(moved):
    """The stanza lists every member (pg1, pg2); PostgreSQL hands archive-push a path relative
    to the data directory, which pgBackRest reads against pg1-path: each member names its own."""
    backend, ha = moved
    pw = {n: "x" for n in ("REPLICATION_PASSWORD", "REWIND_PASSWORD", "SUPERUSER_PASSWORD", "REST_PASSWORD")}
    for m in ha.ha.members:
        params = ha.patroni_config(m.host, pw)["postgresql"]["parameters"]
        assert params["archive_mode"] == "on" and "wal_level" not in params, "wal_level is cluster-wide"
        command = params["archive_command"].split()
        assert command[-2:] == ["archive-push", "%p"]
        assert f"--pg1-path={ha.paths.pgdata(m.host)}" in command, command
