"""Kafka administration on one client library, confluent-kafka's AdminClient: topics and their end offsets.

Every call is bounded by the admin's `timeout_s` and fails with KafkaAdminError, whose message names the
bootstrap servers and the topics. librdkafka's own log lines (it retries a refused connection every ~100 ms,
logging each attempt) go to the `lakehouse.kafka_admin.librdkafka` logger instead of stderr.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from lakehouse.net import any_bootstrap_reachable

librdkafka_log = logging.getLogger(f"{__name__}.librdkafka")

DEFAULT_TIMEOUT_S = 10.0
# A partition's leadership is moving (a broker stopped or came back, a preferred leader took over): the
# request succeeds once the cluster's metadata settles. Kafka's Java clients retry these; librdkafka hands
# them to the caller of an admin call.
LEADERSHIP_MOVING = {
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.OFFSET_NOT_AVAILABLE,
}
RETRY_BACKOFF_S = 0.2
LOG_APPEND_TIME = "LogAppendTime"

# (topic, partition) -> offset
Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True)
class TopicFacts:
    """What a reader must know of a topic: its id (Kafka >= 2.8 gives each topic generation a new UUID, so a
    topic deleted and created again under the same name has another id) and `message.timestamp.type`
    ("LogAppendTime": the broker stamps each record; "CreateTime": the producer does)."""

    topic_id: str
    timestamp_type: str


class KafkaAdminError(KafkaException):
    """An admin request failed or timed out. A KafkaException, so code catching the library's errors catches it."""


def describe_failure(action: str, topics: Iterable[str], bootstrap_servers: str, cause: object) -> str:
    """'creating topic(s) a, b at host:9092 failed: <cause>'; no topics named reads 'all topics'."""
    named = ", ".join(topics) or "all topics"
    return f"{action} {named} at {bootstrap_servers} failed: {cause}"


def missing_topics(wanted: Sequence[NewTopic], existing: set[str]) -> list[NewTopic]:
    """The topics of `wanted` whose name is not in `existing`, in their order."""
    return [topic for topic in wanted if topic.topic not in existing]


