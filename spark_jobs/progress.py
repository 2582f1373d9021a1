"""How far the streaming job is behind Kafka, read from its own checkpoint.

Spark's Kafka source keeps its offsets in the checkpoint, not in a consumer group, so Kafka's
consumer-group tools cannot see them. Lag = topic end offsets - offsets of the last committed batch.
"""

from __future__ import annotations

import json
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from lakehouse.settings import Settings


def committed_offsets(query_checkpoint: Path) -> dict[str, dict[str, int]] | None:
    """topic -> partition -> next offset to read, as of the last committed micro-batch (None: no batch yet)."""
    commits = [int(p.name) for p in (query_checkpoint / "commits").glob("[0-9]*")]
    if not commits:
        return None
    # The offsets log holds a version line, a metadata line, then one JSON line per source.
    last_line = (query_checkpoint / "offsets" / str(max(commits))).read_text().splitlines()[-1]
    return json.loads(last_line)


def end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in settings.kafka_topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        return {(tp.topic, tp.partition): end for tp, end in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def lag_per_topic(settings: Settings) -> dict[str, int] | None:
    """Records per topic that are in Kafka but not yet processed; None before the first committed batch."""
    consumed = committed_offsets(settings.checkpoint_dir / "ingest")
    if consumed is None:
        return None
    lag: dict[str, int] = {}
    for (topic, partition), end in end_offsets(settings).items():
        lag[topic] = lag.get(topic, 0) + end - consumed.get(topic, {}).get(str(partition), 0)
    return lag
