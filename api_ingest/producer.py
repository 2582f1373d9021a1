"""One Kafka producer for the API process: keyed, acks=all, idempotent, and synchronous about delivery.

`send_records` returns only after the broker acknowledged every record, or raises DeliveryError; the API
turns that into 503, so a 2xx always means the records are durable in Kafka.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """The broker did not acknowledge a record in time."""


def encode_value(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


class RecordProducer:
    def __init__(self, bootstrap_servers: str, delivery_timeout_s: float = 10.0) -> None:
        self.delivery_timeout_s = delivery_timeout_s
        timeout_ms = int(delivery_timeout_s * 1000)
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            batch_size=256 * 1024,
            max_block_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            delivery_timeout_ms=timeout_ms + 5_000,
            key_serializer=str.encode,
            value_serializer=encode_value,
        )

    def send_records(self, topic: str, keyed_records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        deadline = time.monotonic() + self.delivery_timeout_s
        try:
            futures = [self._producer.send(topic, key=key, value=value) for key, value in keyed_records]
            self._producer.flush(timeout=max(0.0, deadline - time.monotonic()))
            for future in futures:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaError as error:
            raise DeliveryError(
                f"Kafka did not acknowledge {len(keyed_records)} record(s) on {topic}: {error}"
            ) from error

    def close(self) -> None:
        self._producer.flush(timeout=self.delivery_timeout_s)
        self._producer.close(timeout=self.delivery_timeout_s)
