"""Micro-batch progress: logged, kept in MongoDB's `pipeline_status` for the dashboard and the API, and each
batch's lag per topic added to its `pipeline_events` document (events.event_document)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from lakehouse import catalog
from spark_jobs import events, lake
from spark_jobs.mongo_sink import MongoSink

log = logging.getLogger("spark_jobs.progress")


def lag_from_offsets(end_offset: str | None, latest_offset: str | None) -> dict[str, int]:
    """Per topic: records available in Kafka (latestOffset) beyond what the batch read to (endOffset)."""
    end, latest = _offsets(end_offset), _offsets(latest_offset)
    return {
        topic: sum(max(0, offset - end.get(topic, {}).get(partition, 0)) for partition, offset in partitions.items())
        for topic, partitions in latest.items()
    }


def _offsets(text: str | None) -> dict[str, dict[str, int]]:
    """A source's offsets JSON; {} when absent or not JSON (seen after a restart while Kafka was away: the
    listener must not fail on it, it only reports)."""
    try:
        offsets = json.loads(text) if text else {}
    except ValueError:
        return {}
    return offsets if isinstance(offsets, dict) else {}


def lag_from_sources(sources: Iterable[Any]) -> dict[str, int]:
    lag: dict[str, int] = {}
    for source in sources:
        for topic, behind in lag_from_offsets(source.endOffset, source.latestOffset).items():
            lag[topic] = lag.get(topic, 0) + behind
    return lag


def status_document(progress: Any, quarantined: int) -> dict[str, Any]:
    return {
        "_id": catalog.STREAMING_JOB_STATUS_ID,
        "batch_id": progress.batchId,
        "input_rows": progress.numInputRows,
        "input_rows_per_second": progress.inputRowsPerSecond,
        "processed_rows_per_second": progress.processedRowsPerSecond,
        "batch_duration_ms": progress.batchDuration,
        "batch_started_at": progress.timestamp,
        "quarantined": quarantined,
        "lag": lag_from_sources(progress.sources),
        "updated_at": datetime.now(UTC),
    }


def batch_event_id(progress: Any) -> str:
    """The `pipeline_events` `_id` of the batch `progress` reports. The progress's `id` is the query's id,
    which Spark reads from (or, on a first start, writes to) the checkpoint's `metadata` file
    (StreamExecution: `id = UUID.fromString(streamMetadata.id)`), the one lake.stream_app_id reads: so the
    listener names the document the batch itself wrote."""
    return events.event_id(lake.query_app_id(progress.id), progress.batchId)


class ProgressListener(StreamingQueryListener):
    """`quarantined` tells how many records the batch just finished sent to quarantine."""

    def __init__(self, sink: MongoSink, quarantined: Callable[[], int]) -> None:
        self.sink = sink
        self.quarantined = quarantined

    def onQueryStarted(self, event: Any) -> None:
        log.info("query %s started (run %s)", event.name, event.runId)

    def onQueryProgress(self, event: Any) -> None:
        status = status_document(event.progress, self.quarantined())
        log.info(
            "batch %d: %d rows in %d ms (%.0f rows/s), %d quarantined, lag %s",
            status["batch_id"],
            status["input_rows"],
            status["batch_duration_ms"],
            status["processed_rows_per_second"] or 0,
            status["quarantined"],
            status["lag"],
        )
        self.sink.write_status(status)
        if status["input_rows"]:
            # A batch of no records (offsets past transaction markers only) wrote no event to add to.
            self.sink.update_fields(catalog.PIPELINE_EVENTS, batch_event_id(event.progress), {"lag": status["lag"]})

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        if event.exception:
            log.error("query %s failed: %s", event.id, event.exception)
        else:
            log.info("query %s stopped", event.id)
