"""Do the layers agree? Kafka -> bronze -> silver -> MongoDB -> gold, by counts and by key sets.

    python -m spark_jobs.consistency          (make check)     exit code 1 when any check diverges

Run it when nothing is being posted and the job is idle: a micro-batch in flight shows up as a divergence
between its layers, and a record posted since the job's last batch, which the speed layer serves at once, as
a key or a `_v` MongoDB holds and silver does not yet. A table
the job has not written yet (nothing sent, or no category yet) is read as empty, and the report says so.
1. Kafka records below the job's committed offsets (read_committed, by topic/partition/offset) = bronze rows.
2. Valid records in bronze, latest per key = silver keys (products by asin, categories by id).
3. Invalid records in bronze = the quarantine table (but the records MongoDB refused, quarantined by the sink
   with a `sink: ...` reason); the quarantine table = MongoDB's quarantine collection.
4. Silver keys = MongoDB document ids (products, categories), but keys whose current version the sink refused
   and MongoDB lacks; and on the keys both hold the same `_v`, but keys whose current version the sink refused
   (MongoDB keeps serving an older one): a version the speed layer served that the job never read (its record
   deleted from Kafka first) shows here. A key refused in an older version and accepted since is checked.
5. Valid product records in bronze (every version) = silver price history ids = MongoDB price_history ids, but
   versions MongoDB refused.
6. Gold totals = silver: products per category summed, the summary's product count, MongoDB's copy of it.
7. Every silver product carries the name silver's categories give its category (null before the category
   arrived): a rename reached all its products, and only the name of the version silver keeps did.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo.database import Database
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.committed import read_committed
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings, settings
from spark_jobs import lake, transforms, trends
from spark_jobs.progress import committed_offsets

SAMPLE = 5
READ_TIMEOUT_S = 600

# The Kafka source's columns, from which the job builds bronze (transforms.to_bronze).
KAFKA_SOURCE_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset long, timestamp timestamp, timestampType int"
)

# Silver products' columns the checks read, for a lakehouse without them yet.
SILVER_PRODUCT_KEYS = "asin string, _v string, category_id long, category_name string"

# The price history's columns the checks read, for a lakehouse without one yet.
PRICE_HISTORY_KEYS = "_id string, _topic string, _partition int, _offset long, _kafka_ts timestamp"
# The quarantine's columns the checks read, likewise.
QUARANTINE_KEYS = f"{PRICE_HISTORY_KEYS}, key string, reason string"


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
    offsets = committed_offsets(config.query_checkpoint_dir) or {}
    from_kafka = [f"{t}:{p}:{o}" for t, p, o in committed_kafka_records(config, offsets)]
    rows = bronze.where(F.col("_partition") >= 0).select("_topic", "_partition", "_offset", _reader(bronze)).collect()
    in_bronze = [f"{r['_topic']}:{r['_partition']}:{r['_offset']}" for r in rows]
    # A record read by two checkpoints (the first deleted) is in bronze twice, once per reader; twice by one
    # reader would be a replayed batch appended again.
    duplicates = len(rows) - len(set(rows))
    check = compare_sets("Kafka records consumed = bronze rows", from_kafka, in_bronze)
    return check if not duplicates else Check(check.name, check.left, len(in_bronze), [f"{duplicates} duplicates"])


def _reader(bronze: DataFrame) -> Column:
    """Who appended a bronze row (`_read_by`: the checkpoint's or backfill run's app id); rows written before
    that column existed count as one reader."""
    return F.col("_read_by") if "_read_by" in bronze.columns else F.lit(None).cast("string").alias("_read_by")


def keys(frame: DataFrame, column: str) -> list[Any]:
    return [row[0] for row in frame.select(column).collect()]


@dataclass(frozen=True)
class Layers:
    """The lakehouse's tables as the checks read them; a table not written yet is an empty one."""

    bronze: DataFrame
    silver_products: DataFrame
    silver_categories: DataFrame
    price_history: DataFrame
    quarantine: DataFrame
    gold_stats: DataFrame
    gold_summary: DataFrame
    missing: list[str]
    # silver_products_version and silver_categories_version: silver's newest Delta versions (None: not written)
    silver_versions: dict[str, int | None]

    @classmethod
    def read(cls, spark: SparkSession, tables: lake.LakeTables) -> Layers:
        missing: list[str] = []

        def table(path: str, empty: DataFrame | str) -> DataFrame:
            if lake.exists(spark, path):
                return spark.read.format("delta").load(path)
            missing.append(str(Path(path).relative_to(tables.root)))
            return empty if isinstance(empty, DataFrame) else spark.createDataFrame([], empty)

        # Only the columns the checks read, for the tables that may be absent.
        return cls(
            bronze=table(tables.bronze, transforms.to_bronze(spark.createDataFrame([], KAFKA_SOURCE_SCHEMA))),
            silver_products=table(tables.silver_products, SILVER_PRODUCT_KEYS),
            silver_categories=table(tables.silver_categories, "id long, _v string, category_name string"),
            price_history=table(tables.price_history, PRICE_HISTORY_KEYS),
            quarantine=table(tables.quarantine, QUARANTINE_KEYS),
            gold_stats=table(tables.gold("category_stats"), "product_count long"),
            gold_summary=table(tables.gold("summary"), "products long"),
            missing=missing,
            silver_versions={
                "silver_products_version": lake.latest_version(spark, tables.silver_products),
                "silver_categories_version": lake.latest_version(spark, tables.silver_categories),
            },
        )


