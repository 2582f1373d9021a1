"""Batch entry point: rebuild silver, gold and MongoDB from bronze, or load the raw Kaggle CSVs directly.

    spark-submit --properties-file build/spark-defaults.conf spark_jobs/backfill.py --from-bronze --reset
    spark-submit --properties-file build/spark-defaults.conf spark_jobs/backfill.py \\
        --from-csv dataset/amazon_products.csv dataset/amazon_categories.csv

Both run the streaming job's own pipeline (`pipeline.IngestPipeline.apply`, without the streaming job's progress
listener), so the result equals what streaming produces.
- `--from-bronze [PATH]` replays a bronze table (default: this lakehouse's) into LAKEHOUSE_PATH and
  MONGO_DB; `--reset` first empties the derived layers (silver, quarantine, gold, MongoDB collections), keeping
  gold's category history (past points cannot be recomputed from bronze).
- `--from-csv PRODUCTS CATEGORIES` is the initial load of the 1.4M-product file without Kafka: each row
  becomes the JSON value the client would send for it (the contract's CSV cell rules, lakehouse/contract.py),
  written to bronze as a record of the ingest topic with partition -1 and its row number as offset
  ("later" = further down the file), then judged and processed by the job's rules like any Kafka value.
Work is cut into slices of `--slice-rows` so the driver never holds more than one slice; any cut is
correct because every write keeps the higher version per key and categories rename their products.
Gold and its trends are computed once, after the last slice, from all of silver: a backfill stopped before
its last slice leaves gold as it was (and `make check`'s gold totals behind silver) until the backfill is run
again or the streaming job's next micro-batch recomputes it.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from lakehouse.contract import (
    CSV_BLANKS,
    CSV_FALSE,
    CSV_FLOAT,
    CSV_INT,
    CSV_TRUE,
    FieldSpec,
    check_header,
    field_specs,
    java_regex,
)
from lakehouse.schemas import Category, Product
from lakehouse.settings import Settings, settings
from spark_jobs import events, lake
from spark_jobs.pipeline import IngestPipeline, Steps
from spark_jobs.session import build_spark

log = logging.getLogger("spark_jobs.backfill")

CSV_PARTITION = -1
DERIVED_TABLES = ("silver", "gold", "events")


CSV_OPTIONS = {"multiLine": True, "escape": '"'}  # titles hold quoted commas, quotes and line breaks
# Spark drops the cells of a row beyond its schema, so the schema carries this many spare columns: a row
# with a non-empty cell among them is refused, as the client refuses it. Cells past them go unseen.
EXTRA_COLUMNS = tuple(f"_extra_cell_{index}" for index in range(1, 65))


def read_header(spark: SparkSession, path: str, model: type[BaseModel]) -> list[str]:
    """The header's names as written (Spark would rename repeated ones). Raises ValueError, as the client
    does, when a contract field is missing (names are case-sensitive) or a name repeats (ignoring case:
    Spark resolves columns ignoring case)."""
    [first] = spark.read.csv(path, header=False, **CSV_OPTIONS).limit(1).collect()
    # "CSV UTF-8" files from spreadsheets start with a byte-order mark.
    header = [(name or "").removeprefix("\ufeff") for name in first]
    check_header(path, header, model)
    return header


def read_csv(spark: SparkSession, path: str, model: type[BaseModel]) -> DataFrame:
    """A Kaggle-shaped CSV as text columns plus EXTRA_COLUMNS. A short row's missing cells read as empty,
    like the client's. Raises ValueError for a header the client refuses too (`read_header`)."""
    header = read_header(spark, path, model)
    schema = StructType([StructField(name, StringType()) for name in [*header, *EXTRA_COLUMNS]])
    return spark.read.csv(path, header=True, enforceSchema=True, schema=schema, **CSV_OPTIONS)


