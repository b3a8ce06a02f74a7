"""The environment spec: deploy/environments.toml, loaded and validated once.

Every error names the file, the environment and the field, because the person reading it is
an operator about to deploy, not someone debugging pydantic. Models forbid unknown keys so a
typo (``basic_auht``) is an error, never a silently ignored setting.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wtx.spec_ha import DatabaseHA, EtcdMember, HAMember, ha_ports, ha_problems

SPEC_RELATIVE_PATH = Path("deploy") / "environments.toml"

# App servers of an environment listen on base_port + slot, slot in [0, APP_PORT_SLOTS):
# room for two colors (blue/green) of up to a few replicas each during a deploy.
APP_PORT_SLOTS = 10

# Secrets wtx generates itself (random, once) ...
GENERATED_SECRETS = ("SECRET_KEY", "STAFF_API_TOKEN_KEY", "DB_PASSWORD", "BASIC_AUTH_PASSWORD")
# ... and secrets only the theater can provide (from its payment processor's dashboard).
PROVIDED_SECRETS = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET")
KNOWN_SECRETS = GENERATED_SECRETS + PROVIDED_SECRETS

# An environment whose data is real never confirms an order paid with the simulated card
# processor. The one exception, a local demonstration of prd, must say so in these words
# (`app.simulated_payments_on_real_data`); every page, email and ticket then says TEST.
SIMULATED_PAYMENTS_DEMO_PHRASE = "local demo: every ticket says TEST - NOT VALID"

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")

# Strings the spec lets into haproxy.cfg, supervisord.conf and env files. Each is checked
# against what it may contain, never escaped later: a newline, a space, a quote or a '#' in
# any of them would add or cut a directive in the rendered file.
_SAFE_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SAFE_URL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}(\?[A-Za-z0-9._~=&/-]{0,200})?$")
_SAFE_FILE_PATH = re.compile(r"^[A-Za-z0-9._/+-]{1,1024}$")
_SAFE_ZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _safe_url_path(v: str) -> str:
    if not _SAFE_URL_PATH.fullmatch(v):
        raise ValueError(
            f"{v!r} is not an absolute URL path of safe characters: '/' then letters, digits and "
            "'._~/-' (a query of those and '=&'); no spaces, newlines, quotes or '#'"
        )
    return v


class SpecError(Exception):
    """The spec is wrong. The message names the file, the environment and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = int  # validated by Field(ge=1024, le=65535) where used


class HealthCheck(_Strict):
    path: str = "/healthz"
    inter_ms: int = Field(500, ge=100, le=60_000)
    fall: int = Field(2, ge=1, le=10)
    rise: int = Field(2, ge=1, le=10)

    @field_validator("path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return _safe_url_path(v)


class Jobs(_Strict):
    """How often `wondertix run_jobs` (the `<env>-jobs` program, in every environment) runs
    each recovery job, in seconds."""

    outbox_every_s: int = Field(5, ge=1, le=3600)
    reconcile_payments_every_s: int = Field(60, ge=10, le=86_400)


class Defaults(_Strict):
    theater_time_zone: str = "America/Los_Angeles"
    haproxy_http_port: Port = Field(8080, ge=1024, le=65535)
    haproxy_https_port: Port = Field(8443, ge=1024, le=65535)
    haproxy_stats_port: Port = Field(8404, ge=1024, le=65535)
    health_check: HealthCheck = Field(default_factory=lambda: HealthCheck.model_validate({}))
    readiness_path: str = "/readyz"
    # At least 2: the previous release must stay installed so rollback is a traffic switch.
    release_keep: int = Field(3, ge=2, le=50)
    jobs: Jobs = Field(default_factory=lambda: Jobs.model_validate({}))
    # Seconds the slot a deploy (or rollback) takes off traffic keeps running, out of
    # traffic, so `wtx rollback` within them is a traffic switch; 0 stops it at once.
    rollback_warm_s: int = Field(0, ge=0, le=86_400)
    # The host (see [hosts]) an environment runs on unless it names its own, and the host of
    # the front door (HAProxy); both default to the one host a spec without [hosts] has.
    host: str = "local"
    front_door_host: str | None = None
    # Dumps wtx takes before a destructive step (reset, refresh, restore into live) kept per
    # environment in var/envs/<env>/dumps/; older ones are removed as a new one is written.
    dumps_keep: int = Field(5, ge=1, le=100)

    @field_validator("theater_time_zone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use an IANA name such as America/Los_Angeles)") from None
        if not _SAFE_ZONE.fullmatch(v):
            raise ValueError(f"{v!r} is not an IANA zone name (letters, digits, '_+-' and '/')")
        return v

    @field_validator("readiness_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        return _safe_url_path(v)


def _cidr_list(v: list[str]) -> list[str]:
    """Networks in canonical CIDR form (allowed sources, monitoring networks)."""
    out = []
    for item in v:
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=True)))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not a network in CIDR form ({exc})") from None
    return out


class Host(_Strict):
    """A machine things run on. Locally the runner decides what a "machine" is: this one
    (`this-machine`: processes here, the address one of its loopback addresses) or a network
    namespace wtx creates (`netns`: its own network stack, the address on wtx's bridge; killing
    the host kills everything in it, cutting its link partitions it)."""

    address: str
    runner: Literal["this-machine", "netns"] = "this-machine"

    @field_validator("address")
    @classmethod
    def _ipv4(cls, v: str) -> str:
        try:
            addr = ipaddress.IPv4Address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 address") from None
        return str(addr)

    @model_validator(mode="after")
    def _address_fits_runner(self) -> Host:
        loopback = ipaddress.IPv4Address(self.address).is_loopback
        if self.runner == "this-machine" and not loopback:
            raise ValueError(f"a this-machine host listens on a loopback address (127.0.0.0/8), not {self.address}")
        if self.runner == "netns" and (loopback or not ipaddress.IPv4Address(self.address).is_private):
            raise ValueError(f"a netns host needs a private, non-loopback address (e.g. 10.77.0.2), not {self.address}")
        return self


# The one machine a spec without [hosts] runs on.
DEFAULT_HOSTS = {"local": Host(address="127.0.0.1")}


