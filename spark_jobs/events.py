"""The job's event log: one row per micro-batch (or backfill slice) in a Delta table, like a managed
pipeline's event log, written with the batch's own idempotent append, so a replayed batch logs once; and the
same event as a MongoDB `catalog.PIPELINE_EVENTS` document for the dashboard's time series, whose `_id`
`<app id>:<batch id>` a replay rewrites."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import lake

EVENT_SCHEMA = (
    "source string, batch_id long, started_at timestamp, input_rows long, quarantined long, rescued long, "
    "seconds double, steps map<string,double>, offsets string"
)


@dataclass(frozen=True)
class Outcome:
    quarantined: int
    rescued: int


@dataclass(frozen=True)
class BatchEvent:
    """One micro-batch or backfill slice: `started_at` and `finished_at` (UTC, wall clock), `steps` (step ->
    seconds), and `newest_record_ts`, the broker time of its newest record (None for an empty batch)."""

    source: str  # "stream" or "backfill"
    batch_id: int
    started_at: datetime
    input_rows: int
    outcome: Outcome
    steps: dict[str, float]
    finished_at: datetime
    newest_record_ts: datetime | None

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())

    @property
    def rows_per_second(self) -> float:
        return self.input_rows / self.seconds if self.seconds else 0.0

    @property
    def freshness_seconds(self) -> float | None:
        """How old the batch's newest record was when the batch finished."""
        if self.newest_record_ts is None:
            return None
        return (self.finished_at - _as_utc(self.newest_record_ts)).total_seconds()

    def describe(self) -> str:
        timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.steps.items())
        return (
            f"{self.source} batch {self.batch_id}: {self.input_rows} rows in {self.seconds:.1f}s "
            f"({self.rows_per_second:.0f} rows/s), "
            f"{self.outcome.quarantined} quarantined, {self.outcome.rescued} with rescued fields ({timings})"
        )


def from_epoch_micros(micros: int) -> datetime:
    """Epoch microseconds (Spark's unix_micros) -> an aware UTC datetime, whatever the process's time zone."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def batch_size(bronze: DataFrame) -> tuple[int, datetime | None]:
    """A batch's rows and the broker time of its newest record (None when it has none), in one pass: the
    event's `input_rows` and `newest_record_ts`."""
    rows, newest = bronze.agg(F.count("*"), F.unix_micros(F.max("_kafka_ts"))).first()
    return rows, None if newest is None else from_epoch_micros(newest)


def _as_utc(moment: datetime) -> datetime:
    """Spark returns timestamps as naive datetimes of the process's zone; pymongo stores naive ones as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.astimezone().astimezone(UTC)


def event_id(app_id: str, batch_id: int) -> str:
    """`<app id>:<batch id>`: a pipeline event's `_id`. `app_id` names one sequence of batch ids (a query's
    checkpoint, lake.stream_app_id, or one backfill run), so a replayed batch has the same `_id`."""
    return f"{app_id}:{batch_id}"


def event_document(event: BatchEvent, app_id: str) -> dict[str, Any]:
    """The catalog.PIPELINE_EVENTS document of `event` (without `lag`, which the progress listener adds):
    times as UTC datetimes, `seconds` the sum of `steps` (step name -> seconds)."""
    return {
        "_id": event_id(app_id, event.batch_id),
        "source": event.source,
        "batch_id": event.batch_id,
        "started_at": event.started_at,
        "at": event.finished_at,
        "input_rows": event.input_rows,
        "seconds": event.seconds,
        "rows_per_second": event.rows_per_second,
        "steps": dict(event.steps),
        "quarantined": event.outcome.quarantined,
        "rescued": event.outcome.rescued,
        "newest_record_ts": _as_utc(event.newest_record_ts) if event.newest_record_ts else None,
        "freshness_seconds": event.freshness_seconds,
    }


def offset_ranges(bronze: DataFrame) -> str:
    """Per topic and partition: first and last offset and the number of records, as JSON."""
    rows = (
        bronze.groupBy("_topic", "_partition")
        .agg(F.min("_offset").alias("first"), F.max("_offset").alias("last"), F.count("*").alias("records"))
        .collect()
    )
    return json.dumps(
        {f"{r['_topic']}:{r['_partition']}": [r["first"], r["last"], r["records"]] for r in sorted(rows)},
        sort_keys=True,
    )


def append(spark: SparkSession, event: BatchEvent, bronze: DataFrame, path: str, app_id: str) -> None:
    """`app_id`: the batch's own (lake.append_once), so a replayed batch logs once and a new checkpoint's
    or backfill run's batches are all logged."""
    row = (
        event.source,
        event.batch_id,
        event.started_at,
        event.input_rows,
        event.outcome.quarantined,
        event.outcome.rescued,
        event.seconds,
        event.steps,
        offset_ranges(bronze),
    )
    frame = spark.createDataFrame([row], EVENT_SCHEMA)
    lake.append_once(frame, path, event.batch_id, app_id=f"event-log-{app_id}")
