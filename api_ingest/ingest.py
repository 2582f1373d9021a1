"""Committing validated records to Kafka, shared by the POST endpoints.

Each record is keyed (products by asin, categories by id) and sent as the model's own JSON, so Kafka holds
the canonical form of what was validated, never the raw body. The answer is 201 `Accepted` once Kafka has
committed; `ApiError` 422 when the Idempotency-Key was used for another body, 503 with Retry-After when
Kafka did not commit in time (then nothing of the request is visible to readers).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api_ingest import metrics
from api_ingest.errors import ApiError
from api_ingest.producer import DeliveryError, IdempotencyConflict, KeyedValue, RecordProducer
from lakehouse.schemas import Category, Product

log = logging.getLogger("api_ingest")

RETRY_AFTER_SECONDS = 5


class Accepted(BaseModel):
    """201: every record of the request is committed to `topic`."""

    accepted: int
    topic: str


def product_key(product: Product) -> str:
    return product.asin


def category_key(category: Category) -> str:
    return str(category.id)


def keyed(records: Sequence[BaseModel], key: Callable[[Any], str]) -> list[KeyedValue]:
    """(Kafka key, the record's JSON) per record, as UTF-8 bytes."""
    return [(key(record).encode(), record.model_dump_json().encode()) for record in records]


def fingerprint(body: bytes) -> str:
    """What an Idempotency-Key is bound to: the same key with another fingerprint is a conflict (422)."""
    return hashlib.sha256(body).hexdigest()


def kafka_unavailable() -> ApiError:
    return ApiError.single(
        503,
        "kafka_unavailable",
        "Kafka is unavailable; nothing of this request was accepted",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _send(
    producer: RecordProducer,
    topic: str,
    records: Sequence[KeyedValue],
    idempotency_key: str | None,
    body_fingerprint: str,
) -> tuple[int, str, bool]:
    """Commit; returns (accepted, topic, whether it replays an earlier commit of the same key)."""
    if idempotency_key is None and len(records) == 1:
        receipt = await producer.send_one(topic, records[0])
        return receipt.accepted, receipt.topic, False
    receipt, replayed = await run_in_threadpool(
        producer.send_records, topic, records, idempotency_key, body_fingerprint
    )
    return receipt.accepted, receipt.topic, replayed


async def commit(
    producer: RecordProducer,
    response: Response,
    topic: str,
    records: Sequence[KeyedValue],
    idempotency_key: str | None,
    body_fingerprint: str,
) -> Accepted:
    """Commit `records` to `topic` in one transaction (one record without a key: on its acknowledgement)."""
    kind = metrics.topic_kind(topic)
    try:
        with metrics.PRODUCE_SECONDS.labels(topic=kind).time():
            accepted, committed_topic, replayed = await _send(
                producer, topic, records, idempotency_key, body_fingerprint
            )
    except IdempotencyConflict as error:
        raise ApiError.single(422, "idempotency_key_reused", str(error), ["header", "idempotency-key"]) from None
    except DeliveryError as error:
        log.warning("%s", error)
        metrics.DELIVERY_ERRORS.labels(topic=kind).inc()
        raise kafka_unavailable() from error
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.RECORDS.labels(topic=kind).inc(accepted)
    return Accepted(accepted=accepted, topic=committed_topic)


async def commit_one(
    producer: RecordProducer,
    response: Response,
    topic: str,
    record: BaseModel,
    key: Callable[[Any], str],
    idempotency_key: str | None,
) -> Accepted:
    """One record; its Idempotency-Key is bound to the record's canonical JSON."""
    records = keyed([record], key)
    return await commit(producer, response, topic, records, idempotency_key, fingerprint(records[0][1]))


async def commit_batch(
    producer: RecordProducer,
    response: Response,
    topic: str,
    batch: Sequence[BaseModel],
    key: Callable[[Any], str],
    idempotency_key: str | None,
    body: bytes,
) -> Accepted:
    """A batch, all or nothing; its Idempotency-Key is bound to the body as sent."""
    return await commit(producer, response, topic, keyed(batch, key), idempotency_key, fingerprint(body))
