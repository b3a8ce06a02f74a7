"""The environment a release is started with (12-factor: release = build + config).

This mapping is the whole contract between wtx and the app's settings module
(src/wondertix/settings.py reads exactly these names). Everything comes from the spec and the
environment's secrets; nothing is computed anywhere else.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from urllib.parse import quote, urlsplit

from wtx.spec import Environment, Spec

EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}
# HAProxy reaches the app servers from loopback: only it may set X-Forwarded-For/-Proto.
TRUSTED_PROXY_NETWORKS = ("127.0.0.1/32", "::1/128")
# HSTS: a year with a real certificate; short with the local self-signed one so a browser
# on a developer machine is not pinned to HTTPS for *.localhost for long.
HSTS_REAL_CERT_SECONDS = 31_536_000
HSTS_SELF_SIGNED_SECONDS = 300


def env_dir(env_name: str, var_dir: Path) -> Path:
    """Everything one environment writes at run time: logs, mail, metrics, its SQLite file."""
    return Path(var_dir) / "envs" / env_name


def log_dir(env_name: str, var_dir: Path) -> Path:
    return env_dir(env_name, var_dir) / "logs"


def default_database_url(env: Environment, spec: Spec, secrets: dict[str, str], var_dir: Path,
                         *, host: str | None = None) -> str:
    """The database URL for `env` under the local layout (a backend may pass its own host).
    An HA database is reached at its entry point, HAProxy on the front door's host."""
    db = env.database
    if host is None:
        host = spec.front_door_host.address if spec.database_ha(env) else "127.0.0.1"
    if db.engine == "sqlite":
        path = env_dir(env.secrets_owner, var_dir) / "db" / f"{db.name}.sqlite3"
        return f"sqlite:///{path}"
    password = quote(secrets.get("DB_PASSWORD", ""), safe="")
    return f"postgres://{db.role}:{password}@{host}:{db.port}/{db.name}"


def _origins(url: str, hostnames: list[str]) -> list[str]:
    if not url:
        return []
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return [f"{parts.scheme}://{host}{port}" for host in hostnames]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def metrics_dir(env_name: str, slot: str, var_dir: Path) -> Path:
    """PROMETHEUS_MULTIPROC_DIR of one app slot of an environment."""
    return env_dir(env_name, var_dir) / "metrics" / slot


