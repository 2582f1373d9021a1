from __future__ import annotations

import socket
import time
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from lakehouse.committed import topic_ends
from lakehouse.kafka_admin import (
    KafkaAdmin,
    KafkaAdminError,
    already_exists,
    describe_failure,
    missing_topics,
    partitions_of,
)
from lakehouse.settings import Settings, cluster_settings, load_settings
from stack.kafka import (
    IDEMPOTENCY_TOPIC_CONFIG,
    KafkaBroker,
    KafkaNode,
    project_topics,
    server_properties,
)


def closed_port() -> str:
    """A local address nothing listens on (a port the kernel just handed out, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_a_failure_names_the_action_the_topics_and_the_servers() -> None:
    message = describe_failure("creating topic(s)", ["a", "b"], "k1:9092,k2:9092", "broker down")
    assert message == "creating topic(s) a, b at k1:9092,k2:9092 failed: broker down"
    assert describe_failure("listing", [], "k1:9092", "x") == "listing all topics at k1:9092 failed: x"


def test_only_topics_not_in_the_cluster_are_created_in_their_order() -> None:
    wanted = [NewTopic("a", 3, 1), NewTopic("b", 3, 1), NewTopic("c", 1, 1)]
    assert [topic.topic for topic in missing_topics(wanted, {"b", "other"})] == ["a", "c"]
    assert missing_topics(wanted, {"a", "b", "c"}) == []


def test_partitions_of_absent_topics_are_left_out() -> None:
    metadata = SimpleNamespace(
        topics={"a": SimpleNamespace(partitions={1: None, 0: None}), "b": SimpleNamespace(partitions={0: None})}
    )
    assert partitions_of(metadata, ["a", "absent"]) == [TopicPartition("a", 0), TopicPartition("a", 1)]


def test_only_topic_already_exists_counts_as_another_process_winning_the_race() -> None:
    assert already_exists(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
    assert not already_exists(KafkaException(KafkaError(KafkaError.INVALID_REPLICATION_FACTOR)))
    assert not already_exists(KafkaException("no KafkaError inside"))


def test_project_topics_are_broker_stamped_partitioned_ones_and_the_compacted_key_log() -> None:
    config = load_settings(kafka_topic_partitions=4, kafka_replication_factor=1)
    topics = {topic.topic: topic for topic in project_topics(config)}
    assert sorted(topics) == ["ingest-category", "ingest-idempotency", "ingest-product", "processed-product"]
    assert [topics[name].num_partitions for name in sorted(topics)] == [4, 1, 4, 4]
    assert topics["ingest-idempotency"].config == IDEMPOTENCY_TOPIC_CONFIG | {"min.insync.replicas": "1"}
    # Record versions are the broker's append time (spark_jobs/topic_guard.py checks it).
    for name in ("ingest-product", "ingest-category", "processed-product"):
        assert topics[name].config == {"message.timestamp.type": "LogAppendTime", "min.insync.replicas": "1"}


def test_cluster_topics_are_on_three_brokers_and_two_must_acknowledge() -> None:
    topics = project_topics(cluster_settings())
    assert {(topic.replication_factor, topic.config["min.insync.replicas"]) for topic in topics} == {(3, "2")}


def test_each_cluster_node_votes_and_listens_on_its_own_ports() -> None:
    config = cluster_settings(kafka_bootstrap_servers="127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096")
    properties = dict(
        line.split("=", 1) for line in server_properties(config, Path("/data"), node_id=2).splitlines() if line
    )
    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"
    assert properties["min.insync.replicas"] == properties["transaction.state.log.min.isr"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"


def test_an_unreachable_cluster_fails_at_once_naming_the_servers_and_the_topic() -> None:
    servers = closed_port()
    started = time.monotonic()
    with pytest.raises(KafkaAdminError) as raised:
        KafkaAdmin(servers, timeout_s=30).end_offsets(["ingest-product"])
    expected = f"reading the end offsets of ingest-product at {servers} failed: no Kafka broker answers"
    assert str(raised.value) == expected
    with pytest.raises(KafkaAdminError, match=f"creating topic\\(s\\) t1 at {servers} failed"):
        KafkaAdmin(servers).create_topics([NewTopic("t1", 1, 1)])
    with pytest.raises(KafkaException, match=f"idempotency at {servers}"):  # what api_ingest catches
        topic_ends(servers, "idempotency", 30)
    assert time.monotonic() - started < 5, "a closed port must not wait for the timeout"


def formatted_node(node: KafkaNode, cluster_id: str, voters_of: Settings) -> None:
    """The files a started node leaves: its storage's meta.properties and its last server.properties."""
    node.data_dir.mkdir(parents=True)
    (node.data_dir / "meta.properties").write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node.node_id}\n")
    (node.home / "server.properties").write_text(server_properties(voters_of, node.data_dir, node.node_id))


