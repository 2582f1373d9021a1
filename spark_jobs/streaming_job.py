"""The streaming job: Kafka -> Delta bronze/silver/gold -> MongoDB serving collections.

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/streaming_job.py
    python -m spark_jobs.streaming_job --available-now     # process what is in Kafka, then stop

Each micro-batch (foreachBatch) is written idempotently everywhere, so the replay of a batch that was
interrupted before its checkpoint commit changes nothing: bronze appends carry (the checkpoint's app id,
batch id), silver MERGEs and MongoDB's version-guarded upserts (spark_jobs/mongo_sink.py) keep the higher
`_v` (transforms.record_version) per key.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.errors import PyMongoError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.mongo import redacted_uri
from lakehouse.settings import Settings, settings
from spark_jobs import events, gold, lake, mongo_sink, transforms, trends
from spark_jobs.monitoring import ProgressListener
from spark_jobs.session import build_spark
from spark_jobs.supervisor import run_supervised
from spark_jobs.topic_guard import TopicGuard

log = logging.getLogger("spark_jobs.streaming_job")

# Each gold Delta table (`gold/<name>`) recomputed from silver's current state, and the collection serving it.
GOLD_TABLES = {
    "category_stats": catalog.GOLD_CATEGORY_STATS,
    "price_buckets": catalog.GOLD_PRICE_BUCKETS,
    "rating_distribution": catalog.GOLD_RATING_DISTRIBUTION,
    "summary": catalog.GOLD_SUMMARY,
}
MOVERS_TABLE = "movers"
# The columns the movers read, for a lakehouse without a price or category history yet.
EMPTY_PRICE_HISTORY = "asin string, arrived_at timestamp, price double, title string, category_id long, _v string"
EMPTY_CATEGORY_HISTORY = "category_id long, category_name string, at timestamp, avg_price double"


def product_documents(enriched: DataFrame) -> DataFrame:
    """Silver products -> catalog.PRODUCTS documents (`_id` the asin)."""
    return enriched.select(F.col("asin").alias("_id"), *catalog.PRODUCTS.fields)


def category_documents(categories: DataFrame) -> DataFrame:
    """Silver categories -> catalog.CATEGORIES documents (`_id` the id)."""
    return categories.select(F.col("id").alias("_id"), *catalog.CATEGORIES.fields)


QUARANTINE_SCHEMA = (
    "_id string, _topic string, _partition int, _offset long, _kafka_ts timestamp, key string, reason string, "
    "raw_value string, raw_length int"
)


def quarantine_row(document: Mapping[str, Any], key: Any, reason: str) -> dict[str, Any]:
    """A quarantine row (transforms.quarantined's columns) for a silver row a sink refused (MongoDB, or the
    processed-product topic); its raw value is the row as JSON (non-finite numbers written as NaN/Infinity),
    cut like the job's (RAW_VALUE_CHARACTERS)."""
    raw = json.dumps({k: v for k, v in document.items() if k != "_id"}, default=str, ensure_ascii=False)
    millis = int(document["_kafka_ts"].timestamp() * 1000)
    return {
        "_id": f"{document['_topic']}:{document['_partition']}:{document['_offset']}@{millis}",
        **{name: document[name] for name in catalog.KAFKA_COLUMNS},
        "key": str(key),
        "reason": reason,
        "raw_value": raw[: transforms.RAW_VALUE_CHARACTERS],
        "raw_length": len(raw),
    }


# Kafka's default limits a record to 1 MiB (producer max.request.size, topic max.message.bytes), with overhead.
MAX_PUBLISHED_BYTES = 1_000_000


def rows_as_dicts(frame: DataFrame) -> list[dict[str, Any]]:
    """A micro-batch's rows for MongoDB; bounded by STREAM_MAX_OFFSETS_PER_TRIGGER (and a gold table's size)."""
    return [row.asDict(recursive=True) for row in frame.collect()]


