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


def rows_as_dicts(frame: DataFrame) -> list[dict[str, Any]]:
    return [row.asDict(recursive=True) for row in frame.toLocalIterator()]


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
        started = time.monotonic()
        bronze = transforms.to_bronze(kafka_rows).persist()
        try:
            input_rows = bronze.count()
            if input_rows == 0:
                return
            lake.append_once(bronze, self.tables.bronze, batch_id)
            categories = transforms.parse_categories(
                bronze.where(F.col("_topic") == self.config.kafka_topic_categories)
            ).persist()
            products = transforms.parse_products(
                bronze.where(F.col("_topic") == self.config.kafka_topic_products)
            ).persist()
            quarantined = self._quarantine(categories, products)
            self._upsert_categories(transforms.valid_categories(categories))
            self._upsert_products(transforms.valid_products(products))
            self._refresh_gold()
            self.last_quarantined = quarantined
            log.info("batch %d: wrote %d rows in %.1fs", batch_id, input_rows, time.monotonic() - started)
        finally:
            bronze.unpersist()

    def _quarantine(self, categories: DataFrame, products: DataFrame) -> int:
        bad = transforms.quarantined(categories).unionByName(transforms.quarantined(products))
        bad = bad.withColumn("_v", F.col("_offset")).persist()
        count = bad.count()
        if count:
            lake.insert_new(self.spark, bad, self.tables.quarantine, "_id")
            mongo_sink.replace_newer(self.db.quarantine, rows_as_dicts(bad))
            log.warning("quarantined %d record(s)", count)
        bad.unpersist()
        return count

    def _upsert_categories(self, categories: DataFrame) -> None:
        categories = categories.persist()
        if categories.isEmpty():
            return
        lake.upsert_newer(self.spark, categories, self.tables.silver_categories, "id")
        lake.rename_products(self.spark, categories, self.tables.silver_products)
        mongo_sink.replace_newer(self.db.categories, rows_as_dicts(category_documents(categories)))
        names = {row["id"]: row["category_name"] for row in categories.select("id", "category_name").collect()}
        mongo_sink.set_category_names(self.db.products, names)
        categories.unpersist()

    def _current_categories(self) -> DataFrame:
        if lake.exists(self.spark, self.tables.silver_categories):
            return self.spark.read.format("delta").load(self.tables.silver_categories)
        return self.spark.createDataFrame([], "id long, category_name string")

    def _upsert_products(self, products: DataFrame) -> None:
        enriched = transforms.enrich_with_categories(products, self._current_categories()).persist()
        if not enriched.isEmpty():
            lake.upsert_newer(self.spark, enriched, self.tables.silver_products, "asin")
            mongo_sink.replace_newer(self.db.products, rows_as_dicts(product_documents(enriched)))
        enriched.unpersist()

    def _refresh_gold(self) -> None:
        if not lake.exists(self.spark, self.tables.silver_products):
            return
        products = self.spark.read.format("delta").load(self.tables.silver_products).persist()
        aggregates = {
            "category_stats": gold.category_stats(products),
            "price_buckets": gold.price_buckets(products),
            "rating_distribution": gold.rating_distribution(products),
            "summary": gold.summary(products, self._current_categories()),
        }
        for name, frame in aggregates.items():
            frame = frame.persist()
            lake.overwrite(frame, self.tables.gold(name))
            mongo_sink.replace_all(self.db[f"gold_{name}"], rows_as_dicts(frame))
            frame.unpersist()
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
