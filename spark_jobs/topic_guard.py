"""What the streaming job checks of its input topics, at its start and before every micro-batch.

- **Broker time.** A record's version is the time the broker appended it (transforms.record_version), so
  every input topic must have `message.timestamp.type=LogAppendTime`. With CreateTime the producers' clocks
  would decide which record of a key is newer.
- **The same topic.** Spark's Kafka source tracks offsets by topic name. A topic deleted and created again
  restarts its offsets at 0: Spark fails the query when it notices that the offsets went back, but once the
  new topic has grown past the checkpoint's offsets it reads on from there and silently skips the new
  topic's first records. Kafka gives each topic generation its own id; the ids seen at the first check
  with a checkpoint (the job's start) are kept in it (`topic_ids.json` in the query's checkpoint folder), and
  a start or batch that finds another id stops the job before it writes anything. A checkpoint from before
  this check adopts the ids of its first start.

Both failures raise TopicChanged, whose message names the topic and the command that resolves it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from lakehouse.kafka_admin import LOG_APPEND_TIME, KafkaAdmin, TopicFacts

log = logging.getLogger(__name__)

TOPIC_IDS_FILE = "topic_ids.json"
RESET_COMMAND = "make reset-checkpoint"


class TopicChanged(RuntimeError):
    """An input topic is not what this checkpoint read (re-created, deleted) or not stamped by the broker."""


def timestamp_type_problem(topic: str, facts: TopicFacts, bootstrap_servers: str) -> str | None:
    if facts.timestamp_type == LOG_APPEND_TIME:
        return None
    return (
        f"topic {topic} has message.timestamp.type={facts.timestamp_type}; the job orders a key's records by "
        f"the broker's time and needs {LOG_APPEND_TIME}. Run: kafka-configs.sh --bootstrap-server "
        f"{bootstrap_servers} --alter --entity-type topics --entity-name {topic} "
        f"--add-config message.timestamp.type={LOG_APPEND_TIME}"
    )


def generation_problems(recorded: dict[str, str], current: dict[str, TopicFacts]) -> list[str]:
    """Why the topics differ from those the checkpoint read: deleted, or created again (another id)."""
    problems = []
    for topic, topic_id in sorted(recorded.items()):
        if topic not in current:
            problems.append(f"topic {topic} was deleted")
        elif current[topic].topic_id != topic_id:
            problems.append(
                f"topic {topic} was deleted and created again (id {topic_id}, now {current[topic].topic_id})"
            )
    return problems


class TopicGuard:
    """Checks the job's input topics; `query_checkpoint` is the streaming query's checkpoint folder."""

    def __init__(self, admin: KafkaAdmin, topics: Iterable[str], query_checkpoint: Path) -> None:
        self.admin = admin
        self.topics = tuple(topics)
        self.ids_file = query_checkpoint / TOPIC_IDS_FILE

    def check(self) -> None:
        """Raises TopicChanged; records the ids of topics this checkpoint has not seen yet.
        Raises KafkaAdminError when Kafka does not answer (a transient failure)."""
        current = self.admin.topic_facts(self.topics)
        problems = [
            problem
            for topic, facts in sorted(current.items())
            if (problem := timestamp_type_problem(topic, facts, self.admin.bootstrap_servers))
        ]
        recorded = self._recorded()
        changed = generation_problems(recorded, current)
        if changed:
            problems.append(
                "; ".join(changed) + f". This checkpoint's offsets belong to the old topic: run `{RESET_COMMAND}` "
                "and start the job again; it reads every topic from its beginning, and record versions make "
                "the records read again change nothing"
            )
        if problems:
            raise TopicChanged(" | ".join(problems))
        unseen = {topic: facts.topic_id for topic, facts in current.items() if topic not in recorded}
        if unseen:
            self._record(recorded | unseen)

    def _recorded(self) -> dict[str, str]:
        return json.loads(self.ids_file.read_text()) if self.ids_file.exists() else {}

    def _record(self, ids: dict[str, str]) -> None:
        self.ids_file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.ids_file.with_suffix(".tmp")
        partial.write_text(json.dumps(ids, sort_keys=True))
        partial.replace(self.ids_file)
        log.info("input topic ids of this checkpoint: %s", ids)
