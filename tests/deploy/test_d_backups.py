"""prd's backups on the real stack: `wtx up` turned WAL archiving on and started prd-backups,
which took the first backup by itself; `wtx status` reports its age; the operator's commands
back up, list, restore into a scratch cluster and drop it; prd is never reset.

The point-in-time drill to a noted second (orders before it, none after) is
tests/integration/test_backup_restore_drill.py.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from deploy_support import poll

from wtx.backends.local.postgres import PG_BIN, as_postgres_cmd

pytestmark = pytest.mark.slow

PATRON = ("from wondertix.patrons import crm\n"
          "crm.create_contact({'first_name': 'Restore', 'last_name': 'Drill', 'email': 'drill@example.org'}, actor=None)\n"
          "from wondertix.patrons.models import Patron\n"
          "print('PATRONS', Patron.objects.count())\n")


def _status(stack) -> dict:
    res = stack.wtx("status", "--json")
    return {row["env"]: row for row in json.loads(res.stdout)}


def test_up_archives_prd_s_wal_and_backs_it_up_by_itself_and_status_reports_the_ages(stack):
    assert stack.backend.cluster(stack.spec.env("prd")).setting("archive_mode") == "on"
    assert stack.backend.supervisor.state("prd-backups") == "RUNNING"
    assert poll(lambda: (_status(stack)["prd"]["backups"] or {}).get("last_backup") is not None, timeout=180, interval=2)
    rows = _status(stack)
    prd = rows["prd"]["backups"]
    assert prd["stale"] is False and prd["last_backup_age_h"] < 1
    assert prd["max_age_h"] == stack.spec.env("prd").backups.max_age_h
    assert all(rows[name]["backups"] is None for name in ("dev", "stg", "bak"))
    assert stack.wtx("status").returncode == 0


def test_backup_list_restore_into_scratch_and_drop_as_an_operator_does(stack):
    made = stack.wtx("run", "prd", "--", "shell", "-c", PATRON)
    assert made.returncode == 0, made.stderr
    patrons = int(made.stdout.split("PATRONS")[1].split()[0])

    res = stack.wtx("db", "backup", "prd", "--incr", "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["type"] == "incr"
    listed = json.loads(stack.wtx("db", "backups", "prd", "--json").stdout)
    assert [b["type"] for b in listed["backups"]][0] == "full" and listed["backups"][-1]["type"] == "incr"

    res = stack.wtx("db", "restore", "prd", "--to", "latest", "--into", "scratch", "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    scratch = json.loads(res.stdout)
    try:
        count = subprocess.run(as_postgres_cmd([str(PG_BIN / "psql"), "-X", "-A", "-t", "-h", scratch["socket"],
                                                "-p", str(scratch["port"]), "-d", scratch["database"],
                                                "-c", "SELECT count(*) FROM patrons_patron"]),
                               capture_output=True, text=True, timeout=30, check=True)
        assert int(count.stdout) == patrons
    finally:
        dropped = stack.wtx("db", "drop-scratch", "prd", scratch["scratch"])
    assert dropped.returncode == 0 and scratch["scratch"] in dropped.stdout


def test_prd_is_never_reset_and_stays_as_it_was(stack):
    res = stack.wtx("db", "reset", "prd", "--yes")
    assert res.returncode == 1 and "refusing to reset prd" in res.stderr
    refused = stack.wtx("db", "restore", "prd", "--to", "latest", "--into", "live")
    assert refused.returncode == 1 and "--replace-live-database" in refused.stderr
