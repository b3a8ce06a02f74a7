"""`wtx db refresh stg --from prd` on two real PostgreSQL clusters: stg gets prd's shape and
volume and not one of its patrons.

Two throwaway clusters stand in for prd's and stg's, set up the way wtx sets up its own
(a role per environment, pg_hba admitting that role to that database only). prd gets
realistic patrons through the app's own services (sales with buyers' details, contacts with
notes, gifts with comments, staff accounts, audit entries, a session, a failed login); stg has
data of its own. wtx's refresh (wtx.backends.local.refresh) copies prd into stg, scrubbed by
this checkout's `wondertix scrub_personal_data`. Then every text, varchar, json and inet
column of every table in stg is read and searched for every personal value prd holds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.support.buyers import order_payload
from tests.support.liveserver import LiveServer, app_env, manage
from tests.support.pgcluster import PgCluster

from wtx.backends.local.postgres import Cluster
from wtx.backends.local.refresh import refresh, staging_name
from wtx.render.envfile import app_environment
from wtx.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
EMPTIED_TABLES = {"django_session", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog"}
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "inet")

PEOPLE = [
    # first, last, email, phone, street, note, accommodation
    ("Ottoline", "Fairweather", "ottoline.fairweather@fastmail.example", "(503) 555-0142", "1187 NE Alberta Street", "Longtime subscriber since 2009", "wheelchair space, row J"),
    ("Ignatius", "Brumbaugh", "iggy.brumbaugh@gmail.example", "503-555-0178", "4410 SE Woodstock Blvd", "Called about parking for his mother", ""),
    ("Philippa", "Szczepanski", "pszczepanski@proton.example", "+1 971 555 0133", "22 Vista Terrace Apt 3", "Board member; comp two seats", "aisle seat (knee surgery)"),
    ("Dashiell", "Okonkwo-Reyes", "dash.okonkwo@outlook.example", "(360) 555-0199", "908 Main Street", "Requested large-print program", "large print"),
    ("Marisol", "Vandersloot", "marisol.v@yahoo.example", "541 555 0107", "77 Quince Lane", "Allergic to latex balloons", ""),
]
STAFF = [("mholloway", "m.holloway@theater.example", "Marguerite", "Holloway"),
         ("tbeauchamp", "theo.beauchamp@theater.example", "Theodore", "Beauchamp")]

SEED_PRD = """
import json
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.utils import timezone
from datetime import timedelta
from axes.models import AccessAttempt
from wondertix.catalog.models import PriceType
from wondertix.patrons import crm
from wondertix.patrons.gifts import record_gift
from wondertix.sales.services import Buyer, CheckoutDetails, LineRequest, sell
from wondertix.sales.models import Hold

import os
people, staff = json.loads(os.environ["PEOPLE"]), json.loads(os.environ["STAFF"])
clerks = [User.objects.create_user(u, email=e, first_name=f, last_name=l, password="Pw-" + u * 2, is_staff=True)
          for u, e, f, l in staff]
pt = PriceType.objects.filter(active=True, staff_only=False, pay_what_you_can=False).order_by("pk").first()
perf = pt.event.performances.order_by("starts_at").last()
from wondertix.payments.providers.base import PaymentDetails
card = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
for i, (first, last, email, phone, street, note, acc) in enumerate(people):
    buyer = Buyer(first_name=first, last_name=last, email=email, phone=phone, address_line1=street,
                  city="Gresham", region="OR", postal_code="97030", accommodation=acc)
    order = sell([LineRequest(perf.pk, pt.pk, 2)],
                 CheckoutDetails(buyer=buyer, donation_cents=500 * (i + 1), donation_comment=f"In honor of {first} {last}",
                                 payment=PaymentDetails(**card)),
                 actor=clerks[i % 2], staff=True)
    crm.add_note(order.patron_id, note, actor=clerks[0])
    crm.update_contact(order.patron_id, {"phone": phone + " ext 9"}, actor=clerks[1])
    record_gift(order.patron_id, 2500, comment=f"Gala pledge from {last}", idempotency_key=f"gift-{i}", actor=clerks[0])
crm.create_contact({"first_name": "Wilhelmina", "last_name": "Quartermaine", "email": "wquartermaine@icloud.example",
                    "phone": "(503) 555-0166", "address_line1": "5 Larch Court", "notes": "Prefers phone calls"}, actor=clerks[0])
Hold.objects.create(expires_at=timezone.now() + timedelta(minutes=5), reason="house seats for Fairweather party",
                    client_address="198.51.100.23", created_by=clerks[0])
Session.objects.create(session_key="s" * 32, session_data="mholloway-session", expire_date=timezone.now() + timedelta(days=1))
AccessAttempt.objects.create(username="tbeauchamp", ip_address="198.51.100.24", user_agent="Firefox", failures_since_start=1,
                             get_data="", post_data="", http_accept="", path_info="/staff/login/")
