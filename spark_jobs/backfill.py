"""Batch entry point: rebuild silver, gold and MongoDB from bronze, or load the raw Kaggle CSVs directly.

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/backfill.py --from-bronze --reset
    spark-submit --properties-file build/spark-defaults.conf spark_jobs/backfill.py \\
        --from-csv dataset/amazon_products.csv dataset/amazon_categories.csv

Both run the streaming job's own steps (`IngestJob.apply`), so the result equals what streaming produces.
- `--from-bronze [PATH]` replays a bronze table (default: this lakehouse's) into LAKEHOUSE_PATH and
  MONGO_DB; `--reset` first empties the derived layers (silver, quarantine, gold, MongoDB collections).
- `--from-csv PRODUCTS CATEGORIES` is the initial load of the 1.4M-product file without Kafka: each row
  becomes the JSON record the API would have produced, written to bronze as a record of the ingest topic
  with partition -1 and its row number as offset ("later" = further down the file), then processed.
Work is cut into slices of `--slice-rows` so the driver never holds more than one slice; any cut is
correct because every write keeps the higher version per key and categories rename their products.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.schemas import CATEGORY_FIELDS, PRODUCT_FIELDS
from lakehouse.settings import Settings, settings
from spark_jobs import events, lake
from spark_jobs.session import build_spark
from spark_jobs.streaming_job import IngestJob

log = logging.getLogger("spark_jobs.backfill")

CSV_PARTITION = -1
DERIVED_TABLES = ("silver", "gold", "events")


def read_csv(spark: SparkSession, path: str) -> DataFrame:
    # Titles hold quoted commas, quotes and line breaks.
    return spark.read.csv(path, header=True, multiLine=True, escape='"', inferSchema=False)


def _bool(column: str) -> F.Column:
    return F.lower(F.trim(F.col(column))).isin("true", "1")


def _number(column: str, spark_type: str, default: float | None = None) -> F.Column:
    """Cast like the client's transformer: empty -> default; anything else that does not cast -> null,
    which the validation rules then quarantine."""
    text = F.trim(F.col(column))
    value = F.when((text == "") | text.isNull(), F.lit(default)).otherwise(text.cast("double"))
    return value.cast(spark_type)


def product_records(rows: DataFrame) -> DataFrame:
    """CSV columns -> the JSON value the API produces for the row (see client/transformer.py)."""
    typed = rows.select(
        F.trim("asin").alias("asin"),
        F.col("title"),
        F.coalesce(F.trim("imgUrl"), F.lit("")).alias("imgUrl"),
        F.coalesce(F.trim("productURL"), F.lit("")).alias("productURL"),
        _number("stars", "double").alias("stars"),
        _number("reviews", "long").alias("reviews"),
        _number("price", "double").alias("price"),
        _number("listPrice", "double", 0.0).alias("listPrice"),
        _number("category_id", "long").alias("category_id"),
        _bool("isBestSeller").alias("isBestSeller"),
        _number("boughtInLastMonth", "long", 0).alias("boughtInLastMonth"),
    )
    return typed.select(F.col("asin").alias("key"), F.to_json(F.struct(*PRODUCT_FIELDS)).alias("json"))


def category_records(rows: DataFrame) -> DataFrame:
    typed = rows.select(_number("id", "long").alias("id"), F.trim("category_name").alias("category_name"))
    return typed.select(F.col("id").cast("string").alias("key"), F.to_json(F.struct(*CATEGORY_FIELDS)).alias("json"))


def as_bronze(records: DataFrame, topic: str) -> DataFrame:
    """Records -> bronze rows of `topic`, numbered in file order."""
    return records.select(
        F.lit(topic).alias("_topic"),
        F.lit(CSV_PARTITION).alias("_partition"),
        F.monotonically_increasing_id().alias("_offset"),
        F.current_timestamp().alias("_kafka_ts"),
        "key",
        F.encode("json", "UTF-8").alias("value"),
    )


def csv_bronze(spark: SparkSession, config: Settings, products: str, categories: str) -> DataFrame:
    return as_bronze(category_records(read_csv(spark, categories)), config.kafka_topic_categories).unionByName(
        as_bronze(product_records(read_csv(spark, products)), config.kafka_topic_products)
    )


def reset_derived(job: IngestJob) -> None:
    for folder in DERIVED_TABLES:
        shutil.rmtree(Path(job.tables.root) / folder, ignore_errors=True)
    job.sink.drop_derived()


def run(job: IngestJob, bronze: DataFrame, slice_rows: int, write_bronze: bool) -> int:
    """Process `bronze` in slices through the streaming job's steps; returns the rows processed."""
    bronze = bronze.persist()
    total = bronze.count()
    slices = max(1, math.ceil(total / slice_rows))
    slice_of = F.pmod(F.xxhash64("_topic", "_partition", "_offset"), F.lit(slices))
    for index in range(slices):
        part = bronze.where(slice_of == index).persist()
        steps: dict[str, float] = {}
        started_at = datetime.now(UTC)
        if write_bronze:
            lake.append_once(part, job.tables.bronze, index, app_id="backfill-csv")
        outcome = job.apply(part, steps)
        event = events.BatchEvent("backfill", index, started_at, part.count(), outcome, steps)
        log.info("%s", event.describe())
        events.append(job.spark, event, part, job.tables.event_log)
        part.unpersist()
    bronze.unpersist()
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-bronze", nargs="?", const="", metavar="PATH", help="default: this lakehouse's")
    source.add_argument("--from-csv", nargs=2, metavar=("PRODUCTS", "CATEGORIES"))
    parser.add_argument("--reset", action="store_true", help="empty silver, gold and MongoDB first")
    parser.add_argument("--slice-rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spark = build_spark("amazon-lakehouse-backfill")
    job = IngestJob(spark)
    if args.reset:
        reset_derived(job)
    if args.from_csv:
        bronze = csv_bronze(spark, settings, *args.from_csv)
    else:
        bronze = spark.read.format("delta").load(args.from_bronze or job.tables.bronze)
    rows = run(job, bronze, args.slice_rows, write_bronze=bool(args.from_csv))
    log.info("backfill done: %d rows into %s and %s", rows, settings.lakehouse_dir, settings.mongo_db)
    spark.stop()


if __name__ == "__main__":
    main()
