"""What the record contract's checks cost the job, against the checks they replaced, in the same run.

    .venv/bin/python -m bench.validation --products 200000

Both read the same generated product values (as Kafka values) and are forced to completion with Spark's
`noop` sink, in a local SparkSession (no Kafka, no Delta, no MongoDB):
- baseline: the previous design (issue #11's starting point): two JSON parses (the typed record and a
  string map for unknown fields), hand-written rules on the typed columns;
- contract: `spark_jobs.transforms.parse_products`: four parses (record, map, the value re-written, the
  value inside [...]) and the rules derived from the pydantic model.
Prints seconds and rows/s of each (best of `--repeat`) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dataset.generate import product_rows
from spark_jobs import transforms
from spark_jobs.schemas import PRODUCT_SCHEMA
from spark_jobs.session import build_spark


def kafka_values(spark: SparkSession, count: int) -> DataFrame:
    values = [(json.dumps(row).encode(),) for row in product_rows(count, 248, seed=11)]
    frame = spark.createDataFrame(values, "value binary").select(
        F.lit("ingest-product").alias("topic"),
        F.lit(0).alias("partition"),
        F.monotonically_increasing_id().alias("offset"),
        F.current_timestamp().alias("timestamp"),
        F.lit(b"k").alias("key"),
        "value",
    )
    return frame.repartition(2).cache()


def baseline_checks(bronze: DataFrame) -> DataFrame:
    """The checks before the contract (commit 673e6cc's parse_json and product_rules), condensed."""
    raw = F.col("value").cast("string")
    as_map = F.from_json(raw, "map<string,string>")
    record = F.from_json(raw, PRODUCT_SCHEMA)
    failures = [
        ~(F.encode(raw, "UTF-8") == F.col("value")),
        as_map.isNull(),
        record["asin"].isNull() | ~record["asin"].rlike(r"^[A-Z0-9]{10}$"),
        record["title"].isNull() | (F.length(record["title"]) == 0) | (F.length(record["title"]) > 4000),
        record["price"].isNull() | (record["price"] < 0),
        record["stars"].isNull() | ~record["stars"].between(0, 5),
        record["reviews"].isNull() | (record["reviews"] < 0),
        record["listPrice"] < 0,
        record["category_id"].isNull() | (record["category_id"] <= 0),
        record["boughtInLastMonth"] < 0,
    ]
    error = F.lit(None).cast("string")
    for index, fails in reversed(list(enumerate(failures))):
        error = F.when(fails, F.lit(str(index))).otherwise(error)
    return bronze.select("*", record.alias("record"), as_map.alias("_fields"), error.alias("_error"))


def contract_checks(bronze: DataFrame) -> DataFrame:
    return transforms.parse_products(bronze)


def seconds(checks: Callable[[DataFrame], DataFrame], bronze: DataFrame, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        checks(bronze).write.format("noop").mode("overwrite").save()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spark = build_spark("bench-validation")
    bronze = transforms.to_bronze(kafka_values(spark, args.products))
    bronze.count()
    results = {
        name: seconds(checks, bronze, args.repeat)
        for name, checks in (("baseline", baseline_checks), ("contract", contract_checks))
    }
    for name, took in results.items():
        print(f"{name:9} {args.products:,} products in {took:6.2f} s = {args.products / took:9,.0f} rows/s")
    print(f"contract / baseline = {results['contract'] / results['baseline']:.2f}x the time")
    spark.stop()


if __name__ == "__main__":
    main()
