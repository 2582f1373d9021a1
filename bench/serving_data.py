"""A serving database at any size without the pipeline: MongoDB loaded directly, in the catalog's shapes, with
documents computed by the job's own Spark functions (for bench/dashboard_paint.py).

Loading 1.4M products through the API, Kafka and the job takes hours on this machine, so this writes what the
job would have written:

- the generator's products and categories (dataset/generate.py, 248 categories as in the Kaggle file) and a
  price history of `UPDATE_SHARE` x products new versions over `HISTORY_DAYS` simulated days;
- every version given Kafka coordinates (partition 0, an offset per version) and a broker time: the base file
  `HISTORY_DAYS` days before now, then one day apart, the last day two hours before now; `_v` by
  transforms.record_version;
- products (transforms.latest_per_key, enrich_with_categories, serving_writer.product_documents), categories,
  price_history (trends.price_history), gold (gold.category_stats, price_buckets, rating_distribution,
  summary over the current state), gold_category_history (trends.category_history of gold.category_stats
  after each day, at the start of that day's trends bucket), gold_movers (trends.category_movers and
  product_movers ending now);
- `EVENTS` pipeline_events (events.event_document, every 5 minutes up to now) and `QUARANTINED` quarantine
  documents (serving_writer.quarantine_row);
- every index of the catalog, created before the documents are inserted, as the job's sink does.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dataset.generate import product_rows, write_dataset, write_updates
from lakehouse import catalog
from lakehouse.settings import Settings
from spark_jobs import events, gold, transforms, trends
from spark_jobs.schemas import CATEGORY_SCHEMA, PRODUCT_SCHEMA
from spark_jobs.serving_writer import category_documents, product_documents, quarantine_row

CATEGORIES = 248
HISTORY_DAYS = 5
UPDATE_SHARE = 0.3
EVENTS = 300
EVENT_EVERY = timedelta(minutes=5)
QUARANTINED = 300
BULK = 5_000
DAY = timedelta(days=1)
# Offsets of day d start at d * OFFSETS_PER_DAY: above any monotonically_increasing_id of one file's rows.
OFFSETS_PER_DAY = 10**13
QUARANTINE_REASONS = (
    "price: Input should be greater than or equal to 0",
    "asin: String should match pattern '^[A-Z0-9]{10}$'",
    "json_invalid: Expecting value",
    "stars: Input should be less than or equal to 5",
)


@dataclass(frozen=True)
class Timeline:
    """When each simulated day arrived: day 0 (the base file) `days` days before the last, the last day
    starting two hours before `until` (now, UTC), so the Trends page's 24 h and 7 d windows hold moves."""

    until: datetime
    days: int

    def day_start(self, day: int) -> datetime:
        return self.until - timedelta(hours=2) - (self.days - day) * DAY


def write_inputs(folder: Path, products: int, seed: int) -> tuple[Path, Path, list[Path]]:
    """The generator's products, categories and day files in `folder`."""
    products_csv, categories_csv = write_dataset(folder, products, CATEGORIES, seed)
    updates = round(products * UPDATE_SHARE)
    days = write_updates(folder, products, CATEGORIES, seed, updates, HISTORY_DAYS)
    return products_csv, categories_csv, days


def _read_csv(spark: SparkSession, path: Path, schema: Any) -> DataFrame:
    # The generator writes RFC 4180 CSV: a quote inside a field is doubled, not backslash-escaped.
    return spark.read.csv(str(path), header=True, schema=schema, escape='"', mode="FAILFAST")


def _with_kafka(rows: DataFrame, topic: str, day: int, timeline: Timeline) -> DataFrame:
    """Kafka coordinates as the job's parse adds them, and `_v`: a day's records arrive within its first hour,
    one millisecond apart in file order."""
    position = F.monotonically_increasing_id()
    start_ms = int(timeline.day_start(day).timestamp() * 1000)
    return transforms.with_version(
        rows.select(
            "*",
            F.lit(None).cast("string").alias("_rescued_data"),
            F.lit(topic).alias("_topic"),
            F.lit(0).alias("_partition"),
            (F.lit(day * OFFSETS_PER_DAY) + position).alias("_offset"),
            F.timestamp_millis(F.lit(start_ms) + position % 3_600_000).alias("_kafka_ts"),
            F.lit(day).alias("day"),
        )
    )


