"""The steps a batch of bronze rows goes through, in order (`IngestPipeline.apply`): quarantine, silver, MongoDB,
price history, the processed-product topic, then gold and gold's trends (`refresh_gold`).

The streaming job (streaming_job.py) runs it on each micro-batch once the batch is in bronze (gold at its
end, or with GOLD_REFRESH=background on a thread of its own: gold_refresher.py); the backfill (backfill.py) on
all of bronze, a slice at a time, and gold after the last slice. A replayed batch changes nothing but the
processed-product topic, which is at-least-once (a consumer keeping the higher `_v` ignores the copies):
silver MERGEs and MongoDB's version-guarded upserts (mongo_sink.py) keep the higher `_v`
(transforms.record_version) per key, quarantine and price history insert once per `_id`, gold and its trends
are recomputed and replaced.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.settings import Settings, settings
from spark_jobs import changes, events, gold, lake, transforms, trends
from spark_jobs.serving_writer import QuarantineRow, ServingWriter, rows_as_dicts

log = logging.getLogger("spark_jobs.pipeline")

# Each gold Delta table (`gold/<name>`) recomputed from silver's current state, and the collection serving it.
GOLD_TABLES = {
    "category_stats": catalog.GOLD_CATEGORY_STATS,
    "price_buckets": catalog.GOLD_PRICE_BUCKETS,
    "rating_distribution": catalog.GOLD_RATING_DISTRIBUTION,
    "summary": catalog.GOLD_SUMMARY,
}
MOVERS_TABLE = "movers"
GOLD_STEPS = ("gold", "delta_gold", "points", "movers")  # the steps of a gold refresh (refresh_gold)
# The columns the steps read, for a lakehouse without categories, a price or a category history yet.
EMPTY_CATEGORIES = "id long, category_name string, _kafka_ts timestamp"
EMPTY_PRICE_HISTORY = "asin string, arrived_at timestamp, price double, title string, category_id long, _v string"
EMPTY_CATEGORY_HISTORY = "category_id long, category_name string, at timestamp, avg_price double"
QUARANTINE_SCHEMA = (
    "_id string, _topic string, _partition int, _offset long, _kafka_ts timestamp, key string, reason string, "
    "raw_value string, raw_length int"
)

Steps = dict[str, float]  # step name -> seconds, in the order the steps ran (events.BatchEvent.steps)


class GoldBuild(NamedTuple):
    """One gold refresh's computation: its tables (small, local DataFrames, by GOLD_TABLES name), the silver
    versions they were built from (`silver_products_version`, `silver_categories_version`: None before silver
    has a category) and silver's categories at that version."""

    tables: dict[str, DataFrame]
    versions: dict[str, int | None]
    categories: DataFrame


@contextmanager
def timed_step(steps: Steps, name: str, config: Settings) -> Iterator[None]:
    """Times the block as the step `name` in `steps`. Then, when STREAM_CRASH_AFTER_STEP names it, kills the
    job's whole process group, as a crash test asks."""
    started = time.monotonic()
    yield
    steps[name] = time.monotonic() - started
    if config.stream_crash_after_step == name:
        log.warning("STREAM_CRASH_AFTER_STEP=%s: killing the job mid-batch, as a crash test asked", name)
        os.killpg(os.getpgid(0), signal.SIGKILL)


def _newest_arrival_micros(built: GoldBuild) -> int | None:
    """Silver's newest broker time, product (from gold's summary) or category, in epoch microseconds; None when
    neither has one. So a replay computes the same, and a category renamed later gets a point of its own."""
    [product_micros] = built.tables["summary"].select(F.unix_micros("newest_record_ts")).first()
    [category_micros] = built.categories.agg(F.unix_micros(F.max("_kafka_ts"))).first()
    return max((t for t in (product_micros, category_micros) if t is not None), default=None)


def _rescued(categories: DataFrame, products: DataFrame) -> int:
    """Valid records that carried unknown fields (kept in `_rescued_data`): schema drift made visible."""
    kept = F.col("_error").isNull() & F.col("_rescued_data").isNotNull()
    return categories.where(kept).count() + products.where(kept).count()