def from_epoch_micros(micros: int) -> datetime:
    """Epoch microseconds (Spark's unix_micros) -> an aware UTC datetime, whatever the process's time zone."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def batch_size(bronze: DataFrame) -> tuple[int, datetime | None]:
    """A batch's rows and the broker time of its newest record (None when it has none), in one pass."""
    rows, newest = bronze.agg(F.count("*"), F.unix_micros(F.max("_kafka_ts"))).first()
    return rows, None if newest is None else from_epoch_micros(newest)


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
        self.topic_guard = TopicGuard(
            KafkaAdmin(config.kafka_bootstrap_servers), config.kafka_topics, self.query_checkpoint
        )
        self.spark.streams.addListener(ProgressListener(self.sink, lambda: self.last_quarantined))

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
        self.topic_guard.check()  # before anything is written: the batch may come from a re-created topic
        bronze = transforms.to_bronze(kafka_rows).persist()
        try:
            with self._step(steps, "read"):
                input_rows, newest_record_ts = batch_size(bronze)
            if input_rows == 0:
                return
            app_id = lake.stream_app_id(self.query_checkpoint)
            with self._step(steps, "bronze"):
                lake.append_once(bronze.withColumn("_read_by", F.lit(app_id)), self.tables.bronze, batch_id, app_id)
            outcome = self.apply(bronze, steps)
            finished_at = datetime.now(UTC)
            event = events.BatchEvent(
                "stream", batch_id, started_at, input_rows, outcome, steps, finished_at, newest_record_ts
            )
            self.record_event(event, bronze, app_id)
        finally:
            bronze.unpersist()

    def record_event(self, event: events.BatchEvent, bronze: DataFrame, app_id: str) -> None:
        """The batch's event: logged, appended to the Delta event log once, and written to MongoDB's
        pipeline_events (`_id` `<app_id>:<batch id>`: a replay rewrites it)."""
        log.info("%s", event.describe())
        events.append(self.spark, event, bronze, self.tables.event_log, app_id)
        self.sink.set_by_ids(catalog.PIPELINE_EVENTS, [events.event_document(event, app_id)])

    def apply(self, bronze: DataFrame, steps: dict[str, float], refresh_trends: bool = True) -> events.Outcome:
        """Bronze rows -> quarantine, silver, price history, MongoDB, the processed-product topic, gold and
        gold's trends (category points, movers; skipped when not `refresh_trends`). Idempotent: the streaming
        job runs it per micro-batch, the backfill over all of bronze, a slice at a time, with the trends only
        after its last slice (a point computed from part of silver would replace a kept one)."""
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
                    stats = self.sink.upsert_products(rows_as_dicts(product_documents(current)))
                    self._quarantine_sink_rejections(stats.rejected)
            # After the products: a record both sinks refuse is quarantined with the products sink's reason.
            with self._step(steps, "history"):
                self._record_price_history(products)
            with self._step(steps, "publish"):
                if current is not None:
                    self._publish(current)
            with self._step(steps, "gold"):
                served = self._refresh_gold()
            if refresh_trends:
                self._refresh_trends(served, steps)
            return outcome
        finally:
            for frame in cached:
                frame.unpersist()

    @staticmethod
    def _parse(bronze: DataFrame, topic: str, parse: Callable[[DataFrame], DataFrame]) -> DataFrame:
        return parse(bronze.where(F.col("_topic") == topic)).persist()

    def _silver(self, path: str) -> DataFrame | None:
        """The Delta table at `path` (any layer), None when it was not written yet."""
        return self.spark.read.format("delta").load(path) if lake.exists(self.spark, path) else None

    def _quarantine(self, categories: DataFrame, products: DataFrame) -> int:
        bad = transforms.quarantined(categories).unionByName(transforms.quarantined(products))
        # A record read by two checkpoints is twice in bronze (once per reader): one quarantine row (a rebuild
        # from bronze sees both copies in one batch).
        bad = bad.dropDuplicates(["_id"]).persist()
        count = bad.count()
        if count:
            lake.insert_new(self.spark, bad, self.tables.quarantine, "_id")
            self.sink.insert_quarantined(rows_as_dicts(bad))
            log.warning("quarantined %d record(s)", count)
        bad.unpersist()
        return count

    def _quarantine_sink_rejections(self, rejected: list[mongo_sink.Rejected]) -> None:
        """Records in silver that MongoDB refused: quarantined (Delta and MongoDB) with the sink's reason. They
        stay in silver, which can hold them, and MongoDB keeps serving the key's previous version if it had
        one; the consistency check leaves keys MongoDB lacks for that reason out of "silver = MongoDB"."""
        self._quarantine_rows([quarantine_row(r.document, r.key, r.reason) for r in rejected])

    def _quarantine_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        lake.insert_new(self.spark, self.spark.createDataFrame(rows, QUARANTINE_SCHEMA), self.tables.quarantine, "_id")
        self.sink.insert_quarantined(rows)
        self.last_quarantined += len(rows)
        log.warning("quarantined %d record(s) a sink cannot store, e.g. %s", len(rows), rows[0]["reason"])

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
        stats = self.sink.upsert_categories(
            rows_as_dicts(category_documents(current.join(categories.select("id"), "id", how="left_semi")))
        )
        self._quarantine_sink_rejections(stats.rejected)

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
        carries its `_v`, so a consumer keeping the highest `_v` (compared as text) per asin ends with
        silver's state."""
        published = current.select(
            F.col("asin").alias("key"), F.to_json(F.struct("asin", *catalog.PRODUCTS.fields)).alias("value")
        )
        fits = F.octet_length("value") <= MAX_PUBLISHED_BYTES
        too_large = current.join(published.where(~fits).select(F.col("key").alias("asin")), "asin", how="left_semi")
        self._quarantine_rows(
            [
                quarantine_row(
                    row,
                    row["asin"],
                    f"sink: processed-product value over Kafka's {MAX_PUBLISHED_BYTES:,}-byte record limit",
                )
                for row in rows_as_dicts(too_large)
            ]
        )
        (
            published.where(fits)
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.config.kafka_bootstrap_servers)
            .option("kafka.acks", "all")
            .option("topic", self.config.kafka_topic_processed)
            .save()
        )

    def _refresh_gold(self) -> dict[str, DataFrame] | None:
        """Gold recomputed from silver, written whole to Delta and MongoDB; returns the written tables (small,
        local DataFrames) by name, or None before silver has a product."""
        products = self._silver(self.tables.silver_products)
        if products is None:
            return None
        products = products.persist()
        aggregates = {
            "category_stats": gold.category_stats(products),
            "price_buckets": gold.price_buckets(products),
            "rating_distribution": gold.rating_distribution(products),
            "summary": gold.summary(products, self._current_categories()),
        }
        served = {name: self._replace_gold(name, frame, GOLD_TABLES[name]) for name, frame in aggregates.items()}
        products.unpersist()
        return served

    def _replace_gold(self, name: str, frame: DataFrame, served: catalog.ServingCollection) -> DataFrame:
        """Computes `frame` once and replaces gold/<name> and the collection `served` with it; returns it as a
        local DataFrame."""
        rows = rows_as_dicts(frame)
        written = self.spark.createDataFrame(rows, frame.schema) if rows else frame
        lake.overwrite(written, self.tables.gold(name))
        self.sink.replace_gold(served, rows)
        return written

    def _record_price_history(self, checked_products: DataFrame) -> None:
        """Every valid product version of the batch -> silver/price_history (inserted once per `_id`) and
        MongoDB price_history (replaced by `_id`); a version MongoDB cannot hold is quarantined."""
        history = trends.price_history(transforms.valid_product_versions(checked_products)).persist()
        try:
            rows = rows_as_dicts(history)
            if not rows:
                return
            lake.insert_new(self.spark, history, self.tables.price_history, "_id")
            fields = ("_id", *catalog.PRICE_HISTORY.fields)
            stats = self.sink.replace_by_ids(catalog.PRICE_HISTORY, [{f: row[f] for f in fields} for row in rows])
            by_id = {row["_id"]: row for row in rows}
            refused = [self._price_history_rejection(by_id[r.key], r.reason) for r in stats.rejected]
            self._quarantine_rows(self._not_quarantined(refused))
        finally:
            history.unpersist()

    def _not_quarantined(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The quarantine rows whose record is not in the quarantine table yet: a record keeps the reason it
        was first quarantined with, in Delta and MongoDB alike. Reads the table only when there are rows."""
        if not rows or not lake.exists(self.spark, self.tables.quarantine):
            return rows
        ids = [row["_id"] for row in rows]
        stored = self.spark.read.format("delta").load(self.tables.quarantine).where(F.col("_id").isin(ids))
        known = {row["_id"] for row in stored.select("_id").collect()}
        return [row for row in rows if row["_id"] not in known]

    @staticmethod
    def _price_history_rejection(row: Mapping[str, Any], reason: str) -> dict[str, Any]:
        served_as = f"sink: {catalog.PRICE_HISTORY.name}: {reason.removeprefix('sink: ')}"
        return quarantine_row(row, row["asin"], served_as)

    def _refresh_trends(self, served: dict[str, DataFrame] | None, steps: dict[str, float]) -> None:
        """After gold (`served`: its tables, None before silver has a product): the category points of the
        bucket holding the newest arrival (silver's newest broker time, product or category, so a replay
        computes the same and a category renamed later gets a point of its own), then the movers up to that
        arrival. Timed as the steps `points` and `movers`."""
        newest_micros = None
        if served is not None:
            [newest_micros] = served["summary"].select(F.unix_micros("newest_record_ts")).first()
            times = (newest_micros, self._newest_category_micros())
            newest_micros = max((t for t in times if t is not None), default=None)
        with self._step(steps, "points"):
            if served is not None and newest_micros is not None:
                at = trends.bucket_start(newest_micros // 1_000_000, self.config.trends_bucket_seconds)
                self._record_category_point(trends.category_history(served["category_stats"], at))
        with self._step(steps, "movers"):
            if newest_micros is not None:
                self._refresh_movers(from_epoch_micros(newest_micros))

    def _newest_category_micros(self) -> int | None:
        """Silver categories' newest broker time in epoch microseconds; None without categories."""
        categories = self._silver(self.tables.silver_categories)
        return None if categories is None else categories.agg(F.unix_micros(F.max("_kafka_ts"))).first()[0]

    def _refresh_movers(self, until: datetime) -> None:
        """gold/movers and gold_movers, replaced by the moves of every window ending at `until`."""
        history = self._silver(self.tables.price_history)
        if history is None:
            history = self.spark.createDataFrame([], EMPTY_PRICE_HISTORY)
        category_history = self._silver(self.tables.category_history)
        if category_history is None:
            category_history = self.spark.createDataFrame([], EMPTY_CATEGORY_HISTORY)
        movers = trends.product_movers(history, self._current_categories(), until).unionByName(
            trends.category_movers(category_history, until)
        )
        self._replace_gold(MOVERS_TABLE, movers, catalog.GOLD_MOVERS)

    def _record_category_point(self, points: DataFrame) -> None:
        """One point per category for the current bucket: replaces the bucket's point (the last refresh in a
        bucket wins) in gold/category_history and MongoDB, never touching other points."""
        rows = rows_as_dicts(points)
        if not rows:
            return
        lake.replace_by_key(
            self.spark, self.spark.createDataFrame(rows, points.schema), self.tables.category_history, "_id"
        )
        self.sink.replace_by_ids(catalog.GOLD_CATEGORY_HISTORY, rows)

    def start(self, available_now: bool = False) -> Any:
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
    if outdated := lake.outdated_version_tables(spark, job.tables) + job.sink.outdated_versions():
        raise SystemExit(
            f"{', '.join(outdated)} keep Kafka offsets as versions (an earlier release); rebuild silver, gold and "
            "MongoDB from bronze with the broker-time versions: `make backfill` (README.md, Backfill), then start "
            "the job again"
        )
    run_supervised(job, args.available_now)


def connected_job(spark: SparkSession) -> IngestJob:
    """The job, once MongoDB answers: a server that starts after the job (or is away) is waited for, as the
    supervisor waits for it while the job runs."""
    delay = 5
    while True:
        try:
            return IngestJob(spark)
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
