"""The streaming job: Kafka -> Delta bronze/silver/gold -> MongoDB serving collections.

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/streaming_job.py
    python -m spark_jobs.streaming_job --available-now     # process what is in Kafka, then stop

Each micro-batch (foreachBatch) is written idempotently everywhere, so the replay of a batch that was
interrupted before its checkpoint commit changes nothing: bronze appends carry (app id, batch id),
silver MERGEs and MongoDB writes keep the higher Kafka offset per key.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.settings import Settings, settings
from spark_jobs import gold, lake, mongo_sink, transforms
from spark_jobs.monitoring import ProgressListener
from spark_jobs.session import build_spark

log = logging.getLogger("spark_jobs.streaming_job")

PRODUCT_DOCUMENT_FIELDS = (
    "title",
    "imgUrl",
    "productURL",
    "stars",
    "reviews",
    "price",
    "listPrice",
    "category_id",
    "category_name",
    "isBestSeller",
    "boughtInLastMonth",
    "_rescued_data",
    "_topic",
    "_partition",
    "_offset",
    "_kafka_ts",
    "_v",
)


def product_documents(enriched: DataFrame) -> DataFrame:
    return enriched.select(F.col("asin").alias("_id"), "asin", *PRODUCT_DOCUMENT_FIELDS)


def category_documents(categories: DataFrame) -> DataFrame:
    return categories.select(F.col("id").alias("_id"), "id", "category_name", "_offset", "_kafka_ts", "_v")


@contextmanager
def timed(steps: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        steps[name] = time.monotonic() - started


def rows_as_dicts(frame: DataFrame) -> list[dict[str, Any]]:
    """A micro-batch's rows for MongoDB; bounded by STREAM_MAX_OFFSETS_PER_TRIGGER (and a gold table's size)."""
    return [row.asDict(recursive=True) for row in frame.collect()]


@dataclass(frozen=True)
class Touched:
    """The products a micro-batch changes: all their asins, and how to find their stale MongoDB documents."""

    asins: DataFrame
    updated_asins: list[str]
    renamed_category_ids: list[int]


class IngestJob:
    def __init__(self, spark: SparkSession, config: Settings = settings) -> None:
        self.spark = spark
        self.config = config
        self.tables = lake.LakeTables(config.lakehouse_dir)
        self.db = mongo_sink.connect(config.mongo_uri, config.mongo_db)
        mongo_sink.ensure_indexes(self.db)
        self.last_quarantined = 0

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

    def process_batch(self, kafka_rows: DataFrame, batch_id: int) -> None:
        steps: dict[str, float] = {}
        bronze = transforms.to_bronze(kafka_rows).persist()
        cached = [bronze]
        try:
            with timed(steps, "read"):
                input_rows = bronze.count()
            if input_rows == 0:
                return
            with timed(steps, "bronze"):
                lake.append_once(bronze, self.tables.bronze, batch_id)
            with timed(steps, "quarantine"):
                categories = self._parse(bronze, self.config.kafka_topic_categories, transforms.parse_categories)
                products = self._parse(bronze, self.config.kafka_topic_products, transforms.parse_products)
                self.last_quarantined = self._quarantine(categories, products)
            new_categories = transforms.valid_categories(categories).persist()
            new_products = transforms.valid_products(products).persist()
            cached += [categories, products, new_categories, new_products]
            with timed(steps, "touched"):
                touched = self._touched_products(new_categories, new_products)
            cached.append(touched.asins)
            with timed(steps, "categories"):
                self._upsert_categories(new_categories)
            with timed(steps, "silver"):
                self._upsert_products(new_products)
            with timed(steps, "mongo"):
                self._mirror_products(touched)
            with timed(steps, "gold"):
                self._refresh_gold()
            log.info(
                "batch %d: wrote %d rows in %.1fs (%s)",
                batch_id,
                input_rows,
                sum(steps.values()),
                ", ".join(f"{name} {seconds:.1f}s" for name, seconds in steps.items()),
            )
        finally:
            for frame in cached:
                frame.unpersist()

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
            for chunk in mongo_sink.chunks(rows_as_dicts(bad), mongo_sink.INSERT_CHUNK):
                mongo_sink.insert_replacing(self.db.quarantine, chunk)
            log.warning("quarantined %d record(s)", count)
        bad.unpersist()
        return count

    def _touched_products(self, categories: DataFrame, products: DataFrame) -> Touched:
        """Before the MERGEs: what this batch changes in silver products, and so in MongoDB."""
        silver = self._silver(self.tables.silver_products)
        if silver is None:
            return Touched(products.select("asin").persist(), [], [])
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
        asins = products.select("asin").unionByName(renamed_products).distinct().persist()
        updated = [row["asin"] for row in products.join(silver.select("asin"), "asin", how="left_semi").collect()]
        return Touched(asins, updated, renamed_ids)

    def _upsert_categories(self, categories: DataFrame) -> None:
        if categories.isEmpty():
            return
        lake.upsert_newer(self.spark, categories, self.tables.silver_categories, "id")
        lake.rename_products(self.spark, categories, self.tables.silver_products)
        current = self.spark.read.format("delta").load(self.tables.silver_categories)
        documents = rows_as_dicts(category_documents(current.join(categories.select("id"), "id", how="left_semi")))
        mongo_sink.mirror(self.db.categories, documents, mongo_sink.field_in("_id", [d["_id"] for d in documents]))

    def _current_categories(self) -> DataFrame:
        current = self._silver(self.tables.silver_categories)
        return current if current is not None else self.spark.createDataFrame([], "id long, category_name string")

    def _upsert_products(self, products: DataFrame) -> None:
        if not products.isEmpty():
            enriched = transforms.enrich_with_categories(products, self._current_categories())
            lake.upsert_newer(self.spark, enriched, self.tables.silver_products, "asin")

    def _mirror_products(self, touched: Touched) -> None:
        silver = self._silver(self.tables.silver_products)
        if silver is None:
            return
        rows = silver.join(touched.asins, "asin", how="left_semi")
        stale = mongo_sink.field_in("category_id", touched.renamed_category_ids) + mongo_sink.field_in(
            "_id", touched.updated_asins
        )
        mongo_sink.mirror(self.db.products, rows_as_dicts(product_documents(rows)), stale)

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
            mongo_sink.replace_all(self.db[f"gold_{name}"], rows)
        products.unpersist()

    def start(self, available_now: bool = False) -> Any:
        self.spark.streams.addListener(ProgressListener(self.db, lambda: self.last_quarantined))
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--available-now", action="store_true", help="process every record now in Kafka, then stop (batch-style run)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = build_spark("amazon-lakehouse-ingest")
    query = IngestJob(spark).start(available_now=args.available_now)
    log.info(
        "streaming from %s into %s and %s", settings.kafka_bootstrap_servers, settings.lakehouse_dir, settings.mongo_uri
    )
    query.awaitTermination()


if __name__ == "__main__":
    main()
