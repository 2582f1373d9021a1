"""How far the streaming job is behind Kafka, read from its own checkpoint.

Spark's Kafka source keeps its offsets in the checkpoint, not in a consumer group, so Kafka's
consumer-group tools cannot see them. Lag = topic end offsets - offsets of the last committed batch.
"""

from __future__ import annotations

import json
from pathlib import Path

from lakehouse.kafka_admin import KafkaAdmin, Offsets
from lakehouse.settings import Settings


def committed_offsets(query_checkpoint: Path) -> dict[str, dict[str, int]] | None:
    """topic -> partition -> next offset to read, as of the last committed micro-batch (None: no batch yet)."""
    commits = [int(p.name) for p in (query_checkpoint / "commits").glob("[0-9]*")]
    return batch_end_offsets(query_checkpoint, max(commits)) if commits else None


def batch_end_offsets(query_checkpoint: Path, batch_id: int) -> dict[str, dict[str, int]]:
    """topic -> partition -> offset at the end of `batch_id`, from the checkpoint's offsets log."""
    # The offsets log holds a version line, a metadata line, then one JSON line per source (the job has one).
    last_line = (query_checkpoint / "offsets" / str(batch_id)).read_text().splitlines()[-1]
    return json.loads(last_line)


def end_offsets(settings: Settings) -> Offsets:
    """(topic, partition) -> high watermark of the job's input topics; a topic not created yet is left out.

    Raises KafkaAdminError (a confluent_kafka.KafkaException) naming the servers and topics when Kafka does
    not answer in 10 s.
    """
    return KafkaAdmin(settings.kafka_bootstrap_servers).end_offsets(settings.kafka_topics)


def lag_per_topic(settings: Settings) -> dict[str, int] | None:
    """Records per topic that are in Kafka but not yet processed; None before the first committed batch."""
    consumed = committed_offsets(settings.query_checkpoint_dir)
    if consumed is None:
        return None
    lag: dict[str, int] = {}
    for (topic, partition), end in end_offsets(settings).items():
        lag[topic] = lag.get(topic, 0) + end - consumed.get(topic, {}).get(str(partition), 0)
    return lag
