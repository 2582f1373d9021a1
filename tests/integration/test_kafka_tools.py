"""Kafka by hand: the wrappers in bin/ run Kafka's own tools from the pinned jars against the broker; and the
project's own admin calls (lakehouse/kafka_admin.py) against the same broker."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from lakehouse.committed import read_committed, topic_ends
from lakehouse.kafka_admin import KafkaAdmin
from stack.processes import wait_until
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


def kafka_tool(name: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(PROJECT_ROOT / "bin" / name), *args], input=stdin, capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout


def test_create_list_produce_and_consume_by_hand(infrastructure) -> None:
    topic = f"by-hand-{uuid.uuid4().hex[:8]}"
    kafka_tool("kafka-topics", "--create", "--topic", topic, "--partitions", "2")
    assert topic in kafka_tool("kafka-topics", "--list").split()
    kafka_tool(
        "kafka-console-producer",
        "--topic",
        topic,
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=|",
        stdin="B000000001|hello\n",
    )
    out = kafka_tool(
        "kafka-console-consumer",
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        "1",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=|",
    )
    assert out.strip() == "B000000001|hello"


def test_topics_are_created_once_and_their_ends_are_read_as_each_reader_sees_them(infrastructure) -> None:
    servers = infrastructure.settings.kafka_bootstrap_servers
    admin = KafkaAdmin(servers)
    topic = f"admin-{uuid.uuid4().hex[:8]}"
    assert admin.create_topics([NewTopic(topic, 2, 1)]) == [topic]
    assert admin.create_topics([NewTopic(topic, 2, 1)]) == [], "an existing topic is fine"
    assert topic in kafka_tool("kafka-topics", "--list").split()

    producer = Producer({"bootstrap.servers": servers, "transactional.id": f"test-{topic}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(3):
        producer.produce(topic, key=b"B000000001", value=b"%d" % n, partition=1)
    assert producer.flush(30) == 0
    assert admin.end_offsets([topic, "no-such-topic"]) == {(topic, 0): 0, (topic, 1): 3}
    assert topic_ends(servers, topic, 10) == {(topic, 0): 0, (topic, 1): 0}, "an open transaction is not stable"

    producer.commit_transaction(30)
    # The coordinator writes the commit marker after it answers, so the stable end moves a moment later.
    with_commit_marker = {(topic, 0): 0, (topic, 1): 4}
    assert wait_until(lambda: admin.end_offsets([topic], committed_only=True) == with_commit_marker, 10)
    assert admin.end_offsets([topic]) == with_commit_marker
    committed = read_committed(servers, topic_ends(servers, topic, 10), 60, "tests")
    assert [message.value() for message in committed] == [b"0", b"1", b"2"]
