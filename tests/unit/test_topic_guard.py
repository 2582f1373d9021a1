"""The input-topic checks' verdicts (the checks against a real broker are in
tests/integration/test_ordering_and_recovery.py)."""

from __future__ import annotations

from lakehouse.kafka_admin import TopicFacts
from spark_jobs.topic_guard import generation_problems, timestamp_type_problem


def test_broker_stamped_topics_pass_and_producer_stamped_ones_get_the_command() -> None:
    assert timestamp_type_problem("t", TopicFacts("id", "LogAppendTime"), "k:9092") is None
    assert timestamp_type_problem("t", TopicFacts("id", "CreateTime"), "k:9092") == (
        "topic t has message.timestamp.type=CreateTime; the job orders a key's records by the broker's time and "
        "needs LogAppendTime. Run: kafka-configs.sh --bootstrap-server k:9092 --alter --entity-type topics "
        "--entity-name t --add-config message.timestamp.type=LogAppendTime"
    )


def test_a_topic_with_another_id_or_gone_is_named() -> None:
    current = {"a": TopicFacts("A1", "LogAppendTime"), "b": TopicFacts("B2", "LogAppendTime")}
    assert generation_problems({"a": "A1", "b": "B1", "c": "C1"}, current) == [
        "topic b was deleted and created again (id B1, now B2)",
        "topic c was deleted",
    ]
    assert generation_problems({}, current) == []
