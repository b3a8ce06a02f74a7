"""The local backend: supervisord, HAProxy, PostgreSQL clusters and gunicorn on one machine."""

from wtx.backends import DeployError, DeployResult, EnvStatus
from wtx.backends.local.backend import LocalBackend

__all__ = ["DeployError", "DeployResult", "EnvStatus", "LocalBackend"]
