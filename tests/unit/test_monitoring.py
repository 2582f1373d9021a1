from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lakehouse import catalog
from spark_jobs import lake
from spark_jobs.events import BatchEvent, Outcome, event_document
from spark_jobs.monitoring import ProgressListener, lag_from_offsets, lag_from_sources

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_lag_is_latest_minus_end_offset_per_topic() -> None:
    end = '{"products": {"0": 5, "1": 3}, "categories": {"0": 9}}'
    latest = '{"products": {"0": 7, "1": 3, "2": 4}, "categories": {"0": 9}}'
    assert lag_from_offsets(end, latest) == {"products": 6, "categories": 0}


def test_no_latest_offset_yet_means_no_lag_known() -> None:
    assert lag_from_offsets(None, None) == {}


def test_sources_add_up() -> None:
    sources = [
        SimpleNamespace(endOffset='{"a": {"0": 1}}', latestOffset='{"a": {"0": 4}}'),
        SimpleNamespace(endOffset='{"a": {"1": 0}}', latestOffset='{"a": {"1": 2}}'),
    ]
    assert lag_from_sources(sources) == {"a": 5}


def test_offsets_that_are_not_json_count_as_none() -> None:
    from spark_jobs.monitoring import lag_from_offsets

    assert lag_from_offsets("None", '{"t": {"0": 5}}') == {"t": 5}
    assert lag_from_offsets('{"t": {"0": 2}}', "null") == {}


# The listener adds each batch's lag to the batch's pipeline_events document -----------------------------------


class RecordingSink:
    """What the listener writes, instead of MongoDB."""

    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.updates: list[tuple[str, Any, dict[str, Any]]] = []

    def write_status(self, document: dict[str, Any]) -> None:
        self.statuses.append(document)

    def update_fields(self, served: catalog.ServingCollection, key: Any, fields: dict[str, Any]) -> None:
        self.updates.append((served.name, key, fields))


def progress_event(query_id: uuid.UUID, batch_id: int, rows: int) -> SimpleNamespace:
    source = SimpleNamespace(endOffset='{"products": {"0": 5}}', latestOffset='{"products": {"0": 8}}')
    progress = SimpleNamespace(
        id=query_id,
        batchId=batch_id,
        numInputRows=rows,
        inputRowsPerSecond=1.0,
        processedRowsPerSecond=2.0,
        batchDuration=500,
        timestamp="2026-01-01T00:00:00.000Z",
        sources=[source],
    )
    return SimpleNamespace(progress=progress)


def test_the_listener_adds_the_lag_to_the_document_the_batch_wrote(tmp_path: Path) -> None:
    query_id = uuid.uuid4()
    (tmp_path / "metadata").write_text(json.dumps({"id": str(query_id)}))
    written_by_the_batch = event_document(
        BatchEvent("stream", 4, NOW, 10, Outcome(0, 0), {"read": 1.0}, NOW, NOW), lake.stream_app_id(tmp_path)
    )
    sink = RecordingSink()

    ProgressListener(sink, lambda: 0).onQueryProgress(progress_event(query_id, 4, rows=10))  # type: ignore[arg-type]

    assert sink.updates == [(catalog.PIPELINE_EVENTS.name, written_by_the_batch["_id"], {"lag": {"products": 3}})]
    assert written_by_the_batch["_id"] == f"amazon-lakehouse-ingest-{query_id}:4"
    assert sink.statuses[0]["_id"] == catalog.STREAMING_JOB_STATUS_ID


def test_a_batch_without_records_wrote_no_event_and_gets_no_lag() -> None:
    sink = RecordingSink()
    ProgressListener(sink, lambda: 0).onQueryProgress(progress_event(uuid.uuid4(), 5, rows=0))  # type: ignore[arg-type]
    assert sink.updates == []
    assert len(sink.statuses) == 1


def test_a_query_reports_the_id_its_checkpoint_metadata_holds(spark, tmp_path: Path) -> None:
    """Spark's side of the claim the listener relies on: progress.id is the checkpoint's `metadata` id."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.json").write_text('{"n": 1}\n')
    checkpoint = tmp_path / "checkpoint"

    def run() -> str:
        query = (
            spark.readStream.schema("n long")
            .json(str(source))
            .writeStream.foreachBatch(lambda frame, batch_id: None)
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        return query.lastProgress["id"]

    first = run()
    (source / "b.json").write_text('{"n": 2}\n')
    restarted = run()

    assert lake.query_app_id(first) == lake.query_app_id(restarted) == lake.stream_app_id(checkpoint)


def test_a_batch_event_document_has_the_catalog_fields_and_its_freshness() -> None:
    newest = NOW - timedelta(seconds=90)
    event = BatchEvent(
        "backfill", 2, NOW - timedelta(seconds=5), 300, Outcome(1, 2), {"read": 1.0, "gold": 2.0}, NOW, newest
    )

    document = event_document(event, "backfill-x")

    assert document == {
        "_id": "backfill-x:2",
        "source": "backfill",
        "batch_id": 2,
        "started_at": NOW - timedelta(seconds=5),
        "at": NOW,
        "input_rows": 300,
        "seconds": 3.0,
        "rows_per_second": 100.0,
        "steps": {"read": 1.0, "gold": 2.0},
        "quarantined": 1,
        "rescued": 2,
        "newest_record_ts": newest,
        "freshness_seconds": 90.0,
    }
    assert set(document) - {"_id"} == set(catalog.PIPELINE_EVENTS.fields) - {"lag"}
