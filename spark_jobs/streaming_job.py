"""The streaming job: Kafka -> bronze, then each micro-batch through the pipeline (pipeline.py), under the
supervisor's restarts (supervisor.py). Gold and its trends are refreshed from silver at the end of each
micro-batch, or with GOLD_REFRESH=background on a thread of their own (gold_refresher.py).

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/streaming_job.py
    python -m spark_jobs.streaming_job --available-now     # process what is in Kafka, then stop

The replay of a micro-batch (foreachBatch) that was interrupted before its checkpoint commit changes nothing
in the lakehouse or MongoDB: bronze appends carry (the checkpoint's app id, batch id) and are written once,
and the later steps are idempotent (pipeline.py says how each is, and what the processed topic gets).
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from pymongo.errors import PyMongoError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.mongo import redacted_uri
from lakehouse.settings import settings
from spark_jobs import events, lake, transforms
from spark_jobs.gold_refresher import GoldRefresher
from spark_jobs.monitoring import ProgressListener
from spark_jobs.pipeline import IngestPipeline, Steps, timed_step
from spark_jobs.session import build_spark
from spark_jobs.supervisor import run_supervised
from spark_jobs.topic_guard import TopicGuard

log = logging.getLogger("spark_jobs.streaming_job")


class StreamingJob:
    """The streaming query over the input topics: reads Kafka, writes each micro-batch to bronze and runs it
    through `pipeline`. Connects the progress listener (monitoring.py) to `spark`'s streams."""

    def __init__(self, spark: SparkSession, pipeline: IngestPipeline) -> None:
        self.spark = spark
        self.pipeline = pipeline
        self.config = pipeline.config
        self.topic_guard = TopicGuard(
            KafkaAdmin(self.config.kafka_bootstrap_servers), self.config.kafka_topics, self.query_checkpoint
        )
        spark.streams.addListener(ProgressListener(pipeline.serving.sink, lambda: pipeline.last_quarantined))
        self.gold = GoldRefresher(self.refresh_gold, self.config.gold_refresh_pause_seconds)

    def refresh_gold(self) -> None:
        """Gold and its trends from silver's newest versions (on the gold refresher's thread), logged with the
        seconds of each step."""
        steps: Steps = {}
        self.pipeline.refresh_gold(steps)
        timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in steps.items())
        log.info("gold refreshed in %.1fs (%s)", sum(steps.values()), timings)

    @property
    def query_checkpoint(self) -> Path:
        return self.config.query_checkpoint_dir

    def kafka_source(self) -> DataFrame:
        return (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", self.config.kafka_bootstrap_servers)
            .option("subscribe", ",".join(self.config.kafka_topics))
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", self.config.stream_max_offsets_per_trigger)
            .option("kafka.isolation.level", "read_committed")
            .option("failOnDataLoss", str(self.config.stream_fail_on_data_loss).lower())
            .load()
        )

    def process_batch(self, kafka_rows: DataFrame, batch_id: int) -> None:
        """One micro-batch: bronze first (so every later layer can be rebuilt from it), then the pipeline, then
        the batch's event. Raises TopicChanged (topic_guard.py) before writing anything when an input topic
        is not the one this checkpoint read."""
        steps: Steps = {}
        started_at = datetime.now(UTC)
        self.topic_guard.check()  # before anything is written: the batch may come from a re-created topic
        bronze = transforms.to_bronze(kafka_rows).persist()
        try:
            with timed_step(steps, "read", self.config):
                input_rows, newest_record_ts = events.batch_size(bronze)
            if input_rows == 0:
                return
            app_id = lake.stream_app_id(self.query_checkpoint)
            with timed_step(steps, "bronze", self.config):
                lake.append_once(
                    bronze.withColumn("_read_by", F.lit(app_id)), self.pipeline.tables.bronze, batch_id, app_id
                )
            outcome = self.pipeline.apply(bronze, steps, refresh_gold=self.config.gold_refresh == "in-batch")
            finished_at = datetime.now(UTC)
            event = events.BatchEvent(
                "stream", batch_id, started_at, input_rows, outcome, steps, finished_at, newest_record_ts
            )
            self.pipeline.record_event(event, bronze, app_id)
            if self.config.gold_refresh == "background":
                self.gold.request()
        finally:
            bronze.unpersist()

    def start(self, available_now: bool = False) -> StreamingQuery:
        """Start the query; raises TopicChanged (topic_guard.py) before starting when an input topic is not
        the one this checkpoint read or is not stamped by the broker."""
        self.topic_guard.check()
        writer = (
            self.kafka_source()
            .writeStream.foreachBatch(self.process_batch)
            .option("checkpointLocation", str(self.query_checkpoint))
            .queryName("ingest")
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.config.stream_trigger_seconds} seconds")
        return writer.start()


def main(argv: list[str] | None = None) -> None:
    """Runs the job until an available-now run is done; SystemExit(1) when it stops (supervisor.py) or finds
    tables of an earlier release."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--available-now", action="store_true", help="process every record now in Kafka, then stop (batch-style run)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = build_spark("amazon-lakehouse-ingest")
    log.info(
        "streaming from %s into %s and %s",
        settings.kafka_bootstrap_servers,
        settings.lakehouse_dir,
        redacted_uri(settings.mongo_uri),
    )
    job = connected_job(spark)
    if outdated := job.pipeline.outdated_versions():
        raise SystemExit(
            f"{', '.join(outdated)} keep Kafka offsets as versions (an earlier release); rebuild silver, gold and "
            "MongoDB from bronze with the broker-time versions: `make backfill` (README.md, Backfill), then start "
            "the job again"
        )
    if settings.gold_refresh == "background":
        job.gold.start()
        job.gold.request()  # a refresh the job owed when it last stopped is not lost
    run_supervised(job, args.available_now)
    job.gold.finish()  # an available-now run stops with gold built from its last batch


def connected_job(spark: SparkSession) -> StreamingJob:
    """The job, once MongoDB answers: a server that starts after the job (or is away) is waited for, as the
    supervisor waits for it while the job runs."""
    delay = 5
    while True:
        try:
            return StreamingJob(spark, IngestPipeline.connect(spark))
        except PyMongoError as error:
            log.error(
                "MongoDB does not answer at %s (%s); trying again in %ds",
                redacted_uri(settings.mongo_uri),
                error,
                delay,
            )
            time.sleep(delay)
            delay = min(delay + 5, 60)


if __name__ == "__main__":
    main()