class Access(_Strict):
    allowed_networks: list[str] = Field(min_length=1)
    basic_auth: bool = False
    basic_auth_user: str = ""
    tls: bool = False
    # Empty: wtx generates a self-signed certificate under var/ (local machines). On a real
    # host: the path of the PEM (certificate + key) HAProxy should serve.
    tls_certificate: str = ""

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return _cidr_list(v)

    @field_validator("basic_auth_user")
    @classmethod
    def _user(cls, v: str) -> str:
        # Written into an HAProxy userlist line: `user <name> password <hash>`.
        if v and not _SAFE_USER.fullmatch(v):
            raise ValueError(f"{v!r} is not a user name: 1-64 of letters, digits and '._-'")
        return v

    @field_validator("tls_certificate")
    @classmethod
    def _certificate(cls, v: str) -> str:
        # Written into HAProxy's `bind … ssl crt <path>`.
        if v and not _SAFE_FILE_PATH.fullmatch(v):
            raise ValueError(f"{v!r} is not a file path of safe characters (letters, digits, '._/+-'; no spaces)")
        return v


# The longest ride-through. A request that waited this long still needs a few seconds to do
# its work before HAProxy gives up on it (`timeout server`, rendered as the ride-through plus
# SERVER_AFTER_RIDE_THROUGH_S); gunicorn's worker timeout does not limit a request's length with
# threaded workers (it watches the worker's heartbeat). Patroni's failover of a dead leader
# host takes ~21 s on a quiet machine and up to ~25 s on a busy one: the budget covers it.
RIDE_THROUGH_MAX_S = 40
# HAProxy waits this much longer than the ride-through for a server's answer (its backend's
# `timeout server`, never below 30 s): the request that waited still does its work.
SERVER_AFTER_RIDE_THROUGH_S = 10
# During a failover every worker of an app server may be riding through at once (up to
# ride_through_s each), and the requests queued behind them in HAProxy wait that long plus the
# time to work off the queue: a queue timeout shorter than that would turn a wait the platform
# promised to absorb into a "very busy" 503. Seconds of that margin.
QUEUE_AFTER_RIDE_THROUGH_S = 5


class Database(_Strict):
    engine: Literal["sqlite", "postgresql"]
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    role: str = Field("", pattern=r"^([a-z_][a-z0-9_]{0,62})?$")
    port: Port | None = Field(None, ge=1024, le=65535)
    data_policy: Literal["demo", "scrubbed-copy-of-prd", "real"]
    # Seconds a request waits for an unreachable database (a failover) before it is answered
    # "try again shortly" (DATABASE_RIDE_THROUGH_S, wondertix.ops.ridethrough); 0 = at once.
    ride_through_s: int = Field(0, ge=0, le=RIDE_THROUGH_MAX_S)
    # A Patroni cluster with members on several hosts instead of one plain cluster; `port`
    # is then its entry point on the front door's host (docs/environments.md#database-ha).
    ha: DatabaseHA | None = None



class Backups(_Strict):
    """pgBackRest for the environment's PostgreSQL cluster (docs/environments.md#backups):
    continuous WAL archiving and full + incremental backups into a repository on `host`
    (another machine than the environment's: losing the database's host keeps the backups)."""

    host: str
    every_h: int = Field(24, ge=1, le=24 * 7)          # `<env>-backups` backs up when the last is this old
    full_every_days: int = Field(7, ge=1, le=365)     # `wtx db backup` takes a full one when the last is older
    max_age_h: int = Field(26, ge=1, le=24 * 90)      # `wtx status` fails when the last backup is older
    retention_full: int = Field(2, ge=1, le=100)      # full backups kept (with their incrementals and WAL)


