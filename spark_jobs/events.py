"""The job's event log: one row per micro-batch (or backfill slice) in a Delta table, like a managed
pipeline's event log. Written with the batch's own idempotent append, so a replayed batch logs once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

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
    source: str  # "stream" or "backfill"
    batch_id: int
    started_at: datetime
    input_rows: int
    outcome: Outcome
    steps: dict[str, float]

    @property
    def seconds(self) -> float:
        return sum(self.steps.values())

    def describe(self) -> str:
        timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.steps.items())
        return (
            f"{self.source} batch {self.batch_id}: {self.input_rows} rows in {self.seconds:.1f}s "
            f"({self.input_rows / self.seconds if self.seconds else 0:.0f} rows/s), "
            f"{self.outcome.quarantined} quarantined, {self.outcome.rescued} with rescued fields ({timings})"
        )


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
