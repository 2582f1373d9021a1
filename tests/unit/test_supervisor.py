"""The job supervisor's pure logic: the cause of a failed query (on Spark 3.5.7's and 4.2.0's real messages,
kept in spark_failures/ and produced live by a local query), the classification, the messages, the status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException

from lakehouse.settings import load_settings
from spark_jobs.supervisor import (
    MAX_CAUSE_CHARS,
    MAX_RESTARTS,
    SAME_FAILURE_LIMIT,
    FailingBatch,
    FailureHistory,
    PartitionRange,
    Status,
    StatusBoard,
    classify,
    comparable,
    failing_batch,
    failure_cause,
    known_problem,
    reset_checkpoint,
    startup_warnings,
    status_lines,
    stop_message,
)
from spark_jobs.topic_guard import TopicChanged

# Captured from Spark 3.5.7 with the Kafka connector against the embedded broker: a foreachBatch raising a
# ValueError; records deleted from Kafka (delete-records up to the end) while the query was stopped, twice;
# a topic deleted and created again with fewer records; a topic created again with one partition of two.
# From Spark 4.2.0: records deleted (records_deleted_spark4, the query's message as the job's log shows it
# in tests/integration/test_supervisor.py).
FAILURES = Path(__file__).parent / "spark_failures"

TOPIC = "ingest-product-t"
SECOND_TOPIC = "ingest-category-t"


def captured(name: str) -> str:
    return (FAILURES / f"{name}.txt").read_text()


@pytest.mark.parametrize(
    ("fixture", "cause"),
    [
        ("python_exception", "ValueError: poison record in batch 0: price 'abc' is not a number"),
        (
            "records_deleted",
            "java.lang.IllegalStateException: Cannot fetch offset 3 (GroupId: "
            "spark-kafka-source-b2aaa02e-8a48-4489-a9b8-7d7c9a356597--628750723-executor, "
            "TopicPartition: capture-f1378f-0).",
        ),
        (
            "topic_recreated",
            "Partition capture-8c5514-0's offset was changed from 5 to 1, some data may have been missed.",
        ),
        ("partitions_gone", "Set(capture-67a8b7-1) are gone. Some data may have been missed.."),
        (
            "records_deleted_spark4",
            "org.apache.spark.sql.kafka010.KafkaIllegalStateException: Some data may have been lost because they "
            "are not available in Kafka any more; Reason: Could not read records in offset [2, 5) for topic "
            "partition ingest-product-fca85a3f-0 with consumer group "
            "spark-kafka-source-b81ab0de-f66d-4db5-9b4d-1b5fcf4d2396--1810254948-executor.",
        ),
    ],
)
def test_the_cause_is_the_last_python_exception_or_the_first_meaningful_jvm_line(fixture: str, cause: str) -> None:
    assert failure_cause(captured(fixture)) == cause


def test_a_cause_is_one_bounded_line() -> None:
    cause = failure_cause("[STREAM_FAILED] Query [id = a, runId = b] terminated with exception: " + "x  " * 3000)
    assert "\n" not in cause
    assert len(cause) == MAX_CAUSE_CHARS
    assert cause.endswith("…")


def write_lines(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0.json").write_text('{"line": 1}\n')


@pytest.mark.parametrize(
    ("raised", "cause"),
    [
        (ValueError("price 'abc' is not a number"), "ValueError: price 'abc' is not a number"),
        (
            TopicChanged("topic t was deleted and created again (id a, now b). Run `make reset-checkpoint`"),
            "spark_jobs.topic_guard.TopicChanged: topic t was deleted and created again (id a, now b). "
            "Run `make reset-checkpoint`",
        ),
    ],
)
def test_the_cause_of_an_exception_raised_in_foreach_batch_by_a_real_query(
    spark, tmp_path: Path, raised: Exception, cause: str
) -> None:
    def process_batch(_frame: object, _batch_id: int) -> None:
        raise raised

    write_lines(tmp_path / "input")
    query = (
        spark.readStream.schema("line int")
        .json(str(tmp_path / "input"))
        .writeStream.foreachBatch(process_batch)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    with pytest.raises(StreamingQueryException) as failed:
        query.awaitTermination()
    assert "Return Message: Traceback (most recent call last)" in str(failed.value)
    assert failure_cause(failed.value) == cause


@pytest.mark.parametrize(
    ("fixture", "problem"),
    [
        ("records_deleted", "records_gone"),
        ("topic_recreated", "topic_changed"),
        ("partitions_gone", "topic_changed"),
        ("python_exception", None),
        ("records_deleted_spark4", "records_gone"),
    ],
)
def test_spark_data_loss_and_topic_changes_are_known_problems(fixture: str, problem: str | None) -> None:
    assert known_problem(failure_cause(captured(fixture))) == problem


# Spark 4's Kafka source: every data loss shares the first lines (KAFKA_DATA_LOSS in spark-sql-kafka 4.2.0's
# error/kafka-error-conditions.json); what changed follows "Reason:".
SPARK4_DATA_LOSS = (
    "org.apache.spark.sql.kafka010.KafkaIllegalStateException: Some data may have been lost because they are not "
    "available in Kafka any more;\neither the data was aged out by Kafka or the topic may have been deleted before "
    "all the data in the\ntopic was processed.\nIf you don't want your streaming query to fail on such cases, set "
    "the source option failOnDataLoss to false.\nReason: {reason}\n\tat org.apache.spark.sql.kafka010.Kafka"
)


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("Partition t-0 offset was changed from 5 to 1.\nThis could be either 1) a user error", "topic_changed"),
        ("Partitions Set(t-1) have been deleted.", "topic_changed"),
        ("Cannot find initial offsets for partitions Set(t-1). They may have been deleted.", "topic_changed"),
        ("Starting offset for t-0 was 3 but consumer reset to 7.", "records_gone"),
        ("Added partition t-2 starts from 4 instead of 0.", "records_gone"),
    ],
)
def test_spark4_data_loss_reasons_tell_a_changed_topic_from_records_gone(reason: str, problem: str) -> None:
    cause = failure_cause(SPARK4_DATA_LOSS.format(reason=reason))
    assert cause.endswith(" ".join(f"Reason: {reason}".split()))
    assert known_problem(cause) == problem


def test_the_topic_guard_is_a_topic_change_when_it_asks_for_a_reset() -> None:
    assert known_problem("spark_jobs.topic_guard.TopicChanged: topic t was deleted. Run `make reset-checkpoint`") == (
        "topic_changed"
    )
    assert known_problem("TopicChanged: topic t was deleted and created again (id a, now b)") == "topic_changed"
    assert known_problem("TopicChanged: topic t has message.timestamp.type=CreateTime") == "topic_guard"


def test_a_failure_is_transient_while_kafka_or_mongodb_does_not_answer_even_a_data_loss() -> None:
    lost = failure_cause(captured("records_deleted"))
    assert classify(lost, ["Kafka"], same_failures=0, failures_in_a_row=0) == ("transient", "away")
    assert classify("ValueError: x", ["MongoDB"], same_failures=9, failures_in_a_row=99) == ("transient", "away")


def test_a_data_loss_is_deterministic_at_once_when_both_answer() -> None:
    lost = failure_cause(captured("records_deleted"))
    assert classify(lost, [], same_failures=1, failures_in_a_row=1) == ("deterministic", "records_gone")


def test_an_unknown_failure_is_deterministic_on_its_third_time_in_a_row() -> None:
    assert classify("ValueError: x", [], 1, 1) == ("undetermined", "unexplained")
    assert classify("ValueError: x", [], SAME_FAILURE_LIMIT - 1, 2) == ("undetermined", "unexplained")
    assert classify("ValueError: x", [], SAME_FAILURE_LIMIT, 3) == ("deterministic", "repeated")
    assert classify("ValueError: x", [], 1, MAX_RESTARTS) == ("deterministic", "restarts_exhausted")


def test_the_same_batch_failing_the_same_way_is_counted_across_transient_failures() -> None:
    history = FailureHistory()
    history.record(4, "ValueError: poison at offset 17 (TID 3)", progressed=True, transient=False)
    history.record(4, "pymongo.errors.ServerSelectionTimeoutError: refused", progressed=False, transient=True)
    history.record(4, "ValueError: poison at offset 17 (TID 9)", progressed=False, transient=False)
    assert (history.same, history.answered_in_a_row, history.in_a_row) == (2, 2, 3)
    assert history.delay_seconds == 15
    history.record(5, "ValueError: poison at offset 17 (TID 12)", progressed=False, transient=False)
    assert history.same == 1, "another batch"
    history.record(5, "KeyError: 'asin'", progressed=False, transient=False)
    assert history.same == 1, "another cause"
    history.record(6, "KeyError: 'asin'", progressed=True, transient=False)
    assert (history.answered_in_a_row, history.in_a_row, history.delay_seconds) == (1, 1, 5)


def test_two_runs_of_one_data_loss_compare_equal() -> None:
    first, again = failure_cause(captured("records_deleted")), failure_cause(captured("records_deleted_again"))
    assert first != again, "the group id differs"
    assert comparable(first) == comparable(again)


def write_offsets(checkpoint: Path, batch_id: int, offsets: dict[str, dict[str, int]]) -> None:
    """As Spark writes `offsets/<batch id>`: a version line, a metadata line, one line per source."""
    folder = checkpoint / "offsets"
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": 1796007630043, "conf": {}}
    (folder / str(batch_id)).write_text(f"v1\n{json.dumps(metadata)}\n{json.dumps(offsets)}")
    (folder / f".{batch_id}.crc").write_bytes(b"\0")


def commit(checkpoint: Path, batch_id: int) -> None:
    folder = checkpoint / "commits"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_the_failing_batch_is_the_uncommitted_one_from_the_previous_end_offsets(tmp_path: Path) -> None:
    write_offsets(tmp_path, 0, {TOPIC: {"0": 3, "1": 3}, SECOND_TOPIC: {"0": 2}})
    commit(tmp_path, 0)
    write_offsets(tmp_path, 1, {TOPIC: {"1": 6, "0": 6}, SECOND_TOPIC: {"0": 2}})
    batch = failing_batch(tmp_path)
    assert batch == FailingBatch(
        1,
        True,
        (
            PartitionRange(SECOND_TOPIC, 0, 2, 2),
            PartitionRange(TOPIC, 0, 3, 6),
            PartitionRange(TOPIC, 1, 3, 6),
        ),
    )
    assert batch.describe() == f"batch 1: {TOPIC} partition 0 offsets 3-5, partition 1 offsets 3-5"


def test_the_first_batch_starts_at_the_topics_start(tmp_path: Path) -> None:
    write_offsets(tmp_path, 0, {TOPIC: {"0": 4}})
    batch = failing_batch(tmp_path)
    assert batch == FailingBatch(0, True, (PartitionRange(TOPIC, 0, None, 4),))
    assert batch.describe() == f"batch 0: {TOPIC} partition 0 offsets from the topic's start to 3"


def test_offsets_that_went_back_and_partitions_gone_are_described(tmp_path: Path) -> None:
    write_offsets(tmp_path, 0, {TOPIC: {"0": 5, "1": 5}})
    commit(tmp_path, 0)
    write_offsets(tmp_path, 1, {TOPIC: {"0": 1}})
    assert failing_batch(tmp_path).describe() == (  # type: ignore[union-attr]
        f"batch 1: {TOPIC} partition 0 offsets 5 -> 1 (went back), partition 1 from offset 5"
    )


def test_a_failure_before_the_next_batch_is_planned_names_where_it_starts(tmp_path: Path) -> None:
    assert failing_batch(tmp_path) is None
    write_offsets(tmp_path, 7, {TOPIC: {"0": 9}})
    commit(tmp_path, 7)
    batch = failing_batch(tmp_path)
    assert batch == FailingBatch(8, False, (PartitionRange(TOPIC, 0, 9, None),))
    assert batch.describe() == f"batch 8 (not planned yet): {TOPIC} partition 0 from offset 9"


LOST = FailingBatch(3, True, (PartitionRange(TOPIC, 0, 10, 15), PartitionRange(TOPIC, 2, 7, 7)))


def test_records_gone_names_the_range_and_the_setting_that_skips_them() -> None:
    message, command = stop_message("records_gone", "java.lang.IllegalStateException: Cannot fetch offset 10", LOST, 1)
    assert message == (
        "Records the job has not read are gone from Kafka (retention or deleted records): batch 3: "
        f"{TOPIC} partition 0 offsets 10-14. Cause: java.lang.IllegalStateException: Cannot fetch offset 10. "
        "To go on without these records, start the job once with STREAM_FAIL_ON_DATA_LOSS=false "
        "(`STREAM_FAIL_ON_DATA_LOSS=false make up`)."
    )
    assert command == "STREAM_FAIL_ON_DATA_LOSS=false make up"


def test_a_changed_topic_asks_for_a_checkpoint_reset() -> None:
    message, command = stop_message("topic_changed", "Partition t-0's offset was changed from 5 to 1", LOST, 1)
    assert f"{TOPIC} partition 0 offsets 10-14" in message
    assert "Run `make reset-checkpoint` and start the job again (`make up`): it re-reads every topic" in message
    assert command == "make reset-checkpoint && make up"


def test_a_repeated_failure_asks_to_fix_the_cause_and_replay() -> None:
    message, command = stop_message("repeated", "ValueError: poison", LOST, 3)
    assert message == (
        "The same batch failed the same way 3 times in a row while Kafka and MongoDB answer: batch 3: "
        f"{TOPIC} partition 0 offsets 10-14. Cause: ValueError: poison. Fix the cause, then start the job again "
        "(`make up`); it replays this batch."
    )
    assert command == "make up"


def test_the_status_document_and_its_file_say_the_same(tmp_path: Path) -> None:
    status = Status("stopped", "deterministic", "cause", "message", "make up", LOST, 2, ("careful",))
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert status.document(now) == {
        "_id": "streaming_job_supervisor",
        "state": "stopped",
        "kind": "deterministic",
        "cause": "cause",
        "message": "message",
        "command": "make up",
        "batch_id": 3,
        "ranges": [
            {"topic": TOPIC, "partition": 0, "start": 10, "end": 15},
            {"topic": TOPIC, "partition": 2, "start": 7, "end": 7},
        ],
        "restarts": 2,
        "warnings": ["careful"],
        "updated_at": now,
    }
    published = StatusBoard(tmp_path / "checkpoints" / "supervisor.json", db=None).publish(status)
    written = json.loads((tmp_path / "checkpoints" / "supervisor.json").read_text())
    assert written == published | {"updated_at": published["updated_at"].isoformat()}


def test_make_status_prints_the_state_only_when_the_job_does_not_run_normally() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert status_lines(Status("running").document(now)) == []
    stopped = Status("stopped", "deterministic", "c", "Records are gone.", "make up").document(now)
    assert status_lines(stopped) == [
        f"job supervisor: stopped (deterministic) since {now}",
        "  Records are gone.",
        "  command: make up",
    ]
    warned = Status("running", warnings=("STREAM_FAIL_ON_DATA_LOSS=false: ...",)).document(now)
    assert status_lines(warned)[-1] == "  WARNING: STREAM_FAIL_ON_DATA_LOSS=false: ..."


def test_starting_with_fail_on_data_loss_false_is_a_loud_warning() -> None:
    assert startup_warnings(load_settings()) == ()
    [warning] = startup_warnings(load_settings(stream_fail_on_data_loss=False))
    assert warning.startswith("STREAM_FAIL_ON_DATA_LOSS=false: records gone from Kafka")


def test_reset_checkpoint_moves_the_query_checkpoint_aside(tmp_path: Path) -> None:
    assert reset_checkpoint(tmp_path, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) is None
    write_offsets(tmp_path / "ingest", 0, {TOPIC: {"0": 1}})
    moved = reset_checkpoint(tmp_path, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert moved == tmp_path / "ingest.reset-20260102T030405Z"
    assert (moved / "offsets" / "0").exists()
    assert not (tmp_path / "ingest").exists()