def _json_member(name: str, value: F.Column) -> F.Column:
    """`"name":<value as JSON>`, or null when the value is null (the field is then absent)."""
    as_object = F.to_json(F.struct(value.alias(name)))
    return F.when(value.isNotNull(), as_object.substr(F.lit(2), F.length(as_object) - 2))


def _cell_member(spec: FieldSpec) -> F.Column:
    """One cell as the JSON member the client would send (lakehouse.contract.csv_cell): numbers and
    booleans by the contract's cell syntax, empty cells absent, and a text of the wrong kind sent as a
    string, so the job's own rules quarantine the row with the field's name."""
    cell = F.coalesce(F.col(spec.name), F.lit(""))  # Spark reads an empty cell as null
    text = F.regexp_replace(cell, f"^[{CSV_BLANKS}]+|[{CSV_BLANKS}]+\\z", "")
    if spec.kind == "string":
        return _json_member(spec.name, cell)
    if spec.kind == "bool":
        lowered = F.lower(text)
        typed = F.when(lowered.isin(*CSV_TRUE), True).when(lowered.isin(*CSV_FALSE), False)
    elif spec.kind == "int":
        # try_cast: ANSI mode (Spark 4's default) fails the batch on a number past 38 digits. Null sends the
        # cell as text, and the job's type rule quarantines the row, as it does the client's number.
        typed = F.when(text.rlike(java_regex(CSV_INT)), F.split(text, r"\.")[0].try_cast("decimal(38,0)"))
    else:
        typed = F.when(text.rlike(java_regex(CSV_FLOAT)), text.try_cast("double"))
    return F.when(text == "", None).otherwise(F.coalesce(_json_member(spec.name, typed), _json_member(spec.name, cell)))


def json_records(rows: DataFrame, model: type[BaseModel], key: str) -> DataFrame:
    """CSV rows -> (key, json): the JSON value the client would send for each row. A row with more cells
    than the header gets a value that is not JSON, naming the fault, so the job quarantines it."""
    members = [_cell_member(spec) for spec in field_specs(model)]
    record = F.concat(F.lit("{"), F.concat_ws(",", *members), F.lit("}"))
    extra_cells = F.concat_ws(",", *EXTRA_COLUMNS)
    too_long = F.concat(F.lit("CSV row with more cells than the header: "), extra_cells)
    # Empty cells past the header (a trailing comma) are no data, for the client too.
    return rows.select(
        F.trim(F.col(key)).alias("key"),
        F.when(F.concat_ws("", *EXTRA_COLUMNS) == "", record).otherwise(too_long).alias("json"),
    )


def as_bronze(records: DataFrame, topic: str, read_at: datetime) -> DataFrame:
    """Records -> bronze rows of `topic`, numbered in file order, with `read_at` as their broker time. A
    literal, not current_timestamp(): that is computed again by every new plan over the rows (a Delta MERGE
    plans its source again), and a record's version (`_v`) is built from it."""
    return records.select(
        F.lit(topic).alias("_topic"),
        F.lit(CSV_PARTITION).alias("_partition"),
        F.monotonically_increasing_id().alias("_offset"),
        F.lit(read_at).alias("_kafka_ts"),
        "key",
        F.encode("json", "UTF-8").alias("value"),
    )


def csv_bronze(spark: SparkSession, config: Settings, products: str, categories: str) -> DataFrame:
    def records(path: str, model: type[BaseModel], key: str) -> DataFrame:
        return json_records(read_csv(spark, path, model), model, key)

    read_at = datetime.now(UTC)
    return as_bronze(records(categories, Category, "id"), config.kafka_topic_categories, read_at).unionByName(
        as_bronze(records(products, Product, "asin"), config.kafka_topic_products, read_at)
    )


def reset_derived(pipeline: IngestPipeline) -> None:
    """Empties what a rebuild from bronze recomputes: the derived Delta tables (but `LakeTables.kept`, past
    gold points no rebuild can recompute) and MongoDB's derived collections (catalog.DERIVED)."""
    kept = {Path(path) for path in pipeline.tables.kept}
    for folder in DERIVED_TABLES:
        for table in sorted((Path(pipeline.tables.root) / folder).glob("*")):
            if table not in kept:
                shutil.rmtree(table, ignore_errors=True)
    pipeline.serving.sink.drop_derived()