"""


def _as_wtx_cluster(pg: PgCluster, tmp: Path) -> Cluster:
    return Cluster(pgdata=pg.datadir, sockdir=pg.socket_dir, port=pg.port, log_dir=tmp, var_dir=pg.datadir.parent)


def _environment(pg: PgCluster, cluster: Cluster, name: str) -> str:
    """The role and database wtx makes for an environment, and its pg_hba; the app's URL."""
    cluster.ensure_database(name, name, f"pw-{name}")
    cluster.write_hba(name, name)
    cluster.reload()
    return pg.url(name, name, f"pw-{name}")


def _columns(pg: PgCluster, db: str) -> list[tuple[str, str]]:
    rows = pg.psql(
        "SELECT table_name || '|' || column_name FROM information_schema.columns "  # noqa: S608 - names and numbers read from the database
        f"WHERE table_schema = 'public' AND data_type IN {TEXT_TYPES!r} ORDER BY 1", database=db)
    return [tuple(r.split("|")) for r in rows.splitlines()]  # type: ignore[misc]


def _text_of_every_column(pg: PgCluster, db: str) -> dict[str, str]:
    """"table.column" → every value of that column, as text, one per line."""
    out = {}
    for table, column in _columns(pg, db):
        out[f"{table}.{column}"] = pg.psql(f'SELECT string_agg("{column}"::text, E\'\\n\') FROM "{table}"', database=db)  # noqa: S608 - names and numbers read from the database
    return out


def _row_counts(pg: PgCluster, db: str) -> dict[str, int]:
    tables = pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database=db).split()
    return {t: int(pg.psql(f'SELECT count(*) FROM "{t}"', database=db)) for t in tables}  # noqa: S608 - names and numbers read from the database


def _personal_values(pg: PgCluster, db: str) -> set[str]:
    """Every personal value prd holds, read back from prd itself (not from the seed script)."""
    queries = [
        "SELECT first_name || ' ' || last_name FROM patrons_patron",
        "SELECT last_name FROM patrons_patron", "SELECT email FROM patrons_patron",
        "SELECT phone FROM patrons_patron", "SELECT address_line1 FROM patrons_patron",
        "SELECT notes FROM patrons_patron", "SELECT accommodation FROM patrons_patron",
        "SELECT buyer_name FROM sales_order", "SELECT buyer_email FROM sales_order", "SELECT buyer_phone FROM sales_order",
        "SELECT comment FROM patrons_donation", "SELECT reference FROM payments_payment",
        "SELECT reason FROM sales_hold", "SELECT host(client_address) FROM sales_hold",
        "SELECT username FROM auth_user", "SELECT email FROM auth_user", "SELECT last_name FROM auth_user",
        "SELECT password FROM auth_user", "SELECT session_key FROM django_session",
        "SELECT ip_address FROM axes_accessattempt",
    ]
    values: set[str] = set()
    for sql in queries:
        values.update(v for v in pg.psql(sql, database=db).splitlines() if len(v.strip()) >= 4)
    return values


@pytest.fixture(scope="module")
def refreshed() -> Iterator[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="wtx-refresh-test-"))
    with PgCluster(prefix="wtx-prd-") as prd_pg, PgCluster(prefix="wtx-stg-") as stg_pg:
        try:
            prd, stg = _as_wtx_cluster(prd_pg, tmp), _as_wtx_cluster(stg_pg, tmp)
            prd_url, stg_url = _environment(prd_pg, prd, "wondertix_prd"), _environment(stg_pg, stg, "wondertix_stg")
            for url in (prd_url, stg_url):
                manage(url, "migrate", "--noinput")
                manage(url, "seed_demo")
            manage(prd_url, "shell", "-c", SEED_PRD, env=app_env(prd_url, PEOPLE=json.dumps(PEOPLE), STAFF=json.dumps(STAFF)))
            manage(stg_url, "create_staff", "stg-only-clerk", "--role", "admin", "--password", "Rehearsal-Pw-7731-x")
            during: dict[str, object] = {}

            def prepare(url: str) -> None:
                # While the copy is unscrubbed: stg's app role cannot reach it, and stg still
                # reads its own old data.
                incoming = stg_pg.url(staging_name("wondertix_stg"), "wondertix_stg", "pw-wondertix_stg")
                try:
                    psycopg.connect(incoming.replace("postgres://", "postgresql://"), connect_timeout=5).close()
                    during["stg_role_reached_the_copy"] = True
                except psycopg.OperationalError as exc:
                    during["stg_role_reached_the_copy"] = False
                    during["refusal"] = str(exc)
                during["stg_users_meanwhile"] = stg_pg.psql("SELECT string_agg(username, ',') FROM auth_user", database="wondertix_stg")
                manage(url, "migrate", "--noinput")
                manage(url, "scrub_personal_data", "--noinput")

            result = refresh(source=prd, source_db="wondertix_prd", target=stg, target_db="wondertix_stg",
                             target_role="wondertix_stg", hba_database="wondertix_stg", dump_dir=tmp / "dumps",
                             prepare=prepare)
            yield {"prd": prd_pg, "stg": stg_pg, "stg_url": stg_url, "result": result, "during": during, "tmp": tmp}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_no_prd_name_email_phone_address_or_note_is_in_any_text_column_of_stg(refreshed):
    prd, stg = refreshed["prd"], refreshed["stg"]
    personal = _personal_values(prd, "wondertix_prd")
    assert any("Fairweather" in v for v in personal) and any("@fastmail.example" in v for v in personal)
    assert len(personal) > 60, sorted(personal)
    columns = _text_of_every_column(stg, "wondertix_stg")
    assert "patrons_patron.email" in columns and "ops_auditentry.after" in columns
    leaks = [(value, where) for value in personal for where, text in columns.items() if value.lower() in text.lower()]
    assert leaks == []
    print(f"scanned {len(columns)} text columns of stg for {len(personal)} personal values from prd")