def run_checks(spark: SparkSession, config: Settings = settings) -> list[Check]:
    return layer_checks(Layers.read(spark, lake.LakeTables(config.lakehouse_dir)), config)


def layer_checks(layers: Layers, config: Settings) -> list[Check]:
    db = serving_db(config)
    bronze = layers.bronze
    # Persisted, as the job does: a filter on `_error` pushed below the parse would inline the JSON parse
    # into every rule that reads a field (hundreds of parses per record).
    products = transforms.parse_products(bronze.where(F.col("_topic") == config.kafka_topic_products)).persist()
    categories = transforms.parse_categories(bronze.where(F.col("_topic") == config.kafka_topic_categories)).persist()
    invalid = transforms.quarantined(products).unionByName(transforms.quarantined(categories))
    is_sink_rejection = _sink_rejection()

    product_versions, category_versions = _versions(db[catalog.PRODUCTS.name]), _versions(db[catalog.CATEGORIES.name])
    product_ids, category_ids = list(product_versions), list(category_versions)
    refused_products = refused_key_versions(layers.quarantine, config.kafka_topic_products)
    refused_categories = refused_key_versions(layers.quarantine, config.kafka_topic_categories)
    silver_product_versions = _key_versions(layers.silver_products, "asin")
    silver_category_versions = _key_versions(layers.silver_categories, "id")
    gold_summary = layers.gold_summary.first()
    silver_count = layers.silver_products.count()
    mongo_summary = db[catalog.GOLD_SUMMARY.name].find_one() or {}
    history_ids = keys(layers.price_history, "_id")
    served_history_ids = _ids(db[catalog.PRICE_HISTORY.name])
    checks = [
        kafka_vs_bronze(config, bronze),
        compare_sets(
            "valid products in bronze = silver products",
            keys(transforms.valid_products(products), "asin"),
            list(silver_product_versions),
        ),
        compare_sets(
            "valid categories in bronze = silver categories",
            keys(transforms.valid_categories(categories), "id"),
            list(silver_category_versions),
        ),
        compare_sets(
            "invalid records in bronze = quarantine table, but the sink's rejections",
            keys(invalid, "_id"),
            keys(layers.quarantine.where(~is_sink_rejection), "_id"),
        ),
        compare_sets(
            "quarantine table = MongoDB quarantine", keys(layers.quarantine, "_id"), _ids(db[catalog.QUARANTINE.name])
        ),
        compare_sets(
            "silver products = MongoDB products, but keys the sink refused",
            expected_served(silver_product_versions, refused_products, product_ids),
            product_ids,
        ),
        compare_versions(
            "silver product versions = MongoDB's, on keys both hold but those the sink refused",
            silver_product_versions,
            product_versions,
            refused_products,
        ),
        compare_sets(
            "silver categories = MongoDB categories, but keys the sink refused",
            expected_served(silver_category_versions, refused_categories, category_ids),
            category_ids,
        ),
        compare_versions(
            "silver category versions = MongoDB's, on keys both hold but those the sink refused",
            silver_category_versions,
            category_versions,
            refused_categories,
        ),
        compare_sets(
            "valid product records in bronze = silver price history",
            keys(trends.price_history(transforms.valid_product_versions(products)), "_id"),
            history_ids,
        ),
        compare_sets(
            "silver price history = MongoDB price_history, but versions the sink refused",
            served_ids(history_ids, refused_versions(layers), served_history_ids),
            served_history_ids,
        ),
        category_names_check(layers.silver_products, layers.silver_categories),
        gold_refresh_check(layers.silver_versions, _gold_refresh(db)),
        Check("silver products = gold products per category, summed", silver_count, _total(layers.gold_stats)),
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


def category_names_check(products: DataFrame, categories: DataFrame) -> Check:
    """Silver products (asin, category_id, category_name) whose category name is not silver categories' (id,
    category_name) name for that id, null when silver has no such category; examples name both."""
    names = categories.select(F.col("id").alias("category_id"), F.col("category_name").alias("silver_name"))
    joined = products.select("asin", "category_id", "category_name").join(names, "category_id", "left")
    differing = joined.where(~F.col("category_name").eqNullSafe(F.col("silver_name"))).persist()
    try:
        examples = [f"{r.asin}: {r.category_name!r}, not {r.silver_name!r}" for r in differing.limit(SAMPLE).collect()]
        total, wrong = products.count(), differing.count()
    finally:
        differing.unpersist()
    return Check("silver products' category names = silver categories' names", total, total - wrong, examples)


def gold_refresh_check(silver_versions: dict[str, int | None], refresh: dict[str, Any]) -> Check:
    """Gold's last refresh (`refresh`, the `gold_refresh` status document, empty when there is none) was built
    from silver's newest versions; passes before silver has a product (no gold yet). Left: the versions
    compared, right: those current."""
    name = "gold's last refresh = silver's newest versions"
    if silver_versions.get("silver_products_version") is None:
        return Check(name, 0, 0)
    behind = [
        f"{field_name}: silver {version}, gold built from {refresh.get(field_name)} (wait for the job's next refresh)"
        for field_name, version in silver_versions.items()
        if refresh.get(field_name) != version
    ]
    return Check(name, len(silver_versions), len(silver_versions) - len(behind), behind)


def _gold_refresh(db: Database) -> dict[str, Any]:
    return db[catalog.PIPELINE_STATUS.name].find_one({"_id": catalog.GOLD_REFRESH_STATUS_ID}) or {}


def refused_versions(layers: Layers) -> set[str]:
    """Price-history ids of the records the sink quarantined (any `sink:` reason): MongoDB may lack them."""
    sink_rejections = layers.quarantine.where(_sink_rejection()).select(F.col("_id").alias("record"))
    versions = layers.price_history.select("_id", transforms.record_id().alias("record"))
    return set(keys(versions.join(sink_rejections, "record", how="left_semi"), "_id"))


def refused_key_versions(quarantine: DataFrame, topic: str) -> set[tuple[str, str]]:
    """(key as text, `_v`) of every record of `topic` the sink quarantined (a `sink:` reason): for such a key at
    such a version MongoDB keeps serving the key's previous version, or none. The version is rebuilt from the
    quarantine row's Kafka coordinates, as the job built it (transforms.record_version)."""
    refusals = quarantine.where(_sink_rejection() & (F.col("_topic") == topic)).transform(transforms.with_version)
    return {(row[0], row[1]) for row in refusals.select("key", "_v").collect()}


def _sink_rejection() -> Column:
    """A quarantine row of a record in silver that MongoDB refused (spark_jobs/bson_limits.py): quarantined,
    not served."""
    return F.col("reason").startswith("sink:")


def _refused_now(key: Any, silver_version: str, refused: set[tuple[str, str]]) -> bool:
    """Whether the sink refused silver's current version of `key` (keys compare as text, as the quarantine
    keeps them)."""
    return (str(key), silver_version) in refused


def expected_served(silver: dict[Any, str], refused: set[tuple[str, str]], served: Iterable[Any]) -> set[Any]:
    """The silver keys (key -> current `_v`) MongoDB should hold: all but those whose current version the sink
    refused and MongoDB does not have (a key refused in an older version and served again later, or refused now
    and still served in an older version, is held)."""
    served_text = {str(key) for key in served}
    return {
        key for key, version in silver.items() if not _refused_now(key, version, refused) or str(key) in served_text
    }


def served_ids(silver: list[str], refused: set[str], served: list[str]) -> set[str]:
    """The silver price-history ids MongoDB should hold: all but the versions the sink refused and MongoDB does
    not have."""
    return {key for key in silver if key not in refused - set(served)}


def compare_versions(
    name: str, silver: dict[Any, str], served: dict[Any, str | None], refused: set[tuple[str, str]]
) -> Check:
    """Key -> `_v` in silver and in MongoDB: the keys both hold agree on `_v`, but keys whose current version
    the sink refused (`refused`: (key as text, `_v`), refused_key_versions), which MongoDB may keep serving in
    an older version. Reads `left` keys compared, `right` keys agreeing."""
    compared = [key for key in silver.keys() & served.keys() if not _refused_now(key, silver[key], refused)]
    differing = sorted((key for key in compared if silver[key] != served[key]), key=str)
    examples = [f"{key}: silver {silver[key]}, MongoDB {served[key]}" for key in differing[:SAMPLE]]
    return Check(name, len(compared), len(compared) - len(differing), examples)


def _key_versions(frame: DataFrame, key: str) -> dict[Any, str]:
    return {row[0]: row[1] for row in frame.select(key, "_v").collect()}


def _versions(collection: Any) -> dict[Any, str | None]:
    """`_id` -> `_v` of every document (None for one without a `_v`)."""
    return {document["_id"]: document.get("_v") for document in collection.find({}, {"_id": 1, "_v": 1})}


def _ids(collection: Any) -> list[Any]:
    return [document["_id"] for document in collection.find({}, {"_id": 1})]


def _total(gold_stats: DataFrame) -> int:
    return gold_stats.agg(F.sum("product_count")).first()[0] or 0


def report(checks: list[Check], missing: list[str]) -> tuple[list[str], int]:
    """The lines `make check` prints and its exit code: 1 when a check diverges, else 0 (also when tables
    are missing: a table not written yet holds no rows, and every check counts it so)."""
    lines = [f"{'missing':9} {name}: no Delta table yet, read as empty" for name in missing]
    lines += [check.line() for check in checks]
    diverged = [check for check in checks if not check.ok]
    lines.append(f"{len(checks) - len(diverged)} of {len(checks)} checks agree" + (": DIVERGENCE" if diverged else ""))
    return lines, 1 if diverged else 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    from spark_jobs.session import build_spark

    layers = Layers.read(build_spark("amazon-lakehouse-consistency"), lake.LakeTables(settings.lakehouse_dir))
    lines, exit_code = report(layer_checks(layers, settings), layers.missing)
    print("\n".join(lines))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