def test_a_kafka_started_in_the_other_mode_or_with_mixed_cluster_ids_is_refused(tmp_path: Path) -> None:
    three_nodes = "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    single = load_settings(runtime_dir=tmp_path / "single", kafka_bootstrap_servers="127.0.0.1:9092")
    cluster = load_settings(runtime_dir=tmp_path / "single", kafka_bootstrap_servers=three_nodes)
    formatted_node(KafkaBroker(single).nodes[0], "AAAAAAAAAAAAAAAAAAAAAA", voters_of=single)
    KafkaBroker(single).check_same_cluster()
    with pytest.raises(RuntimeError, match=r"another shape.*make run-cluster"):
        KafkaBroker(cluster).check_same_cluster()

    mixed = load_settings(runtime_dir=tmp_path / "mixed", kafka_bootstrap_servers=three_nodes)
    nodes = KafkaBroker(mixed).nodes
    formatted_node(nodes[0], "AAAAAAAAAAAAAAAAAAAAAA", voters_of=mixed)
    formatted_node(nodes[1], "BBBBBBBBBBBBBBBBBBBBBB", voters_of=mixed)
    with pytest.raises(RuntimeError, match="cluster ids"):
        KafkaBroker(mixed).check_same_cluster()


def answered(offset: int | None, error: int | None = None) -> Future:
    """A list_offsets future: the partition's end offset, or the broker's error code."""
    future: Future = Future()
    if error is None:
        future.set_result(SimpleNamespace(offset=offset))
    else:
        future.set_exception(KafkaException(KafkaError(error)))
    return future


def test_end_offsets_ask_again_while_a_partitions_leadership_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI failure of the cluster test: right after a broker came back, list_offsets answered
    UNKNOWN_LEADER_EPOCH for a partition whose preferred leader was taking over."""
    first, second = TopicPartition("t", 0), TopicPartition("t", 1)
    answers = [
        {first: answered(10), second: answered(None, KafkaError.UNKNOWN_LEADER_EPOCH)},
        {second: answered(None, KafkaError.NOT_LEADER_FOR_PARTITION)},
        {second: answered(20)},
    ]
    asked: list[list[TopicPartition]] = []

    def list_offsets(wanted: dict[TopicPartition, object], **_: object) -> dict[TopicPartition, Future]:
        asked.append(list(wanted))
        return answers[len(asked) - 1]

    admin = KafkaAdmin("127.0.0.1:9")
    monkeypatch.setattr(
        admin, "_metadata", lambda: SimpleNamespace(topics={"t": SimpleNamespace(partitions={0: 0, 1: 1})})
    )
    monkeypatch.setattr(admin, "_connected", lambda: SimpleNamespace(list_offsets=list_offsets, poll=lambda _: 0))
    assert admin.end_offsets(["t"]) == {("t", 0): 10, ("t", 1): 20}
    assert asked == [[first, second], [second], [second]]


def test_end_offsets_fail_at_once_on_other_errors_and_on_moving_leadership_after_the_timeout() -> None:
    partition = TopicPartition("t", 0)
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        KafkaAdmin._moving(
            {partition: answered(None, KafkaError.TOPIC_AUTHORIZATION_FAILED)}, {}, time.monotonic() + 60
        )
    with pytest.raises(KafkaException, match="UNKNOWN_LEADER_EPOCH"):
        KafkaAdmin._moving({partition: answered(None, KafkaError.UNKNOWN_LEADER_EPOCH)}, {}, time.monotonic() - 1)