def partitions_of(metadata: ClusterMetadata, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, sorted; a topic the cluster does not have contributes none."""
    return [
        TopicPartition(topic, partition)
        for topic in topics
        if topic in metadata.topics
        for partition in sorted(metadata.topics[topic].partitions)
    ]


def leadership_moving(error: KafkaException) -> bool:
    """True for an error that passes once a partition's new leader is known (LEADERSHIP_MOVING)."""
    cause = error.args[0] if error.args else None
    return isinstance(cause, KafkaError) and (cause.retriable() or cause.code() in LEADERSHIP_MOVING)


def already_exists(error: KafkaException) -> bool:
    """True for the broker's TOPIC_ALREADY_EXISTS: another process created the topic first."""
    cause = error.args[0] if error.args else None
    return isinstance(cause, KafkaError) and cause.code() == KafkaError.TOPIC_ALREADY_EXISTS


class KafkaAdmin:
    """One cluster's AdminClient. Calls are bounded by `timeout_s` seconds; failures raise KafkaAdminError."""

    def __init__(self, bootstrap_servers: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self._client: AdminClient | None = None

    def topic_names(self) -> set[str]:
        """Names of every topic in the cluster (internal ones such as __consumer_offsets included)."""
        with self._failing_as("listing", ()):
            return set(self._metadata().topics)

    def broker_ids(self) -> set[int]:
        """Node ids of the brokers the cluster's metadata lists now (a killed broker drops out)."""
        with self._failing_as("listing the brokers of", ()):
            return set(self._metadata().brokers)

    def in_sync_replicas(self, topics: Iterable[str]) -> dict[tuple[str, int], set[int]]:
        """(topic, partition) -> node ids of its in-sync replicas; absent topics are left out."""
        names = list(topics)
        with self._failing_as("describing the replicas of", names):
            metadata = self._metadata()
            return {
                (name, partition.id): set(partition.isrs)
                for name in names
                if name in metadata.topics
                for partition in metadata.topics[name].partitions.values()
            }

    def create_topics(self, topics: Sequence[NewTopic]) -> list[str]:
        """Create those of `topics` that do not exist yet and wait until the broker has them.

        Idempotent: an existing topic is left as it is (its partitions and configs are not compared), also
        when another process creates it between the listing and the request. Returns the names created.
        """
        with self._failing_as("creating topic(s)", [topic.topic for topic in topics]):
            wanted = missing_topics(topics, set(self._metadata().topics))
            if not wanted:
                return []
            deadline = time.monotonic() + self.timeout_s
            timeouts = {"operation_timeout": self.timeout_s, "request_timeout": self.timeout_s}
            futures = self._connected().create_topics(wanted, **timeouts)
            return [name for name, future in futures.items() if self._created(future, deadline)]

    def end_offsets(self, topics: Iterable[str], committed_only: bool = False) -> Offsets:
        """(topic, partition) -> end offset of every partition of `topics`; absent topics are left out.

        The end is the high watermark (every record written, including those of open transactions), or with
        `committed_only` the last stable offset: where a read_committed reader's position can get to now.
        """
        names = list(topics)
        isolation = IsolationLevel.READ_COMMITTED if committed_only else IsolationLevel.READ_UNCOMMITTED
        with self._failing_as("reading the end offsets of", names):
            partitions = partitions_of(self._metadata(), names)
            if not partitions:
                return {}
            deadline = time.monotonic() + self.timeout_s
            offsets: Offsets = {}
            while partitions:
                futures = self._connected().list_offsets(
                    {partition: OffsetSpec.latest() for partition in partitions},
                    isolation_level=isolation,
                    request_timeout=self.timeout_s,
                )
                partitions = self._moving(futures, offsets, deadline)
            return offsets

    @staticmethod
    def _moving(futures: dict[TopicPartition, Future], offsets: Offsets, deadline: float) -> list[TopicPartition]:
        """Puts each answered partition's offset into `offsets`; returns the partitions whose leadership is
        moving, to ask again after a short pause. Raises their error once `deadline` has passed."""
        moving = []
        for partition, future in futures.items():
            try:
                offsets[(partition.topic, partition.partition)] = _result(future, deadline).offset
            except KafkaException as error:
                if not leadership_moving(error) or time.monotonic() >= deadline:
                    raise
                moving.append(partition)
        if moving:
            time.sleep(RETRY_BACKOFF_S)
        return moving

    def group_offsets(self, group: str) -> Offsets:
        """(topic, partition) -> the offset consumer group `group` committed (where it resumes); partitions it
        committed nothing for are left out, and an unknown group has none."""
        with self._failing_as(f"reading consumer group {group}'s offsets on", ()):
            deadline = time.monotonic() + self.timeout_s
            request = [ConsumerGroupTopicPartitions(group)]
            futures = self._connected().list_consumer_group_offsets(request, request_timeout=self.timeout_s)
            committed = _result(futures[group], deadline).topic_partitions or []
            return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}

    def topic_facts(self, topics: Iterable[str]) -> dict[str, TopicFacts]:
        """topic -> its id and timestamp type; a topic the cluster does not have is left out."""
        names = list(topics)
        with self._failing_as("describing", names):
            present = [name for name in names if name in self._metadata().topics]
            if not present:
                return {}
            deadline = time.monotonic() + self.timeout_s
            client = self._connected()
            described = client.describe_topics(TopicCollection(present), request_timeout=self.timeout_s)
            resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
            configs = client.describe_configs(resources, request_timeout=self.timeout_s)
            timestamp_types = {
                resource.name: _result(future, deadline)["message.timestamp.type"].value
                for resource, future in configs.items()
            }
            return {
                name: TopicFacts(str(_result(future, deadline).topic_id), timestamp_types[name])
                for name, future in described.items()
            }

    def set_topic_config(self, topics: Iterable[str], name: str, value: str) -> None:
        """Set one config of existing `topics` (an incremental SET: their other configs stay)."""
        names = list(topics)
        with self._failing_as(f"setting {name}={value} on", names):
            deadline = time.monotonic() + self.timeout_s
            entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            resources = [ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry]) for topic in names]
            for future in self._connected().incremental_alter_configs(resources).values():
                _result(future, deadline)

    def _metadata(self) -> ClusterMetadata:
        return self._connected().list_topics(timeout=self.timeout_s)

    def _connected(self) -> AdminClient:
        """The client, made on first use. librdkafka connects as soon as a client exists, so a closed port is
        refused here at once instead of after `timeout_s` of logged reconnection attempts."""
        if self._client is None:
            if not any_bootstrap_reachable(self.bootstrap_servers):
                raise KafkaAdminError("no Kafka broker answers")
            self._client = AdminClient({"bootstrap.servers": self.bootstrap_servers, "logger": librdkafka_log})
        return self._client

    def _created(self, future: Future, deadline: float) -> bool:
        try:
            _result(future, deadline)
        except KafkaException as error:
            if already_exists(error):
                return False
            raise
        return True

    @contextmanager
    def _failing_as(self, action: str, topics: Iterable[str]) -> Iterator[None]:
        """Turn the library's errors and timeouts into one KafkaAdminError naming the servers and topics."""
        try:
            yield
        except (KafkaException, TimeoutError) as error:
            cause = error if str(error) else f"no answer in {self.timeout_s:g}s"
            raise KafkaAdminError(describe_failure(action, topics, self.bootstrap_servers, cause)) from error
        finally:
            if self._client is not None:
                self._client.poll(0)  # hands librdkafka's queued log lines to `librdkafka_log`


def _result(future: Future, deadline: float) -> Any:
    """The future's result, waiting at most until `deadline` (time.monotonic()); raises TimeoutError after."""
    return future.result(timeout=max(0.0, deadline - time.monotonic()))
