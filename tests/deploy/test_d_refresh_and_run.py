"""`wtx run`, dev's demo data on `wtx up`, and `wtx db refresh stg --from prd` on the real stack.

The column-by-column proof that no personal value survives is tests/integration/test_db_refresh.py;
here the operator's commands run against the environments wtx itself brought up.
"""

from __future__ import annotations

import json

from deploy_support import poll

PRD_PATRON = (
    "from wondertix.patrons import crm\n"
    "from django.contrib.auth.models import User\n"
    "crm.create_contact({'first_name': 'Evangeline', 'last_name': 'Throckmorton', 'email': 'e.throckmorton@fastmail.example',"
    " 'phone': '(503) 555-0181', 'address_line1': '3120 SW Multnomah Blvd', 'notes': 'Seats near the exit'}, actor=None)\n"
    "User.objects.create_user('ahuxtable', email='a.huxtable@theater.example', password='Pw-deploy-test-9137', is_staff=True)\n"
    "from wondertix.patrons.models import Patron\n"
    "print('PATRONS', Patron.objects.count())\n"
)
COUNT_AND_FIND = (
    "from wondertix.patrons.models import Patron\n"
    "from django.contrib.auth.models import User\n"
    "print('PATRONS', Patron.objects.count())\n"
    "print('FOUND', Patron.objects.filter(last_name='Throckmorton').count() + Patron.objects.filter(email__icontains='fastmail').count()"
    " + User.objects.filter(username='ahuxtable').count())\n"
)


def _value(output: str, key: str) -> int:
    return int(next(line.split()[1] for line in output.splitlines() if line.startswith(key + " ")))


def test_dev_came_up_with_demo_data_and_wtx_run_reaches_its_database(stack):
    res = stack.wtx("run", "dev", "--", "shell", "-c",
                    "from wondertix.catalog.models import Event; print('EVENTS', Event.objects.count())")
    assert res.returncode == 0, res.stderr
    assert _value(res.stdout, "EVENTS") >= 3, "wtx up seeds dev (data_policy demo) on its first start"
    titles = {e["title"] for e in stack.site("dev").get("/api/v1/events").json()}
    assert "The Tempest" in titles


def test_wtx_run_passes_the_command_s_exit_code_through(stack):
    res = stack.wtx("run", "stg", "--", "check", "--deploy", "--fail-level", "ERROR")
    assert res.returncode == 0, res.stdout + res.stderr
    res = stack.wtx("run", "stg", "--", "no_such_command")
    assert res.returncode == 1 and "Unknown command" in res.stderr


def test_wtx_db_refresh_puts_prd_s_volume_into_stg_without_its_people(stack):
    seeded = stack.wtx("run", "prd", "--", "shell", "-c", PRD_PATRON)
    assert seeded.returncode == 0, seeded.stderr
    prd_patrons = _value(seeded.stdout, "PATRONS")

    refused = stack.wtx("db", "refresh", "prd", "--from", "stg", "--yes")
    assert refused.returncode == 1 and "refusing to refresh prd" in refused.stderr

    res = stack.wtx("db", "refresh", "stg", "--from", "prd", "--yes", "--json", timeout=600)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    print(f"wtx db refresh stg --from prd: {result['rows']} rows in {result['tables']} tables, {result['seconds']} s")

    stg = stack.wtx("run", "stg", "--", "shell", "-c", COUNT_AND_FIND)
    assert stg.returncode == 0, stg.stderr
    assert _value(stg.stdout, "PATRONS") == prd_patrons
    assert _value(stg.stdout, "FOUND") == 0, "a prd patron or staff account reached stg unscrubbed"
    assert poll(lambda: stack.site("stg").get("/readyz").status == 200, timeout=30, interval=0.5)

    history = json.loads(stack.wtx("history", "stg", "--json").stdout)
    record = next(r for r in reversed(history) if r["event"] == "db-refresh")
    assert record["source"] == "prd" and record["rows"] == result["rows"]
    assert record["dump"] and (stack.var_dir / "envs" / "stg" / "dumps").is_dir()
