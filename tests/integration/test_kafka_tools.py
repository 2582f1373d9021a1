"""Kafka by hand: the wrappers in bin/ run Kafka's own tools from the pinned jars against the broker."""

from __future__ import annotations

import subprocess
import uuid

import pytest

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