class Logging(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "json"
    metrics: bool = True
    # Every log file of the environment (app, access, process output) is rotated by
    # supervisord at this size, keeping this many old files; HAProxy's log, shared by every
    # environment, uses the largest of these.
    max_file_mb: int = Field(default=20, ge=1, le=1024)
    keep_files: int = Field(default=5, ge=1, le=50)
    # Who may read /metrics through HAProxy (the monitoring system's networks). Empty: nobody;
    # every other client gets 403 from HAProxy, so the app never runs the request.
    monitoring_networks: list[str] = []

    @field_validator("monitoring_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return _cidr_list(v)


class FrontDoor(_Strict):
    """How much HAProxy lets through to the environment's app servers, and what everyone
    else is told. The queue lives in HAProxy, never in front of a busy gunicorn worker."""

    # Requests in flight per app server; 0 means the server's worker count (app.replicas).
    maxconn_per_server: int = Field(0, ge=0, le=1000)
    # A request waits this long in HAProxy's queue, then gets the "very busy" 503. With a
    # database ride-through, at least ride_through_s + QUEUE_AFTER_RIDE_THROUGH_S.
    queue_timeout_s: int = Field(10, ge=1, le=60)
    # More requests than this waiting already: the next one gets the 503 at once.
    max_queue: int = Field(1000, ge=1, le=100_000)
    # The Retry-After of every 503/429 from HAProxy (and the busy page's refresh).
    retry_after_s: int = Field(5, ge=1, le=300)
    # Per client address, within every window of rate_limit_window_s seconds: seats held
    # (POST /api/v1/holds, the storefront's add-to-cart) and orders attempted
    # (POST /api/v1/orders, the storefront's checkout and donation). Over it: 429.
    rate_limit_window_s: int = Field(10, ge=1, le=3600)
    holds_per_window: int = Field(20, ge=1, le=100_000)
    orders_per_window: int = Field(10, ge=1, le=100_000)


class App(_Strict):
    replicas: int = Field(1, ge=1, le=16)
    base_port: Port = Field(ge=1024, le=65535 - APP_PORT_SLOTS)
    payments: Literal["test", "stripe"] = "test"
    # Stripe Terminal: the location (tml_…) whose card readers the window offers; "" = all.
    stripe_terminal_location: str = Field("", pattern=r"^(tml_[A-Za-z0-9]{1,60})?$")
    # Only for a local demo of a real-data environment: the exact SIMULATED_PAYMENTS_DEMO_PHRASE.
    simulated_payments_on_real_data: str = ""
    email: Literal["console", "file", "smtp"] = "file"
    # host:port of an SMTP relay that delivers every message to one mailbox it keeps (Mailpit,
    # MailHog, a provider's sandbox), never onward. Required for smtp on a copy of real data.
    email_catch_all_relay: str = ""

    @field_validator("email_catch_all_relay")
    @classmethod
    def _relay(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if v and not (sep and host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{v!r} is not host:port")
        return v


class Failover(_Strict):
    mode: Literal["none", "backup"] = "none"
    backup: str = ""


# --------------------------------------------------------------------------------------------
# Gates: the checks a release must pass in an environment before it may be promoted out of it.
# Each is a named check with its thresholds; `wtx gate ENV RELEASE` runs them (wtx.gates).


class _Gate(_Strict):
    timeout_s: int = Field(600, ge=1, le=7200)


class LintGate(_Gate):
    """ruff (and mypy) over the release's own source, at the commit it was built from."""

    check: Literal["lint"]
    tools: list[Literal["ruff", "mypy"]] = Field(["ruff", "mypy"], min_length=1)
    paths: list[str] = Field(["src", "tests"], min_length=1)
    max_findings: int = Field(0, ge=0)


class UnitGate(_Gate):
    """The release's unit tests, run against the release's installed code and dependencies."""

    check: Literal["unit"]
    paths: list[str] = Field(["tests/unit"], min_length=1)
    workers: int = Field(2, ge=1, le=16)
    max_failures: int = Field(0, ge=0)
    min_passed: int = Field(1, ge=1)  # a run that collected nothing proves nothing


class IntegrationMinimalGate(_Gate):
    """The release as installed answers readiness with its database and serves the
    storefront and the API on demo data, through the environment's front door."""

    check: Literal["integration-minimal"]
    pages: list[str] = Field(["/"], min_length=1)
    api: list[str] = Field(["/api/v1/events"], min_length=1)
    min_events: int = Field(1, ge=1)
    seed_demo: bool = True  # load the demo data first (only where data_policy = "demo")


class SecurityGate(_Gate):
    """check --deploy with the environment's settings, security headers and cookies on the
    live environment, and its firewall seen from a source it does not allow."""

    check: Literal["security"]
    pages: list[str] = Field(["/", "/staff/login/"], min_length=1)
    max_deploy_warnings: int = Field(0, ge=0)
    # check --deploy findings this environment accepts, by id, each a decision written down
    # in the spec (e.g. the TLS warnings of an environment served over plain HTTP).
    allow: list[str] = []
    # bandit over the release's code (its app wheel): a finding counts when it is at or above
    # both levels; at most bandit_max_findings may count. (A nosec comment naming the test,
    # with its reason, is a reviewed exception in the code, as noqa is for ruff.)
    bandit_severity: Literal["low", "medium", "high"] = "high"
    bandit_confidence: Literal["low", "medium", "high"] = "medium"
    bandit_max_findings: int = Field(0, ge=0)
    # pip-audit of the release's locked dependencies: known vulnerabilities allowed.
    max_vulnerabilities: int = Field(0, ge=0)
    # Where the vulnerability database cannot be reached (or does not know a dependency) the
    # audit is "not audited", never passed; that fails the gate unless this says otherwise.
    allow_unaudited: bool = False
    audit_timeout_s: int = Field(120, ge=5, le=1800)
    # The authorization matrix on the live environment (wtx.gate_authz): every staff page and
    # staff API operation refused to anonymous users, admin-only pages to a box-office clerk.
    authz: bool = False
    # schemathesis over the live public OpenAPI document: generated cases per operation
    # (0: not run) and the operations allowed to answer 5xx.
    schemathesis_max_examples: int = Field(0, ge=0, le=1000)
    schemathesis_max_server_errors: int = Field(0, ge=0)
    schemathesis_timeout_s: int = Field(300, ge=10, le=3600)

    @field_validator("allow")
    @classmethod
    def _ids(cls, v: list[str]) -> list[str]:
        for item in v:
            if not re.fullmatch(r"[a-z_]+\.[CEWI]\d{3}", item):
                raise ValueError(f"{item!r} is not a system check id such as 'security.W004'")
        return v


class SmokeGate(_Gate):
    """A patron's first requests through the front door: each answers 200 in time."""

    check: Literal["smoke"]
    paths: list[str] = Field(["/healthz", "/readyz", "/", "/api/v1/events"], min_length=1)
    max_ms: int = Field(2000, ge=1, le=120_000)


class MigrationsGate(_Gate):
    """Migration rehearsal: the release's migrations on a fresh, scrubbed copy of `source`'s
    data (a scratch database in this environment's cluster), timed; then the previous
    release this environment ran reads every model and serves `paths` on the migrated
    schema; and the linter for dangerous migrations over the migrations `source` has not
    applied yet."""

    check: Literal["migrations"]
    source: str = "prd"
    max_seconds: float = Field(120, gt=0, le=7200)
    # New migrations the linter lets through, by name (app.0007_name): each one a decision
    # written down next to the gate (e.g. the contract step after every reader is gone).
    allow: list[str] = []
    paths: list[str] = Field(["/readyz", "/", "/api/v1/events"], min_length=1)

    @field_validator("allow")
    @classmethod
    def _migration_names(cls, v: list[str]) -> list[str]:
        for item in v:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*\.\w+", item):
                raise ValueError(f"{item!r} is not a migration name such as 'sales.0007_drop_notes'")
        return v

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [_safe_url_path(p) for p in v]


class IntegrationGate(_Gate):
    """The no-oversell proof on the environment's own database and release: `buyers` buyers
    at once for the `seats` seats of a scratch performance, one ticket each."""

    check: Literal["integration"]
    buyers: int = Field(32, ge=2, le=256)
    seats: int = Field(8, ge=1, le=1000)
    max_oversold: int = Field(0, ge=0)
    max_server_errors: int = Field(0, ge=0)
    request_timeout_s: int = Field(30, ge=1, le=600)
    # The integration suites (pytest paths of the checkout at the release's commit) run with
    # the release's installed code against an empty scratch database in this environment's
    # own PostgreSQL cluster; at most max_failures may fail ([] runs none).
    suites: list[str] = []
    max_failures: int = Field(0, ge=0)
    suites_timeout_s: int = Field(900, ge=10, le=7200)
    # The browser journeys (pytest paths of the checkout's end-to-end tests, Chromium headless)
    # the same way, on a scratch database of their own; at most journeys_max_failures may fail.
    journeys: list[str] = []
    journeys_max_failures: int = Field(0, ge=0)
    journeys_timeout_s: int = Field(600, ge=10, le=7200)


class PerformanceGate(_Gate):
    """A short locust on-sale scenario against the front door: patrons browse and buy."""

    check: Literal["performance"]
    users: int = Field(8, ge=1, le=200)
    spawn_rate: float = Field(4, gt=0, le=100)
    run_seconds: int = Field(20, ge=5, le=600)
    seats: int = Field(1000, ge=1, le=100_000)
    p95_ms: int = Field(1000, ge=1, le=120_000)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    max_oversold: int = Field(0, ge=0)
    # Against the newest passing run of another release in the same environment: an endpoint
    # whose median is over max_slowdown times that run's, by at least slowdown_min_ms, fails.
    max_slowdown: float = Field(3.0, ge=1, le=1000)
    slowdown_min_ms: int = Field(50, ge=0, le=120_000)


class VerifyGate(_Gate):
    """Post-deploy verification from the app's own Prometheus /metrics: two scrapes through
    the front door (from a monitoring network) `window_s` apart while light smoke traffic
    runs; the window's 5xx share and p95 latency come from the counter and histogram deltas."""

    check: Literal["verify"]
    window_s: int = Field(20, ge=1, le=600)
    max_error_rate: float = Field(0.01, ge=0, le=1)
    p95_ms: int = Field(1500, ge=1, le=120_000)
    paths: list[str] = Field(["/", "/api/v1/events"], min_length=1)
    interval_ms: int = Field(250, ge=10, le=10_000)  # pause between two rounds of the paths
    min_requests: int = Field(1, ge=1)  # fewer counted in the window: nothing was verified

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [_safe_url_path(p) for p in v]


GATE_MODELS: dict[str, type[_Gate]] = {
    "lint": LintGate,
    "unit": UnitGate,
    "integration-minimal": IntegrationMinimalGate,
    "security": SecurityGate,
    "smoke": SmokeGate,
    "integration": IntegrationGate,
    "migrations": MigrationsGate,
    "performance": PerformanceGate,
    "verify": VerifyGate,
}
Gate = Annotated[
    LintGate | UnitGate | IntegrationMinimalGate | SecurityGate | SmokeGate | MigrationsGate | IntegrationGate
    | PerformanceGate | VerifyGate,
    Field(discriminator="check"),
]


class Environment(_Strict):
    name: str
    description: str = ""
    hostnames: list[str] = []
    url: str = ""
    debug: bool = False
    promote_from: str | None = None
    # The checks a release must pass here before it may be promoted out of here (in order).
    gates: list[Gate] = []
    # A person must approve a release (`wtx approve`) before it is promoted into here.
    approval: bool = False
    secrets: list[str] = []
    backup_of: str | None = None
    access: Access
    database: Database
    logging: Logging = Logging()
    app: App
    failover: Failover = Failover()
    front_door: FrontDoor = Field(default_factory=lambda: FrontDoor.model_validate({}))
    # This environment's own warm window (None: [defaults] rollback_warm_s).
    rollback_warm_s: int | None = Field(None, ge=0, le=86_400)
    # The host its app servers run on (None: [defaults] host).
    host: str | None = None
    backups: Backups | None = None

    @field_validator("promote_from", "backup_of", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        if _CONTROL.search(v) or len(v) > 300:
            raise ValueError("must be one line of at most 300 characters (no newlines or control characters)")
        return v

    @field_validator("url")
    @classmethod
    def _url_characters(cls, v: str) -> str:
        # urlsplit() silently drops tabs and newlines, so the checks on its parts cannot see
        # them; the URL lands in HAProxy's redirect line and the app's env file as written.
        if v and not re.fullmatch(r"[A-Za-z0-9.:/-]+", v):
            raise ValueError(f"{v!r} may hold only letters, digits and '.:/-' (scheme://host[:port])")
        return v

    @field_validator("hostnames")
    @classmethod
    def _hostnames(cls, v: list[str]) -> list[str]:
        for host in v:
            if not _HOSTNAME.fullmatch(host):
                raise ValueError(f"{host!r} is not a lower-case hostname")
        if len(set(v)) != len(v):
            raise ValueError("lists a hostname twice")
        return v

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in KNOWN_SECRETS:
                hint = _did_you_mean(name, KNOWN_SECRETS)
                raise ValueError(f"unknown secret {name!r}{hint}; known: {', '.join(KNOWN_SECRETS)}")
        if len(set(v)) != len(v):
            raise ValueError("lists a secret twice")
        return v

    @field_validator("gates", mode="before")
    @classmethod
    def _gates(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        seen: set[str] = set()
        for i, item in enumerate(v):
            if isinstance(item, str):
                raise ValueError(
                    f"gate {i + 1} is a bare name ({item!r}): declare it as a check with its "
                    f"thresholds, e.g. {{ check = \"{item}\" }} (see docs/pipeline.md)")
            if not isinstance(item, dict):
                raise ValueError(f"gate {i + 1} must be a table such as {{ check = \"unit\" }}")
            check = item.get("check")
            if not isinstance(check, str) or check not in GATE_MODELS:
                hint = _did_you_mean(str(check), GATE_MODELS) if isinstance(check, str) else ""
                raise ValueError(f"gate {i + 1}: unknown check {check!r}{hint}; known: {', '.join(GATE_MODELS)}")
            if check in seen:
                raise ValueError(f"gate {i + 1}: check {check!r} is listed twice")
            seen.add(check)
        return v

    # -- conveniences for renderers and backends -------------------------------------------
    @property
    def is_backup(self) -> bool:
        return self.backup_of is not None

    @property
    def promoted_only(self) -> bool:
        """Releases enter only through promotion (`wtx promote`), never a direct deploy or a
        fresh build. A backup follows its primary's deploys instead."""
        return self.promote_from is not None and not self.is_backup

    def gate(self, check: str) -> Any:
        return next((g for g in self.gates if g.check == check), None)

    @property
    def secrets_owner(self) -> str:
        """Whose secrets.env this environment uses: its own, or its primary's."""
        return self.backup_of or self.name

    @property
    def server_maxconn(self) -> int:
        """Requests HAProxy sends one app server at a time: never more than it has workers,
        unless the spec says otherwise."""
        return self.front_door.maxconn_per_server or self.app.replicas

    def app_port(self, slot: int) -> int:
        if not 0 <= slot < APP_PORT_SLOTS:
            raise ValueError(f"slot {slot} outside 0..{APP_PORT_SLOTS - 1}")
        return self.app.base_port + slot

    @property
    def app_ports(self) -> range:
        return range(self.app.base_port, self.app.base_port + APP_PORT_SLOTS)


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    defaults: Defaults
    environments: dict[str, Environment]
    path: Path
    hosts: dict[str, Host] = Field(default_factory=lambda: dict(DEFAULT_HOSTS))

    def env(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.environments)
            raise SpecError(
                f"{self.path}: no environment {name!r}{_did_you_mean(name, self.environments)} "
                f"(known: {known})"
            ) from None

    def names(self) -> list[str]:
        return list(self.environments)

    def primary_for(self, env: Environment) -> Environment:
        """The environment whose hostnames, URL and secrets a backup serves with."""
        return self.environments[env.backup_of] if env.backup_of else env

    def backup_for(self, env: Environment) -> Environment | None:
        return self.environments[env.failover.backup] if env.failover.mode == "backup" else None

    def front_door_ride_through_s(self, env: Environment) -> int:
        """The longest database ride-through of the servers behind `env`'s front door (its
        own and its backup's): how long a request there may wait for the database."""
        primary = self.primary_for(env)
        backup = self.backup_for(primary)
        return max(primary.database.ride_through_s, backup.database.ride_through_s if backup else 0)

    def server_timeout_s(self, env: Environment) -> int:
        """HAProxy's `timeout server` for `env`'s servers: a request riding through is slow, not dead."""
        return max(30, self.front_door_ride_through_s(env) + SERVER_AFTER_RIDE_THROUGH_S)

    def host_name(self, env: Environment) -> str:
        """The host `env`'s app servers run on."""
        return env.host or self.defaults.host

    def host_of(self, env: Environment) -> Host:
        return self.hosts[self.host_name(env)]

    @property
    def front_door_host_name(self) -> str:
        return self.defaults.front_door_host or self.defaults.host

    @property
    def front_door_host(self) -> Host:
        return self.hosts[self.front_door_host_name]

    def database_ha(self, env: Environment) -> DatabaseHA | None:
        """The HA database `env` uses: its own, or (a backup) its primary's."""
        return self.primary_for(env).database.ha

    def rollback_warm_s(self, env: Environment) -> int:
        """How long the slot leaving traffic stays warm in `env` (its own value, else the default)."""
        return self.defaults.rollback_warm_s if env.rollback_warm_s is None else env.rollback_warm_s


# --------------------------------------------------------------------------------------------
# Locating the project


def project_root(start: Path | None = None) -> Path:
    """The checkout: WTX_ROOT if set, else the nearest directory (from `start`, the current
    directory, then this file) that holds deploy/environments.toml."""
    if os.environ.get("WTX_ROOT"):
        return Path(os.environ["WTX_ROOT"]).resolve()
    candidates = [start or Path.cwd(), Path(__file__).resolve().parent]
    for origin in candidates:
        for directory in [origin.resolve(), *origin.resolve().parents]:
            if (directory / SPEC_RELATIVE_PATH).is_file():
                return directory
    raise SpecError(
        f"cannot find {SPEC_RELATIVE_PATH} above {candidates[0]}; run wtx inside the checkout "
        "or set WTX_ROOT"
    )


def var_dir(root: Path | None = None) -> Path:
    """Runtime state: WTX_VAR_DIR if set, else <root>/var."""
    if os.environ.get("WTX_VAR_DIR"):
        return Path(os.environ["WTX_VAR_DIR"]).resolve()
    return (root or project_root()) / "var"


# --------------------------------------------------------------------------------------------
# Loading


def load_spec(path: Path | None = None) -> Spec:
    path = Path(path) if path else project_root() / SPEC_RELATIVE_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], path: Path) -> Spec:
    """Validate an already-parsed spec document (tests build variants in memory)."""
    unknown = set(raw) - {"defaults", "environments", "hosts"}
    if unknown:
        raise SpecError(f"{path}: unknown top-level table(s) {sorted(unknown)}; expected [defaults], [hosts] and [environments.*]")
    hosts = dict(DEFAULT_HOSTS)
    if "hosts" in raw:
        if not isinstance(raw["hosts"], dict) or not raw["hosts"]:
            raise SpecError(f"{path}: [hosts] must name at least one host, e.g. local = {{ address = \"127.0.0.1\" }}")
        hosts = {}
        for hname, hbody in raw["hosts"].items():
            if not _ENV_NAME.fullmatch(hname):
                raise SpecError(f"{path}: host {hname!r}: the name must be lower-case letters, digits and '-' (at most 20)")
            try:
                hosts[hname] = Host.model_validate(hbody)
            except ValidationError as exc:
                raise SpecError(_describe(path, f"host {hname!r}", exc)) from None
        netns = [h.address for h in hosts.values() if h.runner == "netns"]
        if len(set(netns)) != len(netns):
            raise SpecError(f"{path}: [hosts]: two netns hosts share an address; each needs its own")
    try:
        defaults = Defaults.model_validate(raw.get("defaults", {}))
    except ValidationError as exc:
        raise SpecError(_describe(path, "[defaults]", exc)) from None

    envs_raw = raw.get("environments")
    if not isinstance(envs_raw, dict) or not envs_raw:
        raise SpecError(f"{path}: no [environments.<name>] tables")
    environments: dict[str, Environment] = {}
    for name, body in envs_raw.items():
        where = f"environment {name!r}"
        if not _ENV_NAME.fullmatch(name):
            raise SpecError(f"{path}: {where}: the name must be lower-case letters, digits and '-' (at most 20)")
        if not isinstance(body, dict):
            raise SpecError(f"{path}: {where}: must be a table")
        if "name" in body:
            raise SpecError(f"{path}: {where}: field 'name': do not set it, the table key is the name")
        try:
            environments[name] = Environment.model_validate({"name": name, **body})
        except ValidationError as exc:
            raise SpecError(_describe(path, where, exc)) from None

    spec = Spec(defaults=defaults, environments=environments, path=path, hosts=hosts)
    _check_relations(spec)
    return spec


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_FIELDS_BY_MODEL: dict[str, type[BaseModel]] = {
    "": Environment,
    "access": Access,
    "database": Database,
    "logging": Logging,
    "app": App,
    "failover": Failover,
    "front_door": FrontDoor,
    "health_check": HealthCheck,
    "ha": DatabaseHA,
    "members": HAMember,
    "etcd": EtcdMember,
    **GATE_MODELS,
}


def _describe(path: Path, where: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) >= 3 and loc[0] == "gates" and loc[1].isdigit():
            # gates.<index>.<check>.<param> -> gates[<n>] (check "<check>").<param>
            loc = [f"gates[{int(loc[1]) + 1}] (check {loc[2]!r})", *loc[3:]]
            field = ".".join(loc)
            if err["type"] == "extra_forbidden":
                gate_model = GATE_MODELS.get(str(err["loc"][2]))
                hint = _did_you_mean(loc[-1], gate_model.model_fields) if gate_model else ""
                lines.append(f"{path}: {where}: field '{field}': unknown parameter{hint}")
                continue
        field = ".".join(loc) or "(table)"
        if err["type"] == "extra_forbidden":
            parent = loc[-2] if len(loc) > 1 else ""
            model = Defaults if (where == "[defaults]" and not parent) else _FIELDS_BY_MODEL.get(parent)
            hint = _did_you_mean(loc[-1], model.model_fields) if model else ""
            msg = f"unknown field{hint}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {where}: field '{field}': {msg}")
    return "\n".join(lines)


def _fail(spec: Spec, env: str | None, field: str, msg: str) -> None:
    where = f"environment {env!r}" if env else "[defaults]"
    raise SpecError(f"{spec.path}: {where}: field '{field}': {msg}")


def _check_relations(spec: Spec) -> None:
    """Rules that span fields or environments (pydantic checks each value on its own)."""
    envs = spec.environments
    d = spec.defaults
    front_ports = {"haproxy_http_port": d.haproxy_http_port, "haproxy_https_port": d.haproxy_https_port,
                   "haproxy_stats_port": d.haproxy_stats_port}
    if len(set(front_ports.values())) != len(front_ports):
        _fail(spec, None, "haproxy_*_port", "the HTTP, HTTPS and stats ports must differ")

    for field_name, hname in (("host", d.host), ("front_door_host", d.front_door_host)):
        if hname is not None and hname not in spec.hosts:
            _fail(spec, None, field_name, f"names unknown host {hname!r}{_did_you_mean(hname, spec.hosts)} (known: {', '.join(spec.hosts)})")
    for name, env in envs.items():
        if env.host is not None and env.host not in spec.hosts:
            _fail(spec, name, "host", f"names unknown host {env.host!r}{_did_you_mean(env.host, spec.hosts)} (known: {', '.join(spec.hosts)})")

    # Every port anything listens on, with who claims it.
    claimed: dict[int, str] = {port: f"[defaults] {key}" for key, port in front_ports.items()}
    hostnames: dict[str, str] = {}
    databases: dict[tuple[str, int | None, str], str] = {}

    for name, env in envs.items():
        # -- relations between environments
        if env.promote_from is not None:
            if env.promote_from == name:
                _fail(spec, name, "promote_from", "an environment cannot be promoted from itself")
            if env.promote_from not in envs:
                _fail(spec, name, "promote_from", f"names unknown environment {env.promote_from!r}{_did_you_mean(env.promote_from, envs)} (known: {', '.join(envs)})")
        if env.backup_of is not None:
            primary = envs.get(env.backup_of)
            if primary is None or env.backup_of == name:
                _fail(spec, name, "backup_of", f"names unknown environment {env.backup_of!r}{_did_you_mean(env.backup_of, envs)}")
            assert primary is not None
            if primary.failover.mode != "backup" or primary.failover.backup != name:
                _fail(spec, name, "backup_of", f"{env.backup_of!r} must declare failover = {{ mode = \"backup\", backup = \"{name}\" }}")
            if primary.is_backup:
                _fail(spec, name, "backup_of", f"{env.backup_of!r} is itself a backup")
            if env.secrets:
                _fail(spec, name, "secrets", f"a backup uses its primary's secrets ({env.backup_of!r}); list none")
            if env.hostnames or env.url:
                _fail(spec, name, "hostnames", f"a backup serves {env.backup_of!r}'s hostnames and URL; leave hostnames and url empty")
            if env.database.data_policy != primary.database.data_policy:
                _fail(spec, name, "database.data_policy", f"must equal {env.backup_of!r}'s ({primary.database.data_policy!r})")
            if env.access.tls != primary.access.tls:
                _fail(spec, name, "access.tls", f"must equal {env.backup_of!r}'s: it serves the same clients")
            if env.failover.mode != "none":
                _fail(spec, name, "failover.mode", "a backup has no backup of its own")
        _check_gates(spec, name, env)
        if env.failover.mode == "backup":
            backup = envs.get(env.failover.backup)
            if backup is None or env.failover.backup == name:
                _fail(spec, name, "failover.backup", f"names unknown environment {env.failover.backup!r}{_did_you_mean(env.failover.backup, envs)}")
            assert backup is not None
            if backup.backup_of != name:
                _fail(spec, name, "failover.backup", f"{env.failover.backup!r} must declare backup_of = \"{name}\"")
        elif env.failover.backup:
            _fail(spec, name, "failover.backup", "set only with mode = \"backup\"")

        # -- endpoint
        if not env.is_backup:
            if not env.hostnames:
                _fail(spec, name, "hostnames", "at least one hostname is required")
            _check_url(spec, name, env)
        for host in env.hostnames:
            if host in hostnames:
                _fail(spec, name, "hostnames", f"{host!r} is already served by {hostnames[host]!r}")
            hostnames[host] = name

        # -- access
        if env.access.basic_auth:
            if not env.access.basic_auth_user:
                _fail(spec, name, "access.basic_auth_user", "required when basic_auth = true")
            if "BASIC_AUTH_PASSWORD" not in _owned_secrets(spec, env):
                _fail(spec, name, "secrets", "basic_auth = true needs BASIC_AUTH_PASSWORD in secrets")
        elif env.access.basic_auth_user:
            _fail(spec, name, "access.basic_auth_user", "set only with basic_auth = true")
        if env.access.tls_certificate and not env.access.tls:
            _fail(spec, name, "access.tls_certificate", "set only with tls = true")
        _check_front_door(spec, name, env)

        # -- secrets every running environment must own
        owned = _owned_secrets(spec, env)
        for required in ("SECRET_KEY", "STAFF_API_TOKEN_KEY"):
            if required not in owned:
                _fail(spec, name, "secrets", f"must include {required} (each environment signs with its own)")
        _check_simulated_payments(spec, name, env)
        _check_email(spec, name, env)
        if env.app.payments == "stripe":
            for required in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
                if required not in owned:
                    _fail(spec, name, "secrets", f"payments = \"stripe\" needs {required}")

        # -- database
        db = env.database
        if db.engine == "postgresql":
            if not db.role:
                _fail(spec, name, "database.role", "required for engine = \"postgresql\"")
            if db.port is None:
                _fail(spec, name, "database.port", "required for engine = \"postgresql\" (each environment runs its own cluster)")
            if "DB_PASSWORD" not in owned:
                _fail(spec, name, "secrets", "engine = \"postgresql\" needs DB_PASSWORD")
            if db.ha is not None:
                if env.is_backup:
                    _fail(spec, name, "database.ha", f"a backup uses {env.backup_of!r}'s database (its copy is a member "
                          f"of {env.backup_of!r}'s database.ha); declare ha there")
                for field_name, msg in ha_problems(db.ha, spec.hosts):
                    _fail(spec, name, field_name, msg)
        else:
            if db.ha is not None:
                _fail(spec, name, "database.ha", "needs engine = \"postgresql\"")
            if db.role or db.port is not None:
                _fail(spec, name, "database.port" if db.port is not None else "database.role", "not used with engine = \"sqlite\"")
            if db.data_policy == "real":
                _fail(spec, name, "database.engine", "data_policy = \"real\" needs engine = \"postgresql\"")
            if db.ride_through_s:
                _fail(spec, name, "database.ride_through_s", "not used with engine = \"sqlite\" (a file never fails over)")
        if env.backups is not None:
            _check_backups(spec, name, env)
        if db.data_policy == "real" and env.debug:
            _fail(spec, name, "debug", "an environment with real data (data_policy = \"real\") never shows debug pages")
        key = (db.engine, db.port, db.name)
        if key in databases:
            other = databases[key]
            if not (env.backup_of == other or envs[other].backup_of == name):
                _fail(spec, name, "database", f"shares {other!r}'s database; environments are isolated")
        else:
            databases[key] = name

        # -- ports
        ports = [(p, f"environment {name!r} app ports") for p in env.app_ports]
        if db.port is not None and not (env.is_backup and envs[env.secrets_owner].database.port == db.port):
            ports.append((db.port, f"environment {name!r} database.port"))
        if db.ha is not None:
            # Hosts of the this-machine runner share one address: every listener needs its own port.
            ports += [(port, f"environment {name!r} {what}") for _addr, port, what in ha_ports(db.ha, spec.hosts)]
        for port, owner in ports:
            if port in claimed:
                field = ("database.port" if owner.endswith("database.port")
                         else "database.ha" if "database.ha" in owner else "app.base_port")
                _fail(spec, name, field, f"port {port} is already used by {claimed[port]} (app servers use base_port .. base_port+{APP_PORT_SLOTS - 1})")
            claimed[port] = owner

    _check_promotion_cycles(spec)


def _check_backups(spec: Spec, name: str, env: Environment) -> None:
    b = env.backups
    assert b is not None
    if env.database.engine != "postgresql":
        _fail(spec, name, "backups", "pgBackRest backs up PostgreSQL: needs database.engine = \"postgresql\"")
    if env.is_backup:
        _fail(spec, name, "backups", f"a backup environment uses {env.backup_of!r}'s database: declare backups there")
    if b.host not in spec.hosts:
        _fail(spec, name, "backups.host", f"names unknown host {b.host!r}{_did_you_mean(b.host, spec.hosts)} (known: {', '.join(spec.hosts)})")
    if b.host == spec.host_name(env):
        _fail(spec, name, "backups.host", f"{b.host!r} is the host the environment runs on; the repository must live on another")
    if b.every_h >= b.max_age_h:
        _fail(spec, name, "backups.every_h", f"must be less than max_age_h ({b.max_age_h}): a backup is due before it is stale")


def _check_gates(spec: Spec, name: str, env: Environment) -> None:
    """Promotion is only as strong as its gates: an environment releases are promoted out of
    checks something; a backup has none (it runs its primary's release)."""
    if env.is_backup:
        if env.gates:
            _fail(spec, name, "gates", f"a backup runs {env.backup_of!r}'s release and has no gates of its own")
        if env.approval:
            _fail(spec, name, "approval", f"a backup follows the deploys of {env.backup_of!r}; approve {env.backup_of!r} instead")
    elif env.approval and env.promote_from is None:
        _fail(spec, name, "approval", "approval guards a promotion into this environment; set promote_from too")
    downstream = [n for n, e in spec.environments.items() if e.promote_from == name and not e.is_backup]
    if downstream and not env.gates:
        _fail(spec, name, "gates", f"{', '.join(repr(d) for d in downstream)} is promoted from here: declare at "
              "least one gate (a promotion that checks nothing is not a gate)")
    for gate in env.gates:
        if isinstance(gate, IntegrationMinimalGate) and gate.seed_demo and env.database.data_policy != "demo":
            _fail(spec, name, "gates", f"check 'integration-minimal': seed_demo = true needs data_policy = \"demo\" "
                  f"(this environment's is {env.database.data_policy!r})")
        if isinstance(gate, PerformanceGate) and gate.users > env.front_door.orders_per_window:
            _fail(spec, name, "gates", f"check 'performance': users = {gate.users} each buy once from one address, "
                  f"more than front_door.orders_per_window ({env.front_door.orders_per_window}): they would meet 429s")
        if isinstance(gate, IntegrationGate) and (gate.suites or gate.journeys) and env.database.engine != "postgresql":
            _fail(spec, name, "gates", "check 'integration': suites and journeys run on a scratch database of this "
                  "environment's PostgreSQL cluster: they need engine = \"postgresql\"")
        if isinstance(gate, VerifyGate) and not (env.logging.metrics and env.logging.monitoring_networks):
            _fail(spec, name, "gates", "check 'verify' reads /metrics through the front door: it needs "
                  "logging.metrics = true and a logging.monitoring_networks entry")
        if isinstance(gate, MigrationsGate):
            source = spec.environments.get(gate.source)
            if source is None or gate.source == name:
                _fail(spec, name, "gates", f"check 'migrations': source {gate.source!r} must name another environment"
                      f"{_did_you_mean(gate.source, spec.environments)}")
            assert source is not None
            if source.database.engine != "postgresql" or env.database.engine != "postgresql":
                _fail(spec, name, "gates", "check 'migrations' copies a PostgreSQL database into this environment's "
                      "cluster: both need engine = \"postgresql\"")


def _check_simulated_payments(spec: Spec, name: str, env: Environment) -> None:
    """Real data never meets the simulated card processor, unless the spec declares a local
    demo in so many words (and then the app marks every page, email and ticket TEST)."""
    app = env.app
    real = env.database.data_policy == "real"
    if real and app.payments == "test" and app.simulated_payments_on_real_data != SIMULATED_PAYMENTS_DEMO_PHRASE:
        _fail(spec, name, "app.payments",
              "an environment with real data (data_policy = \"real\") never takes simulated card payments: "
              "use payments = \"stripe\"; only a local demo may keep \"test\", by setting "
              f"app.simulated_payments_on_real_data = \"{SIMULATED_PAYMENTS_DEMO_PHRASE}\"")
    if app.simulated_payments_on_real_data and not (real and app.payments == "test"):
        _fail(spec, name, "app.simulated_payments_on_real_data",
              "set only with payments = \"test\" on real data (data_policy = \"real\")")
    if env.backup_of is not None:
        primary = spec.environments[env.backup_of].app
        if (app.payments, app.simulated_payments_on_real_data) != (primary.payments, primary.simulated_payments_on_real_data):
            _fail(spec, name, "app.payments",
                  f"must equal {env.backup_of!r}'s payments and simulated_payments_on_real_data: it takes the same orders")


def _check_email(spec: Spec, name: str, env: Environment) -> None:
    """A copy of prd's patrons (scrubbed or not) never mails the world: its email stays in a
    capture (file, console) or goes to a catch-all relay that delivers nothing onward."""
    app = env.app
    if env.database.data_policy == "scrubbed-copy-of-prd" and app.email == "smtp" and not app.email_catch_all_relay:
        _fail(spec, name, "app.email",
              "an environment holding a copy of prd's data (data_policy = \"scrubbed-copy-of-prd\") may not send "
              "real email: use email = \"file\", or declare app.email_catch_all_relay = \"host:port\" "
              "(a relay that keeps every message)")
    if app.email_catch_all_relay and app.email != "smtp":
        _fail(spec, name, "app.email_catch_all_relay", "set only with email = \"smtp\"")


def _check_front_door(spec: Spec, name: str, env: Environment) -> None:
    fd = env.front_door
    own = {"maxconn_per_server"}
    if env.is_backup and fd.model_dump(exclude=own) != FrontDoor.model_validate({}).model_dump(exclude=own):
        _fail(spec, name, "front_door", f"a backup's traffic goes through {env.backup_of!r}'s front door; set only maxconn_per_server here")
    if fd.maxconn_per_server and fd.maxconn_per_server > env.app.replicas * 4:
        _fail(spec, name, "front_door.maxconn_per_server",
              f"{fd.maxconn_per_server} is more than the server's {env.app.replicas} worker(s) can take "
              "(at most 4 per worker; 0 means one per worker)")
    if env.logging.monitoring_networks and not env.logging.metrics:
        _fail(spec, name, "logging.monitoring_networks", "set only with metrics = true")
    if not env.is_backup:
        # The front door queues for the environment's servers and its backup's.
        ride = spec.front_door_ride_through_s(env)
        rider = next(e for e in (env, spec.backup_for(env)) if e is not None and e.database.ride_through_s == ride)
        floor = ride + QUEUE_AFTER_RIDE_THROUGH_S
        if ride and fd.queue_timeout_s < floor:
            _fail(spec, name, "front_door.queue_timeout_s",
                  f"{fd.queue_timeout_s} s is shorter than {rider.name}'s database.ride_through_s "
                  f"({ride} s) + {QUEUE_AFTER_RIDE_THROUGH_S} s: requests queued behind "
                  f"ones riding through a failover would get the busy page; use at least {floor}")


def _owned_secrets(spec: Spec, env: Environment) -> list[str]:
    return spec.environments[env.secrets_owner].secrets


def _check_url(spec: Spec, name: str, env: Environment) -> None:
    parts = urlsplit(env.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(spec, name, "url", f"{env.url!r} is not an http(s) URL")
    if parts.hostname not in env.hostnames:
        _fail(spec, name, "url", f"host {parts.hostname!r} is not one of hostnames {env.hostnames}")
    want = "https" if env.access.tls else "http"
    if parts.scheme != want:
        _fail(spec, name, "url", f"must use {want}:// (access.tls = {str(env.access.tls).lower()})")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    front = spec.defaults.haproxy_https_port if env.access.tls else spec.defaults.haproxy_http_port
    if port not in (front, 443 if env.access.tls else 80):
        _fail(spec, name, "url", f"port {port} is not HAProxy's {want} port ({front})")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        _fail(spec, name, "url", "must be scheme://host[:port] only")


def _check_promotion_cycles(spec: Spec) -> None:
    for name in spec.environments:
        seen = [name]
        current = spec.environments[name].promote_from
        while current is not None:
            if current in seen:
                _fail(spec, name, "promote_from", f"promotion goes round in a circle: {' <- '.join([*seen, current])}")
            seen.append(current)
            current = spec.environments[current].promote_from