class IngestPipeline:
    """Bronze rows -> the lakehouse's silver and gold (Delta, under `config.lakehouse_dir`) and the serving side
    (`serving`: MongoDB and the processed-product topic). Connects no streaming listener: the streaming job
    does. `last_quarantined` counts the records the last batch sent to quarantine."""

    def __init__(self, spark: SparkSession, config: Settings, serving: ServingWriter) -> None:
        self.spark = spark
        self.config = config
        self.serving = serving
        self.tables = lake.LakeTables(config.lakehouse_dir)
        self.last_quarantined = 0

    @classmethod
    def connect(cls, spark: SparkSession, config: Settings = settings) -> IngestPipeline:
        """The pipeline writing to `config`'s lakehouse and MongoDB. Raises PyMongoError when MongoDB does not
        answer."""
        return cls(spark, config, ServingWriter.connect(config))

    def apply(self, bronze: DataFrame, steps: Steps, refresh_gold: bool = True) -> events.Outcome:
        """Bronze rows (transforms.to_bronze's columns) through every step, each timed into `steps` by name;
        gold and its trends (refresh_gold's steps, GOLD_STEPS) only when `refresh_gold`. The backfill
        refreshes them after its last slice only: gold is recomputed from all of silver, so a refresh after
        every slice is work the last one redoes, and a point computed from part of silver would replace a
        kept one."""
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
                touched = changes.touched_products(self.spark, self.tables, new_categories, new_products)
            cached.append(touched)
            with self._step(steps, "categories"):
                self._upsert_categories(new_categories)
            with self._step(steps, "silver"):
                self._upsert_products(new_products)
            with self._step(steps, "mongo"):
                current = changes.current_rows(self.spark, self.tables, touched)
                if current is not None:
                    cached.append(current)
                    self._quarantine_rows(self.serving.products(current))
            # After the products: a record both sinks refuse is quarantined with the products sink's reason.
            with self._step(steps, "history"):
                self._record_price_history(products)
            with self._step(steps, "publish"):
                if current is not None:
                    self._quarantine_rows(self.serving.unpublishable(current))
                    self.serving.publish(current)
            if refresh_gold:
                self.refresh_gold(steps)
            return outcome
        finally:
            for frame in cached:
                frame.unpersist()

    @staticmethod
    def _parse(bronze: DataFrame, topic: str, parse: Callable[[DataFrame], DataFrame]) -> DataFrame:
        return parse(bronze.where(F.col("_topic") == topic)).persist()

    def _quarantine(self, categories: DataFrame, products: DataFrame) -> int:
        """The records the contract refuses -> quarantine (Delta and MongoDB); returns how many."""
        bad = transforms.quarantined(categories).unionByName(transforms.quarantined(products))
        # A record read by two checkpoints is twice in bronze (once per reader): one quarantine row (a rebuild
        # from bronze sees both copies in one batch).
        bad = bad.dropDuplicates(["_id"]).persist()
        count = bad.count()
        if count:
            lake.insert_new(self.spark, bad, self.tables.quarantine, "_id")
            self.serving.quarantine(rows_as_dicts(bad))
            log.warning("quarantined %d record(s)", count)
        bad.unpersist()
        return count

    def _upsert_categories(self, categories: DataFrame) -> None:
        """The batch's valid categories -> silver, then silver's versions of them (the batch's, unless silver
        held a newer one) rename their products there and go to MongoDB."""
        if categories.isEmpty():
            return
        lake.upsert_newer(self.spark, categories, self.tables.silver_categories, "id")
        silver = self.spark.read.format("delta").load(self.tables.silver_categories)
        current = silver.join(categories.select("id"), "id", how="left_semi").persist()
        try:
            # Not the batch's rows: an older version arriving later (a partition read behind another) would
            # give the products a name silver no longer has.
            lake.rename_products(self.spark, current, self.tables.silver_products)
            self._quarantine_rows(self.serving.categories(current))
        finally:
            current.unpersist()

    def _upsert_products(self, products: DataFrame) -> None:
        """The batch's valid products, with their category's name -> silver."""
        if not products.isEmpty():
            enriched = transforms.enrich_with_categories(products, self._current_categories())
            lake.upsert_newer(self.spark, enriched, self.tables.silver_products, "asin")

    def _record_price_history(self, checked_products: DataFrame) -> None:
        """Every valid product version of the batch -> silver/price_history (inserted once per `_id`) and
        MongoDB price_history (replaced by `_id`); a version MongoDB cannot hold is quarantined."""
        history = trends.price_history(transforms.valid_product_versions(checked_products)).persist()
        try:
            rows = rows_as_dicts(history)
            if not rows:
                return
            lake.insert_new(self.spark, history, self.tables.price_history, "_id")
            self._quarantine_rows(self._not_quarantined(self.serving.price_history(rows)))
        finally:
            history.unpersist()

    def _not_quarantined(self, rows: list[QuarantineRow]) -> list[QuarantineRow]:
        """The quarantine rows whose record is not in the quarantine table yet: a record keeps the reason it
        was first quarantined with, in Delta and MongoDB alike. Reads the table only when there are rows."""
        if not rows or not lake.exists(self.spark, self.tables.quarantine):
            return rows
        ids = [row["_id"] for row in rows]
        stored = self.spark.read.format("delta").load(self.tables.quarantine).where(F.col("_id").isin(ids))
        known = {row["_id"] for row in stored.select("_id").collect()}
        return [row for row in rows if row["_id"] not in known]

    def refresh_gold(self, steps: Steps) -> None:
        """Gold and its trends recomputed from silver's newest versions, pinned while the batches commit; timed
        into `steps` as `gold` (computed, then MongoDB's gold collections, which the dashboard reads),
        `delta_gold` (the Delta gold tables), `points` and `movers`. Once all is written, the `gold_refresh`
        status document records the silver versions it was built from: gold is current when they are silver's
        newest. The trends read silver's categories at the same version, and the price history as it is then
        (written by the batches after silver). The streaming job runs it at the end of each batch or on a thread
        of its own (gold_refresher.py), the backfill after its last slice. Raises what the Delta and MongoDB
        writes raise."""
        with self._step(steps, "gold"):
            built = self._computed_gold()
            if built is not None:
                for name, local in built.tables.items():
                    self.serving.gold(GOLD_TABLES[name], rows_as_dicts(local))
        with self._step(steps, "delta_gold"):
            if built is not None:
                self._overwrite_gold_tables(built.tables)
        self._refresh_trends(built, steps)
        if built is not None:
            self.serving.gold_refreshed(built.versions, {name: steps[name] for name in GOLD_STEPS})

    def _computed_gold(self) -> GoldBuild | None:
        """Gold's tables computed from silver's newest versions; None before silver has a product."""
        latest = lake.read_latest(self.spark, self.tables.silver_products)
        if latest is None:
            return None
        products, products_version = latest[0].persist(), latest[1]
        categories, categories_version = lake.read_latest(self.spark, self.tables.silver_categories) or (
            self.spark.createDataFrame([], EMPTY_CATEGORIES),
            None,
        )
        aggregates = {
            "category_stats": gold.category_stats(products),
            "price_buckets": gold.price_buckets(products),
            "rating_distribution": gold.rating_distribution(products),
            "summary": gold.summary(products, categories),
        }
        try:
            # Concurrently: each is a small job that mostly waits on the driver, not on the cores.
            with ThreadPoolExecutor(max_workers=len(aggregates), thread_name_prefix="gold") as pool:
                computed = dict(zip(aggregates, pool.map(self._computed, aggregates.values()), strict=True))
        finally:
            products.unpersist()
        versions = {"silver_products_version": products_version, "silver_categories_version": categories_version}
        return GoldBuild(computed, versions, categories)

    def _overwrite_gold_tables(self, computed: dict[str, DataFrame]) -> None:
        """gold/<name> replaced by each computed table, concurrently (distinct tables: no commit conflicts)."""
        with ThreadPoolExecutor(max_workers=len(computed), thread_name_prefix="gold") as pool:
            list(pool.map(lambda name: lake.overwrite(computed[name], self.tables.gold(name)), computed))

    def _computed(self, frame: DataFrame) -> DataFrame:
        """`frame` computed once, as a local DataFrame."""
        rows = frame.collect()
        return self.spark.createDataFrame(rows, frame.schema) if rows else frame

    def _replace_gold(self, name: str, frame: DataFrame, served: catalog.ServingCollection) -> None:
        """Computes `frame` once and replaces gold/<name> and the collection `served` with it."""
        local = self._computed(frame)
        lake.overwrite(local, self.tables.gold(name))
        self.serving.gold(served, rows_as_dicts(local))

    def _refresh_trends(self, built: GoldBuild | None, steps: Steps) -> None:
        """After gold (`built`, None before silver has a product): the category points of the bucket holding
        the newest arrival, then the movers up to that arrival. Timed as the steps `points` and `movers`."""
        newest_micros = None if built is None else _newest_arrival_micros(built)
        with self._step(steps, "points"):
            if built is not None and newest_micros is not None:
                at = trends.bucket_start(newest_micros // 1_000_000, self.config.trends_bucket_seconds)
                self._record_category_points(trends.category_history(built.tables["category_stats"], at))
        with self._step(steps, "movers"):
            if built is not None and newest_micros is not None:
                self._refresh_movers(events.from_epoch_micros(newest_micros), built.categories)

    def _record_category_points(self, points: DataFrame) -> None:
        """One point per category for the current bucket: replaces the bucket's point (the last refresh in a
        bucket wins) in gold/category_history and MongoDB, never touching other points."""
        rows = rows_as_dicts(points)
        if not rows:
            return
        lake.replace_by_key(
            self.spark, self.spark.createDataFrame(rows, points.schema), self.tables.category_history, "_id"
        )
        self.serving.category_points(rows)

    def _refresh_movers(self, until: datetime, categories: DataFrame) -> None:
        """gold/movers and gold_movers, replaced by the moves of every window ending at `until` (products named
        from `categories`, silver's)."""
        history = lake.read_or_empty(self.spark, self.tables.price_history, EMPTY_PRICE_HISTORY)
        category_history = lake.read_or_empty(self.spark, self.tables.category_history, EMPTY_CATEGORY_HISTORY)
        movers = trends.product_movers(history, categories, until).unionByName(
            trends.category_movers(category_history, until)
        )
        self._replace_gold(MOVERS_TABLE, movers, catalog.GOLD_MOVERS)

    # --- used by several steps ------------------------------------------------------------------------------

    def _quarantine_rows(self, rows: list[QuarantineRow]) -> None:
        """Rows a sink refused (serving_writer.quarantine_row) -> quarantine (Delta and MongoDB). They stay in
        silver, which can hold them, and MongoDB keeps serving the key's previous version if it had one; the
        consistency check leaves keys MongoDB lacks for that reason out of "silver = MongoDB"."""
        if not rows:
            return
        lake.insert_new(self.spark, self.spark.createDataFrame(rows, QUARANTINE_SCHEMA), self.tables.quarantine, "_id")
        self.serving.quarantine(rows)
        self.last_quarantined += len(rows)
        log.warning("quarantined %d record(s) a sink cannot store, e.g. %s", len(rows), rows[0]["reason"])

    def _current_categories(self) -> DataFrame:
        return lake.read_or_empty(self.spark, self.tables.silver_categories, EMPTY_CATEGORIES)

    def _step(self, steps: Steps, name: str) -> AbstractContextManager[None]:
        return timed_step(steps, name, self.config)

    # --- around a batch -------------------------------------------------------------------------------------

    def record_event(self, event: events.BatchEvent, bronze: DataFrame, app_id: str) -> None:
        """The batch's event: logged, appended to the Delta event log once, and written to MongoDB's
        pipeline_events (`_id` `<app_id>:<batch id>`: a replay rewrites it)."""
        log.info("%s", event.describe())
        events.append(self.spark, event, bronze, self.tables.event_log, app_id)
        self.serving.event(events.event_document(event, app_id))

    def outdated_versions(self) -> list[str]:
        """The silver tables and MongoDB collections an earlier release wrote with Kafka offsets as versions."""
        return lake.outdated_version_tables(self.spark, self.tables) + self.serving.sink.outdated_versions()