def test_every_table_has_prd_row_count_and_only_sessions_and_login_logs_are_emptied(refreshed):
    prd_counts = _row_counts(refreshed["prd"], "wondertix_prd")
    stg_counts = _row_counts(refreshed["stg"], "wondertix_stg")
    assert set(stg_counts) == set(prd_counts)
    assert {t: stg_counts[t] for t in prd_counts if t not in EMPTIED_TABLES} == {t: n for t, n in prd_counts.items() if t not in EMPTIED_TABLES}
    assert prd_counts["django_session"] == 1 and prd_counts["axes_accessattempt"] == 1
    assert {t: stg_counts[t] for t in EMPTIED_TABLES & set(stg_counts)} == dict.fromkeys(EMPTIED_TABLES & set(stg_counts), 0)
    assert prd_counts["patrons_patron"] >= 6 and prd_counts["sales_order"] >= 10
    result = refreshed["result"]
    print(f"refresh: {result.tables} tables, {result.rows} rows, {result.seconds} s")


def test_the_copy_was_out_of_stg_s_reach_until_scrubbed_and_stg_s_old_data_was_dumped(refreshed):
    during = refreshed["during"]
    assert during["stg_role_reached_the_copy"] is False, "stg's app role could connect to the unscrubbed copy"
    assert "no pg_hba.conf entry" in str(during["refusal"])
    assert "stg-only-clerk" in str(during["stg_users_meanwhile"]), "stg kept its own data until the swap"
    stg = refreshed["stg"]
    assert stg.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'wondertix_stg_%'") == "0"
    assert stg.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'wondertix_stg_refresh'") == "0"
    dump = Path(refreshed["result"].dump)
    assert dump.is_file() and dump.stat().st_size > 0 and dump.stat().st_mode & 0o077 == 0


def test_staff_cannot_sign_in_to_stg_with_prd_passwords(refreshed):
    stg = refreshed["stg"]
    assert stg.psql("SELECT count(*) FROM auth_user WHERE password NOT LIKE '!%'", database="wondertix_stg") == "0"


def test_an_order_placed_in_stg_mails_only_into_stg_s_capture_and_never_a_prd_address(refreshed):
    spec = load_spec(ROOT / "deploy" / "environments.toml")
    stg_env = app_environment(spec.env("stg"), spec, {"SECRET_KEY": "x", "STAFF_API_TOKEN_KEY": "y"},
                              var_dir=refreshed["tmp"], database_url=refreshed["stg_url"])
    mail_dir = Path(stg_env["EMAIL_FILE_PATH"])
    mail = {"EMAIL_BACKEND": stg_env["EMAIL_BACKEND"], "EMAIL_FILE_PATH": str(mail_dir)}
    assert mail["EMAIL_BACKEND"].endswith("filebased.EmailBackend")
    stg_url = refreshed["stg_url"]
    with LiveServer(stg_url, workers=1, migrate=False, env=mail) as srv:
        perf = int(refreshed["stg"].psql("SELECT max(performance_id) FROM sales_ticket", database="wondertix_stg"))
        price_type = int(refreshed["stg"].psql(f"SELECT min(price_type_id) FROM sales_ticket WHERE performance_id = {perf}", database="wondertix_stg"))  # noqa: S608 - names and numbers read from the database
        # A buyer typing the email of a patron prd knows: stg's contact is scrubbed, the
        # confirmation goes to what was typed, into stg's capture only.
        r = httpx.post(srv.url + "/api/v1/orders", json=order_payload(perf, price_type, 1, email="rehearsal@example.invalid"), timeout=30)
        assert r.status_code == 201, r.text
        # And every order copied from prd, confirmed again (a staff "resend"), reaches only scrubbed addresses.
        manage(stg_url, "shell", "-c",
               "from wondertix.sales.models import Order\nfrom wondertix.sales.notifications import send_order_confirmation\n"
               "[send_order_confirmation(o.pk) for o in Order.objects.exclude(buyer_email='')]",
               env={**srv.env, **mail})
    messages = [p.read_text(errors="replace") for p in mail_dir.glob("*.log")]
    assert messages, f"nothing captured in {mail_dir}"
    recipients = {line.split(":", 1)[1].strip() for m in messages for line in m.splitlines() if line.startswith("To:")}
    assert recipients and all(r.endswith("@example.invalid") for r in recipients), recipients
    personal = _personal_values(refreshed["prd"], "wondertix_prd")
    captured = "\n".join(messages).lower()
    assert [v for v in personal if v.lower() in captured] == []
