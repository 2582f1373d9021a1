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


class CommittedReader:
    """A read_committed consumer kept open between reads: each read goes on from where the last one stopped,
    so a reader that follows a growing topic fetches only what is new. Not thread-safe."""

    # Short, so a read ends as soon as the positions reach the ends instead of waiting for a full batch.
    CONSUME_WAIT_S = 0.002

    def __init__(self, bootstrap_servers: str, group: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._consumer = _consumer(bootstrap_servers, group)
        self._assigned: set[tuple[str, int]] = set()

    def read_to(self, ends: Ends, timeout_s: float) -> Iterator[Message]:
        """Every committed record below `ends` not read before, and those past them that came in the same
        fetches (for a reader that follows a topic, new records too); a partition read for the first time
        starts at its beginning. Aborted records and transaction markers are skipped by the consumer, so a
        partition is done when its position (not a record) reaches its end.

        Raises TimeoutError when the ends are not reached within `timeout_s` seconds, KafkaException on a
        fatal consumer error.
        """
        self._assign([partition for partition, end in ends.items() if end > 0])
        wanted = self._behind(ends)
        deadline = time.monotonic() + timeout_s
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"could not read {self.bootstrap_servers} up to the end offsets {wanted} in {timeout_s:.0f}s"
                )
            for message in self._consumer.consume(10_000, timeout=self.CONSUME_WAIT_S):
                error = message.error()
                if error is not None and error.fatal():
                    raise KafkaException(error)
                if error is None:
                    yield message
            wanted = self._behind(wanted)

    def close(self) -> None:
        self._consumer.close()

    def _assign(self, partitions: list[tuple[str, int]]) -> None:
        new = [
            TopicPartition(topic, p, OFFSET_BEGINNING) for topic, p in partitions if (topic, p) not in self._assigned
        ]
        if new:
            self._consumer.incremental_assign(new)
            self._assigned.update((tp.topic, tp.partition) for tp in new)

    def _behind(self, ends: Ends) -> Ends:
        """The partitions of `ends` whose position has not reached their end (no position yet: not read)."""
        positions = self._consumer.position([TopicPartition(topic, p) for topic, p in ends if ends[(topic, p)] > 0])
        return {
            (tp.topic, tp.partition): ends[(tp.topic, tp.partition)]
            for tp in positions
            if tp.offset < ends[(tp.topic, tp.partition)]
        }


def read_committed(bootstrap_servers: str, ends: Ends, timeout_s: float, group: str) -> Iterator[Message]:
    """Every committed record below `ends`, each partition from its beginning (see CommittedReader.read_to)."""
    reader = CommittedReader(bootstrap_servers, group)
    try:
        for message in reader.read_to(ends, timeout_s):
            if message.offset() < ends.get((message.topic(), message.partition()), 0):
                yield message
    finally:
        reader.close()
