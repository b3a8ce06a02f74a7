"""Prometheus metrics. With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "wondertix_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "wondertix_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TICKETS_SOLD = Counter("wondertix_tickets_sold_total", "Tickets sold", ["channel"])
ORDERS = Counter("wondertix_orders_total", "Orders by outcome", ["outcome"])
HOLDS_CREATED = Counter("wondertix_holds_created_total", "Holds (carts) created")
HOLDS_ACTIVE = Gauge(
    "wondertix_holds_active", "Unexpired holds at the last scrape", multiprocess_mode="livemax"
)

# An HA database (DATABASE_REPLICATION_METRICS, ops/replication.py), read at most once per
# REPLICATION_METRICS_CACHE_S per worker; "mostrecent": the newest value any worker read.
DATABASE_SYNC_STANDBYS = Gauge(
    "wondertix_database_sync_standbys", "Streaming synchronous standbys of the database leader",
    multiprocess_mode="mostrecent",
)
DATABASE_STREAMING_REPLICAS = Gauge(
    "wondertix_database_streaming_replicas", "Streaming standbys of the database leader",
    multiprocess_mode="mostrecent",
)
DATABASE_REPLICATION_LAG = Gauge(
    "wondertix_database_replication_lag_bytes",
    "WAL bytes the furthest streaming standby has yet to replay", multiprocess_mode="mostrecent",
)
WAL_ARCHIVE_AGE = Gauge(
    "wondertix_wal_archive_age_seconds", "Seconds since the leader last archived a WAL segment",
    multiprocess_mode="mostrecent",
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
