"""The streaming job: Kafka -> Delta bronze/silver/gold -> MongoDB serving collections.

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/streaming_job.py
    python -m spark_jobs.streaming_job --available-now     # process what is in Kafka, then stop

Each micro-batch (foreachBatch) is written idempotently everywhere, so the replay of a batch that was
interrupted before its checkpoint commit changes nothing: bronze appends carry (app id, batch id),
silver MERGEs and MongoDB's version-guarded upserts (spark_jobs/mongo_sink.py) keep the higher `_v` per key.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.schemas import CATEGORY_FIELDS, PRODUCT_FIELDS
from lakehouse.settings import Settings, settings
from spark_jobs import events, gold, lake, mongo_sink, transforms
from spark_jobs.monitoring import ProgressListener
from spark_jobs.session import build_spark

log = logging.getLogger("spark_jobs.streaming_job")

# A served product: the contract's fields, its category's name, and where it came from (transforms.py).
PRODUCT_DOCUMENT_FIELDS = (*PRODUCT_FIELDS, "category_name", "_rescued_data", *transforms.KAFKA_COLUMNS, "_v")
CATEGORY_DOCUMENT_FIELDS = (*CATEGORY_FIELDS, "_offset", "_kafka_ts", "_v")


def product_documents(enriched: DataFrame) -> DataFrame:
    return enriched.select(F.col("asin").alias("_id"), *PRODUCT_DOCUMENT_FIELDS)


def category_documents(categories: DataFrame) -> DataFrame:
    return categories.select(F.col("id").alias("_id"), *CATEGORY_DOCUMENT_FIELDS)


def rows_as_dicts(frame: DataFrame) -> list[dict[str, Any]]:
    """A micro-batch's rows for MongoDB; bounded by STREAM_MAX_OFFSETS_PER_TRIGGER (and a gold table's size)."""
    return [row.asDict(recursive=True) for row in frame.collect()]


def _rescued(categories: DataFrame, products: DataFrame) -> int:
    """Valid records that carried unknown fields (kept in `_rescued_data`): schema drift made visible."""
    kept = F.col("_error").isNull() & F.col("_rescued_data").isNotNull()
    return categories.where(kept).count() + products.where(kept).count()


class IngestJob:
    def __init__(self, spark: SparkSession, config: Settings = settings) -> None:
        self.spark = spark
        self.config = config
        self.tables = lake.LakeTables(config.lakehouse_dir)
        self.sink = mongo_sink.MongoSink.connect(config)
        self.sink.setup()
        self.last_quarantined = 0
        self.spark.streams.addListener(ProgressListener(self.sink, lambda: self.last_quarantined))

    def kafka_source(self) -> DataFrame:
        return (
            self.spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", self.config.kafka_bootstrap_servers)
            .option("subscribe", ",".join(self.config.kafka_topics))
            .option("startingOffsets", "earliest")
            .option("maxOffsetsPerTrigger", self.config.stream_max_offsets_per_trigger)
            .option("kafka.isolation.level", "read_committed")
            .load()
        )

    @contextmanager
    def _step(self, steps: dict[str, float], name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        steps[name] = time.monotonic() - started
        if self.config.stream_crash_after_step == name:
            log.warning("STREAM_CRASH_AFTER_STEP=%s: killing the job mid-batch, as a crash test asked", name)
            os.killpg(os.getpgid(0), signal.SIGKILL)

    def process_batch(self, kafka_rows: DataFrame, batch_id: int) -> None:
        """One micro-batch: bronze first (so every later layer can be rebuilt from it), then the rest."""
        steps: dict[str, float] = {}
        started_at = datetime.now(UTC)
        bronze = transforms.to_bronze(kafka_rows).persist()
        try:
            with self._step(steps, "read"):
                input_rows = bronze.count()
            if input_rows == 0:
                return
            with self._step(steps, "bronze"):
                lake.append_once(bronze, self.tables.bronze, batch_id)
            outcome = self.apply(bronze, steps)
            self._log_event(events.BatchEvent("stream", batch_id, started_at, input_rows, outcome, steps), bronze)
        finally:
            bronze.unpersist()

    def apply(self, bronze: DataFrame, steps: dict[str, float]) -> events.Outcome:
        """Bronze rows -> quarantine, silver, MongoDB, the processed-product topic and gold. Idempotent:
        the streaming job runs it per micro-batch, the backfill over all of bronze."""
        cached: list[DataFrame] = []
        try:
            with self._step(steps, "quarantine"):
                categories = self._parse(bronze, self.config.kafka_topic_categories, transforms.parse_categories)
                products = self._parse(bronze, self.config.kafka_topic_products, transforms.parse_products)
                cached += [categories, products]
                outcome = events.Outcome(self._quarantine(categories, products), _rescued(categories, products))
                self.last_quarantined = outcome.quarantined
            new_categories = transforms.valid_categories(categories).persist()
            new_products = transforms.valid_products(products).persist()
            cached += [new_categories, new_products]
            with self._step(steps, "touched"):
                touched = self._touched_products(new_categories, new_products)
            cached.append(touched)
            with self._step(steps, "categories"):
                self._upsert_categories(new_categories)
            with self._step(steps, "silver"):
                self._upsert_products(new_products)
            with self._step(steps, "mongo"):
                current = self._current_rows(touched)
                if current is not None:
                    cached.append(current)
                    self.sink.upsert_products(rows_as_dicts(product_documents(current)))
            with self._step(steps, "publish"):
                if current is not None:
                    self._publish(current)
            with self._step(steps, "gold"):
                self._refresh_gold()
            return outcome
        finally:
            for frame in cached:
                frame.unpersist()

    def _log_event(self, event: events.BatchEvent, bronze: DataFrame) -> None:
        log.info("%s", event.describe())
        events.append(self.spark, event, bronze, self.tables.event_log)

    @staticmethod
    def _parse(bronze: DataFrame, topic: str, parse: Callable[[DataFrame], DataFrame]) -> DataFrame:
        return parse(bronze.where(F.col("_topic") == topic)).persist()

    def _silver(self, path: str) -> DataFrame | None:
        return self.spark.read.format("delta").load(path) if lake.exists(self.spark, path) else None

    def _quarantine(self, categories: DataFrame, products: DataFrame) -> int:
        bad = transforms.quarantined(categories).unionByName(transforms.quarantined(products)).persist()
        count = bad.count()
        if count:
            lake.insert_new(self.spark, bad, self.tables.quarantine, "_id")
            self.sink.insert_quarantined(rows_as_dicts(bad))
            log.warning("quarantined %d record(s)", count)
        bad.unpersist()
        return count

    def _touched_products(self, categories: DataFrame, products: DataFrame) -> DataFrame:
        """Before the MERGEs: the asins whose silver row this batch changes (its products, and the products of
        the categories it renames), so whose MongoDB document is rewritten."""
        silver = self._silver(self.tables.silver_products)
        if silver is None:
            return products.select("asin").persist()
        known = self._silver(self.tables.silver_categories)
        renamed = categories.select(F.col("id").alias("category_id"), "category_name")
        if known is not None:
            before = known.select(F.col("id").alias("category_id"), F.col("category_name").alias("old_name"))
            renamed = renamed.join(before, "category_id", how="left").where(
                F.col("old_name").isNull() | (F.col("old_name") != F.col("category_name"))
            )
        renamed_ids = [row["category_id"] for row in renamed.select("category_id").collect()]
        renamed_products = silver.where(F.col("category_id").isin(renamed_ids)).select("asin")
        # A set union of keys: an asin both updated and in a renamed category is one key to rewrite.
        return products.select("asin").unionByName(renamed_products).distinct().persist()

    def _upsert_categories(self, categories: DataFrame) -> None:
        if categories.isEmpty():
            return
        lake.upsert_newer(self.spark, categories, self.tables.silver_categories, "id")
        lake.rename_products(self.spark, categories, self.tables.silver_products)
        current = self.spark.read.format("delta").load(self.tables.silver_categories)
        self.sink.upsert_categories(
            rows_as_dicts(category_documents(current.join(categories.select("id"), "id", how="left_semi")))
        )

    def _current_categories(self) -> DataFrame:
        current = self._silver(self.tables.silver_categories)
        return current if current is not None else self.spark.createDataFrame([], "id long, category_name string")

    def _upsert_products(self, products: DataFrame) -> None:
        if not products.isEmpty():
            enriched = transforms.enrich_with_categories(products, self._current_categories())
            lake.upsert_newer(self.spark, enriched, self.tables.silver_products, "asin")

    def _current_rows(self, touched: DataFrame) -> DataFrame | None:
        """Silver's current row for every product the batch touched."""
        silver = self._silver(self.tables.silver_products)
        return None if silver is None else silver.join(touched, "asin", how="left_semi").persist()

    def _publish(self, current: DataFrame) -> None:
        """Enriched products to the processed-product topic, keyed by asin: at least once, and each value
        carries its `_v`, so a consumer keeping the highest `_v` per asin ends with silver's state."""
        (
            current.select(
                F.col("asin").alias("key"), F.to_json(F.struct("asin", *PRODUCT_DOCUMENT_FIELDS)).alias("value")
            )
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.config.kafka_bootstrap_servers)
            .option("kafka.acks", "all")
            .option("topic", self.config.kafka_topic_processed)
            .save()
        )

    def _refresh_gold(self) -> None:
        products = self._silver(self.tables.silver_products)
        if products is None:
            return
        products = products.persist()
        aggregates = {
            "category_stats": gold.category_stats(products),
            "price_buckets": gold.price_buckets(products),
            "rating_distribution": gold.rating_distribution(products),
            "summary": gold.summary(products, self._current_categories()),
        }
        for name, frame in aggregates.items():
            rows = rows_as_dicts(frame)
            lake.overwrite(self.spark.createDataFrame(rows, frame.schema) if rows else frame, self.tables.gold(name))
            self.sink.replace_gold(name, rows)
        products.unpersist()

    def start(self, available_now: bool = False) -> Any:
        writer = (
            self.kafka_source()
            .writeStream.foreachBatch(self.process_batch)
            .option("checkpointLocation", str(self.config.checkpoint_dir / "ingest"))
            .queryName("ingest")
        )
        if available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.config.stream_trigger_seconds} seconds")
        return writer.start()


MAX_RESTARTS = 30


def run_supervised(job: IngestJob, available_now: bool) -> None:
    """Run the query; when it fails (Kafka or MongoDB away), log it and start it again from the checkpoint.
    The unfinished micro-batch is replayed, which every write tolerates."""
    restarts = 0
    while True:
        query = job.start(available_now=available_now)
        try:
            query.awaitTermination()
            return
        except StreamingQueryException as error:
            restarts = 1 if query.lastProgress else restarts + 1
            if restarts > MAX_RESTARTS:
                raise
            delay = min(5 * restarts, 60)
            reason = str(error).strip().splitlines()[0][:300]
            log.error("query failed: %s; restarting from the checkpoint in %ds (%d in a row)", reason, delay, restarts)
            time.sleep(delay)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--available-now", action="store_true", help="process every record now in Kafka, then stop (batch-style run)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = build_spark("amazon-lakehouse-ingest")
    log.info(
        "streaming from %s into %s and %s", settings.kafka_bootstrap_servers, settings.lakehouse_dir, settings.mongo_uri
    )
    run_supervised(IngestJob(spark), args.available_now)


if __name__ == "__main__":
    main()