def app_environment(env: Environment, spec: Spec, secrets: dict[str, str], *, var_dir: Path,
                    database_url: str, release_dir: Path | None = None,
                    slot: str | None = None) -> dict[str, str]:
    """Every variable a release of `env` is started with (gunicorn, migrate, seed).

    `slot` is the app slot (blue, green) a server runs in; one-off commands (migrate, seed)
    have none and so no PROMETHEUS_MULTIPROC_DIR: their metrics die with them instead of
    landing among a serving slot's.
    """
    var_dir = Path(var_dir)
    primary = spec.primary_for(env)  # a backup answers for its primary's hostnames and URL
    own = env_dir(env.name, var_dir)
    email = env.app.email
    tls = env.access.tls

    values: dict[str, str] = {
        "DJANGO_SETTINGS_MODULE": "wondertix.settings",
        "WONDERTIX_ENV": env.name,
        "WONDERTIX_VAR_DIR": str(own),
        "DEBUG": _flag(env.debug),
        "SECRET_KEY": secrets["SECRET_KEY"],
        "STAFF_API_TOKEN_KEY": secrets["STAFF_API_TOKEN_KEY"],
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": ",".join([*primary.hostnames, "127.0.0.1", "localhost"]),
        "CSRF_TRUSTED_ORIGINS": ",".join(_origins(primary.url, primary.hostnames)),
        "SITE_URL": primary.url,
        "ALLOWED_SOURCE_NETWORKS": ",".join(env.access.allowed_networks),
        # The front door's host forwards every client's address (X-Forwarded-For).
        "TRUSTED_PROXY_NETWORKS": ",".join(dict.fromkeys(
            [*TRUSTED_PROXY_NETWORKS, f"{spec.front_door_host.address}/32"])),
        "LOG_FORMAT": env.logging.format,
        "LOG_LEVEL": env.logging.level,
        # No LOG_FILE: the app logs to stderr, which supervisord writes to logs/app-<slot>.log
        # and rotates (one writer per file; several workers appending to one file cannot
        # rotate it safely).
        "METRICS_ENABLED": _flag(env.logging.metrics),
        "PAYMENT_PROVIDER": env.app.payments,
        "DATA_IS_REAL": _flag(env.database.data_policy == "real"),
        "SIMULATED_PAYMENTS_ON_REAL_DATA": _flag(bool(env.app.simulated_payments_on_real_data)),
        "EMAIL_BACKEND": EMAIL_BACKENDS[email],
        "THEATER_TIME_ZONE": spec.defaults.theater_time_zone,
        "RETRY_AFTER_SECONDS": str(primary.front_door.retry_after_s),
        "DATABASE_RIDE_THROUGH_S": str(env.database.ride_through_s),
        # prd's and bak's database is an HA cluster: /metrics reports its replication.
        "DATABASE_REPLICATION_METRICS": _flag(spec.database_ha(env) is not None),
        "STATIC_ROOT": str((release_dir / "static") if release_dir else own / "static"),
        "SECURE_SSL_REDIRECT": "false",  # HAProxy redirects; health checks come over plain HTTP
        "SESSION_COOKIE_SECURE": _flag(tls),
        "CSRF_COOKIE_SECURE": _flag(tls),
        "SECURE_HSTS_SECONDS": str(
            (HSTS_REAL_CERT_SECONDS if env.access.tls_certificate else HSTS_SELF_SIGNED_SECONDS)
            if tls else 0
        ),
        "PYTHONUNBUFFERED": "1",
    }
    if env.logging.metrics and slot:
        # One directory per environment and slot, emptied whenever the slot starts: /metrics
        # never mixes two releases, or a previous run's dead workers.
        values["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(env.name, slot, var_dir))
    if email == "file":
        values["EMAIL_FILE_PATH"] = str(own / "mail")
    # Requests only queue their emails and the environment's jobs program (`<env>-jobs`) sends
    # them (docs/operations.md): a real mail server can be slow, and a confirmation's ticket
    # PDF and calendar file cost about 10 ms of CPU per order, which the sale path's budget
    # (docs/sale-path.md) does not have.
    values["OUTBOX_SEND_ON_COMMIT"] = "false"
    if email == "smtp" and env.app.email_catch_all_relay:
        host, _, port = env.app.email_catch_all_relay.rpartition(":")
        values["EMAIL_HOST"], values["EMAIL_PORT"] = host, port
    if env.app.payments == "stripe":
        for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
            values[name] = secrets[name]
        if env.app.stripe_terminal_location:
            values["STRIPE_TERMINAL_LOCATION"] = env.app.stripe_terminal_location
    return values


def secret_names_in(values: dict[str, str], secrets: dict[str, str]) -> set[str]:
    """Which variables carry a secret value (whole or embedded, e.g. in DATABASE_URL)."""
    hidden = [v for v in secrets.values() if v]
    return {k for k, v in values.items() if any(s in v or quote(s, safe="") in v for s in hidden)}


def render_envfile(values: dict[str, str]) -> str:
    """KEY=value lines, shell-quoted (readable by `set -a; . file` and by `parse_envfile`)."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())


def parse_envfile(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, rest = line.partition("=")
        parsed = shlex.split(rest)
        values[key.strip()] = parsed[0] if parsed else ""
    return values


def write_envfile(path: Path, values: dict[str, str]) -> Path:
    """Write the env file 0600 (it holds secrets), replacing any previous one atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_envfile(values))
    os.replace(tmp, path)
    return path