def category_frame(spark: SparkSession, categories_csv: Path, topic: str, timeline: Timeline) -> DataFrame:
    """Silver's categories: one row per id, with Kafka coordinates of the base day."""
    return transforms.latest_per_key(
        _with_kafka(_read_csv(spark, categories_csv, CATEGORY_SCHEMA), topic, 0, timeline), "id"
    )


def product_versions(
    spark: SparkSession, products_csv: Path, days: list[Path], topic: str, timeline: Timeline, scratch: Path
) -> DataFrame:
    """Every version (the base file is day 0, then the day files), written once to Parquet in `scratch` and
    read back, so the aggregations below do not parse the CSVs again."""
    files = [products_csv, *days]
    frames = [
        _with_kafka(_read_csv(spark, path, PRODUCT_SCHEMA), topic, day, timeline) for day, path in enumerate(files)
    ]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    union.write.mode("overwrite").parquet(str(scratch / "versions"))
    return spark.read.parquet(str(scratch / "versions"))


def current_products(versions: DataFrame, categories: DataFrame, last_day: int) -> DataFrame:
    """Silver's state after `last_day`: each asin's newest version, with its category's name."""
    newest = transforms.latest_per_key(versions.where(F.col("day") <= last_day), "asin")
    return transforms.enrich_with_categories(newest, categories)


def category_points(versions: DataFrame, categories: DataFrame, timeline: Timeline, bucket_seconds: int) -> DataFrame:
    """One gold_category_history point per category and simulated day: gold.category_stats after that day,
    at the start of the trends bucket its records arrived in."""
    points = None
    for day in range(timeline.days + 1):
        at = trends.bucket_start(int(timeline.day_start(day).timestamp()), bucket_seconds)
        point = trends.category_history(gold.category_stats(current_products(versions, categories, day)), at)
        points = point if points is None else points.unionByName(point)
    assert points is not None
    return points


def rows(frame: DataFrame) -> Iterator[dict[str, Any]]:
    """A DataFrame's rows as documents, a partition at a time (never the whole frame in the driver)."""
    return (row.asDict(recursive=True) for row in frame.toLocalIterator(prefetchPartitions=True))


def insert(db: Database, served: catalog.ServingCollection, documents: Iterable[Mapping[str, Any]]) -> int:
    """insert_many in bulks of BULK, unordered; returns the number inserted."""
    collection, inserted = db[served.name], 0
    iterator = iter(documents)
    while bulk := list(islice(iterator, BULK)):
        inserted += len(collection.insert_many(bulk, ordered=False).inserted_ids)
    return inserted


def create_indexes(db: Database) -> None:
    """Every collection of the catalog, with its indexes (ascending), before any document is inserted."""
    existing = set(db.list_collection_names())
    for served in catalog.ALL:
        if served.name not in existing:
            db.create_collection(served.name)
        for fields in served.indexes:
            db[served.name].create_index([(field, ASCENDING) for field in fields])


def pipeline_events(timeline: Timeline, topic: str, seed: int) -> Iterator[dict[str, Any]]:
    """EVENTS micro-batches, one every EVENT_EVERY up to now, as the job's event log writes them."""
    rng = random.Random(seed)
    for batch_id in range(EVENTS):
        finished = timeline.until - (EVENTS - 1 - batch_id) * EVENT_EVERY
        steps = {step: rng.uniform(0.1, 2.0) for step in ("read", "bronze", "silver", "mongo", "gold", "trends")}
        started = finished - timedelta(seconds=sum(steps.values()))
        event = events.BatchEvent(
            "stream",
            batch_id,
            started,
            rng.randint(0, 5_000),
            events.Outcome(rng.choice((0, 0, 0, 1, 3)), 0),
            steps,
            finished,
            started - timedelta(seconds=rng.uniform(1, 5)),
        )
        yield events.event_document(event, "bench-dashboard-paint") | {"lag": {topic: rng.randint(0, 200)}}


