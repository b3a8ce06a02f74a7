"""Logging configuration: JSON lines outside dev, each carrying the environment and request id."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from wondertix.ops.requestid import current_request_id


class ContextFilter(logging.Filter):
    """Stamps every record with the environment name and the current request id."""

    def __init__(self, env_name: str = "dev") -> None:
        super().__init__()
        self.env_name = env_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.env = self.env_name
        record.request_id = current_request_id() or "-"
        return True


_RESERVED = set(vars(logging.makeLogRecord({}))) | {"env", "request_id", "message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "env": getattr(record, "env", "-"),
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def build_logging_config(*, fmt: str, level: str, log_file: str, env_name: str) -> dict[str, Any]:
    handlers: dict[str, Any] = {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if fmt == "json" else "plain",
            "filters": ["context"],
        }
    }
    if log_file:
        handlers["file"] = {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": log_file,
            "formatter": "json",
            "filters": ["context"],
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter, "env_name": env_name}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "plain": {"format": "%(asctime)s %(levelname)s [%(env)s %(request_id)s] %(name)s: %(message)s"},
        },
        "handlers": handlers,
        "root": {"handlers": list(handlers), "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "django.request": {"level": "ERROR", "propagate": True},
        },
    }
