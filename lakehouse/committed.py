"""Reading Kafka as the streaming job does (read_committed), up to given end offsets.

One loop for the API's Idempotency-Key log, the consistency check and the tests' record counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from lakehouse.kafka_admin import KafkaAdmin, Offsets

# (topic, partition) -> the offset to read up to, exclusive
Ends = Offsets


def _consumer(bootstrap_servers: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )


def topic_ends(bootstrap_servers: str, topic: str, timeout_s: float) -> Ends:
    """The end of every partition of `topic` for a read_committed reader (its last stable offset), so
    read_committed() can reach it while another transaction is open; {} when the topic does not exist.

    Raises KafkaAdminError (a KafkaException) naming the servers and the topic after `timeout_s` seconds.
    """
    return KafkaAdmin(bootstrap_servers, timeout_s).end_offsets([topic], committed_only=True)


def read_committed(bootstrap_servers: str, ends: Ends, timeout_s: float, group: str) -> Iterator[Message]:
    """Every committed record below `ends`. Aborted records and transaction markers are skipped by the
    consumer, so a partition is done when its position (not a record) reaches its end."""
    consumer = _consumer(bootstrap_servers, group)
    wanted = {partition: end for partition, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for topic, p in wanted])
    deadline = time.monotonic() + timeout_s
    try:
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"could not read {bootstrap_servers} up to the end offsets {wanted} in {timeout_s:.0f}s"
                )
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is not None and error.fatal():
                    raise KafkaException(error)
                if error is None and message.offset() < wanted.get((message.topic(), message.partition()), 0):
                    yield message
            positions = consumer.position([TopicPartition(topic, p) for topic, p in wanted])
            wanted = {
                (tp.topic, tp.partition): wanted[(tp.topic, tp.partition)]
                for tp in positions
                if tp.offset < wanted[(tp.topic, tp.partition)]
            }
    finally:
        consumer.close()