def quarantine_documents(timeline: Timeline, topic: str, seed: int) -> Iterator[dict[str, Any]]:
    """QUARANTINED refused records over the last day, as the job's quarantine rows."""
    rng = random.Random(seed)
    for offset, row in enumerate(islice(product_rows(QUARANTINED, CATEGORIES, seed + 1), QUARANTINED)):
        arrived = timeline.until - timedelta(seconds=rng.uniform(0, DAY.total_seconds()))
        record = {**row, "_topic": topic, "_partition": 1, "_offset": offset, "_kafka_ts": arrived}
        yield quarantine_row(record, row["asin"], rng.choice(QUARANTINE_REASONS))


def restamp_recent(db: Database, config: Settings, seed: int) -> None:
    """Rewrite the collections the Pipeline page reads by time, pipeline_events and quarantine, as of now: a
    database kept by an earlier run (bench.dashboard_paint --reuse) then paints the same series as a fresh one.
    The trends collections keep their day (the Trends page draws them whatever their age)."""
    timeline = Timeline(datetime.now(UTC), HISTORY_DAYS)
    topic = config.kafka_topic_products
    for served, documents in (
        (catalog.PIPELINE_EVENTS, pipeline_events(timeline, topic, seed)),
        (catalog.QUARANTINE, quarantine_documents(timeline, topic, seed)),
    ):
        db[served.name].delete_many({})
        insert(db, served, documents)


def load_serving_database(
    spark: SparkSession,
    db: Database,
    inputs: tuple[Path, Path, list[Path]],
    config: Settings,
    scratch: Path,
    seed: int,
) -> dict[str, int]:
    """Drop `db`, create the catalog's indexes, then insert every collection; returns documents per name."""
    db.client.drop_database(db.name)
    create_indexes(db)
    products_csv, categories_csv, days = inputs
    timeline = Timeline(datetime.now(UTC), len(days))
    topic = config.kafka_topic_products
    categories = category_frame(spark, categories_csv, config.kafka_topic_categories, timeline).persist()
    versions = product_versions(spark, products_csv, days, topic, timeline, scratch)
    current = current_products(versions, categories, len(days)).persist()
    history = trends.price_history(versions)
    points = category_points(versions, categories, timeline, config.trends_bucket_seconds).persist()
    written = {
        catalog.CATEGORIES.name: insert(db, catalog.CATEGORIES, rows(category_documents(categories))),
        catalog.PRODUCTS.name: insert(db, catalog.PRODUCTS, rows(product_documents(current))),
        catalog.PRICE_HISTORY.name: insert(db, catalog.PRICE_HISTORY, rows(trends.price_history_documents(history))),
        catalog.GOLD_CATEGORY_STATS.name: insert(db, catalog.GOLD_CATEGORY_STATS, rows(gold.category_stats(current))),
        catalog.GOLD_PRICE_BUCKETS.name: insert(db, catalog.GOLD_PRICE_BUCKETS, rows(gold.price_buckets(current))),
        catalog.GOLD_RATING_DISTRIBUTION.name: insert(
            db, catalog.GOLD_RATING_DISTRIBUTION, rows(gold.rating_distribution(current))
        ),
        catalog.GOLD_SUMMARY.name: insert(db, catalog.GOLD_SUMMARY, rows(gold.summary(current, categories))),
        catalog.GOLD_CATEGORY_HISTORY.name: insert(db, catalog.GOLD_CATEGORY_HISTORY, rows(points)),
    }
    movers = trends.category_movers(points, timeline.until).unionByName(
        trends.product_movers(history, categories, timeline.until)
    )
    written[catalog.GOLD_MOVERS.name] = insert(db, catalog.GOLD_MOVERS, rows(movers))
    written[catalog.PIPELINE_EVENTS.name] = insert(db, catalog.PIPELINE_EVENTS, pipeline_events(timeline, topic, seed))
    written[catalog.QUARANTINE.name] = insert(db, catalog.QUARANTINE, quarantine_documents(timeline, topic, seed))
    for frame in (categories, current, points):
        frame.unpersist()
    return written