CopySlice = Callable[[DataFrame], AbstractContextManager[DataFrame]]  # backfill.local_copy's shape


@contextmanager
def local_copy(rows: DataFrame) -> Iterator[DataFrame]:
    """`rows` computed once into the block store (`localCheckpoint`: the lineage is cut), released on exit.

    Delta's MERGE plans its source again from its origin and does not read a persisted DataFrame
    (delta-io/delta#2011). From a persisted slice of the CSV, silver's MERGE and the price history's each read
    the whole CSV again, in one task: 111 s per MERGE at 1.4M products, 1.4M input records in the Spark UI.
    From a local copy they read the slice's blocks. The blocks live on the executors: safe in local mode
    (`make backfill`); on a cluster, an executor lost mid-backfill fails the backfill, which can be run again.
    """
    copy = rows.localCheckpoint(eager=True)
    try:
        yield copy
    finally:
        # PySpark has no call for it: the copy's plan is a LogicalRDD over the checkpointed RDD, whose blocks
        # `unpersist` releases (Dataset.unpersist would only drop a cache entry the copy never had).
        plan = copy._jdf.queryExecution().analyzed()
        if plan.getClass().getSimpleName() == "LogicalRDD":
            plan.rdd().unpersist(False)
        else:
            log.warning("a backfill slice's local copy was not released: its plan is a %s", plan.nodeName())


def run(
    pipeline: IngestPipeline,
    bronze: DataFrame,
    slice_rows: int,
    write_bronze: bool,
    copy_slice: CopySlice = local_copy,
) -> int:
    """Process `bronze` in slices through the streaming job's pipeline, first appending each slice to bronze
    when `write_bronze`; returns the rows processed. Each slice is computed once by `copy_slice` (default
    `local_copy`; bench/backfill_slices.py passes the design before it)."""
    bronze = bronze.persist()
    total = bronze.count()
    slices = max(1, math.ceil(total / slice_rows))
    slice_of = F.pmod(F.xxhash64("_topic", "_partition", "_offset"), F.lit(slices))
    app_id = f"backfill-{uuid.uuid4()}"  # slice numbers restart with every run
    for index in range(slices):
        with copy_slice(bronze.where(slice_of == index)) as part:
            _apply_slice(pipeline, part, index, last=index == slices - 1, app_id=app_id, write_bronze=write_bronze)
    bronze.unpersist()
    return total


def _apply_slice(
    pipeline: IngestPipeline, part: DataFrame, index: int, last: bool, app_id: str, write_bronze: bool
) -> None:
    """One slice through the pipeline (gold and its trends after the `last` only), and its event."""
    steps: Steps = {}
    started_at = datetime.now(UTC)
    if write_bronze:
        lake.append_once(part.withColumn("_read_by", F.lit(app_id)), pipeline.tables.bronze, index, app_id)
    rows, newest_record_ts = events.batch_size(part)
    outcome = pipeline.apply(part, steps, refresh_gold=last)
    event = events.BatchEvent("backfill", index, started_at, rows, outcome, steps, datetime.now(UTC), newest_record_ts)
    pipeline.record_event(event, part, app_id)


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
    pipeline = IngestPipeline.connect(spark)
    if args.reset:
        reset_derived(pipeline)
    if args.from_csv:
        bronze = csv_bronze(spark, settings, *args.from_csv)
    else:
        bronze = spark.read.format("delta").load(args.from_bronze or pipeline.tables.bronze)
    rows = run(pipeline, bronze, args.slice_rows, write_bronze=bool(args.from_csv))
    log.info("backfill done: %d rows into %s and %s", rows, settings.lakehouse_dir, settings.mongo_db)
    spark.stop()


if __name__ == "__main__":
    main()
