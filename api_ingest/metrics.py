"""Prometheus metrics of the ingest API, served at GET /metrics (api_ingest/routes/operations.py).

Requests by route and status, records accepted per topic, produce (commit) latency, and delivery errors.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import Counter, Histogram

from lakehouse.settings import settings

REQUESTS = Counter("ingest_http_requests_total", "HTTP requests", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("ingest_http_request_seconds", "HTTP request duration", ["method", "route"])
RECORDS = Counter("ingest_records_total", "Records committed to Kafka", ["topic"])
PRODUCE_SECONDS = Histogram(
    "ingest_produce_seconds",
    "Time to commit one request's records to Kafka",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DELIVERY_ERRORS = Counter("ingest_delivery_errors_total", "Requests answered 503: Kafka did not commit", ["topic"])


def topic_kind(topic: str) -> str:
    """A bounded label: tests and deployments rename topics, the metric keeps two values."""
    return "products" if topic == settings.kafka_topic_products else "categories"


async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: counts and times every request by method, route template and status."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    REQUESTS.labels(request.method, path, str(response.status_code)).inc()
    REQUEST_SECONDS.labels(request.method, path).observe(time.perf_counter() - started)
    return response
