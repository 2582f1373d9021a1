"""Operations: GET /health (the process is up), GET /ready (Kafka is reachable, else 503), GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api_ingest.deps import SettingsDep
from api_ingest.errors import ApiError, ErrorBody
from api_ingest.ingest import RETRY_AFTER_SECONDS
from lakehouse.net import any_bootstrap_reachable

router = APIRouter(tags=["operations"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": ErrorBody, "description": "Kafka is unreachable (Retry-After)"}})
def ready(settings: SettingsDep) -> dict[str, str]:
    """The Kafka broker is reachable, so records can be accepted."""
    if not any_bootstrap_reachable(settings.kafka_bootstrap_servers):
        raise ApiError.single(
            503, "kafka_unreachable", "Kafka is unreachable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )
    return {"status": "ready"}


@router.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: requests by route and status, records per topic, produce latency, delivery errors."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
