"""Do the layers agree? Kafka -> bronze -> silver -> MongoDB -> gold, by counts and by key sets.

    python -m spark_jobs.consistency          (make check)     exit code 1 when any check diverges

Run it when the job is idle: a micro-batch in flight shows up as a divergence between its layers.
1. Kafka records below the job's committed offsets (read_committed, by topic/partition/offset) = bronze rows.
2. Valid records in bronze, latest per key = silver keys (products by asin, categories by id).
3. Invalid records in bronze = the quarantine table = MongoDB's quarantine collection.
4. Silver keys = MongoDB document ids (products, categories).
5. Gold totals = silver: products per category summed, the summary's product count, MongoDB's copy of it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse.committed import read_committed
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings, settings
from spark_jobs import lake, transforms
from spark_jobs.progress import committed_offsets

SAMPLE = 5
READ_TIMEOUT_S = 600


@dataclass(frozen=True)
class Check:
    name: str
    left: int
    right: int
    differing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.left == self.right and not self.differing

    def line(self) -> str:
        verdict = "ok" if self.ok else "DIVERGED"
        detail = f"  e.g. {', '.join(self.differing[:SAMPLE])}" if self.differing else ""
        return f"{verdict:9} {self.name}: {self.left} vs {self.right}{detail}"


def compare_sets(name: str, left: Iterable[Any], right: Iterable[Any]) -> Check:
    left_set, right_set = set(left), set(right)
    only_left = [f"only left: {key}" for key in sorted(left_set - right_set, key=str)[:SAMPLE]]
    only_right = [f"only right: {key}" for key in sorted(right_set - left_set, key=str)[:SAMPLE]]
    return Check(name, len(left_set), len(right_set), only_left + only_right)


def committed_kafka_records(config: Settings, below: dict[str, dict[str, int]]) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every committed record below the job's offsets."""
    ends = {(topic, int(p)): end for topic, parts in below.items() for p, end in parts.items()}
    messages = read_committed(config.kafka_bootstrap_servers, ends, READ_TIMEOUT_S, "consistency-check")
    return {(m.topic(), m.partition(), m.offset()) for m in messages}


def kafka_vs_bronze(config: Settings, bronze: DataFrame) -> Check:
    offsets = committed_offsets(config.checkpoint_dir / "ingest") or {}
    from_kafka = [f"{t}:{p}:{o}" for t, p, o in committed_kafka_records(config, offsets)]
    in_bronze = [
        f"{r['_topic']}:{r['_partition']}:{r['_offset']}"
        for r in bronze.where(F.col("_partition") >= 0).select("_topic", "_partition", "_offset").collect()
    ]
    duplicates = len(in_bronze) - len(set(in_bronze))
    check = compare_sets("Kafka records consumed = bronze rows", from_kafka, in_bronze)
    return check if not duplicates else Check(check.name, check.left, len(in_bronze), [f"{duplicates} duplicates"])


def keys(frame: DataFrame, column: str) -> list[Any]:
    return [row[0] for row in frame.select(column).collect()]


def run_checks(spark: SparkSession, config: Settings = settings) -> list[Check]:
    tables = lake.LakeTables(config.lakehouse_dir)
    db = serving_db(config)
    bronze = spark.read.format("delta").load(tables.bronze)
    # Persisted, as the job does: a filter on `_error` pushed below the parse would inline the JSON parse
    # into every rule that reads a field (hundreds of parses per record).
    products = transforms.parse_products(bronze.where(F.col("_topic") == config.kafka_topic_products)).persist()
    categories = transforms.parse_categories(bronze.where(F.col("_topic") == config.kafka_topic_categories)).persist()
    silver_products = spark.read.format("delta").load(tables.silver_products)
    silver_categories = spark.read.format("delta").load(tables.silver_categories)
    invalid = transforms.quarantined(products).unionByName(transforms.quarantined(categories))
    quarantine_rows = (
        spark.read.format("delta").load(tables.quarantine) if lake.exists(spark, tables.quarantine) else None
    )
    gold_stats = spark.read.format("delta").load(tables.gold("category_stats"))
    gold_summary = spark.read.format("delta").load(tables.gold("summary")).first()
    silver_count = silver_products.count()
    mongo_summary = db.gold_summary.find_one() or {}
    checks = [
        kafka_vs_bronze(config, bronze),
        compare_sets(
            "valid products in bronze = silver products",
            keys(transforms.valid_products(products), "asin"),
            keys(silver_products, "asin"),
        ),
        compare_sets(
            "valid categories in bronze = silver categories",
            keys(transforms.valid_categories(categories), "id"),
            keys(silver_categories, "id"),
        ),
        compare_sets(
            "invalid records in bronze = quarantine table",
            keys(invalid, "_id"),
            keys(quarantine_rows, "_id") if quarantine_rows is not None else [],
        ),
        compare_sets("quarantine table = MongoDB quarantine", keys(invalid, "_id"), db.quarantine.distinct("_id")),
        compare_sets("silver products = MongoDB products", keys(silver_products, "asin"), _ids(db.products)),
        compare_sets("silver categories = MongoDB categories", keys(silver_categories, "id"), _ids(db.categories)),
        Check("silver products = gold products per category, summed", silver_count, _total(gold_stats)),
        Check("silver products = gold summary products", silver_count, gold_summary["products"] if gold_summary else 0),
        Check(
            "gold summary = MongoDB gold_summary",
            gold_summary["products"] if gold_summary else 0,
            mongo_summary.get("products", 0),
        ),
    ]
    products.unpersist()
    categories.unpersist()
    return checks


def _ids(collection: Any) -> list[Any]:
    return [document["_id"] for document in collection.find({}, {"_id": 1})]


def _total(gold_stats: DataFrame) -> int:
    return gold_stats.agg(F.sum("product_count")).first()[0] or 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    from spark_jobs.session import build_spark

    checks = run_checks(build_spark("amazon-lakehouse-consistency"))
    for check in checks:
        print(check.line())
    diverged = [check for check in checks if not check.ok]
    print(f"{len(checks) - len(diverged)} of {len(checks)} checks agree" + (": DIVERGENCE" if diverged else ""))
    return 1 if diverged else 0


if __name__ == "__main__":
    sys.exit(main())
