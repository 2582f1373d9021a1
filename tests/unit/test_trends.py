"""Trends (spark_jobs/trends.py) on tiny DataFrames with exact rows: price history, category points, movers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakehouse import catalog
from spark_jobs import transforms, trends

UNTIL = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
WINDOWS = (("1h", 3_600), ("24h", 86_400))
HISTORY_SCHEMA = "asin string, arrived_at timestamp, price double, title string, category_id long, _v string"
POINT_SCHEMA = "category_id long, category_name string, at timestamp, avg_price double"
MOVER_COLUMNS = ("_id", "direction", "rank", "key", "name", "category_name", "start_price", "end_price", "change")


def ago(**delta: float) -> datetime:
    return UNTIL - timedelta(**delta)


def history(spark: SparkSession, versions: list[tuple[str, datetime, float, str]]) -> DataFrame:
    """(asin, arrived_at, price, title) -> price-history rows; `_v` orders like the arrival, category 1."""
    rows = [(asin, at, price, title, 1, f"{at.timestamp():017.3f}") for asin, at, price, title in versions]
    return spark.createDataFrame(rows, HISTORY_SCHEMA)


def movers(frame: DataFrame, window: str) -> list[tuple[Any, ...]]:
    """The window's rows as (_id, direction, rank, key, name, category_name, start, end, change), ups first."""
    rows = frame.where(F.col("window") == window).orderBy(F.col("direction").desc(), "rank").collect()
    return [tuple(row[column] for column in MOVER_COLUMNS) for row in rows]


def percentages(frame: DataFrame, window: str) -> dict[str, float | None]:
    return {row["key"]: row["change_pct"] for row in frame.where(F.col("window") == window).collect()}


REPRICED = [
    ("UP00000001", ago(hours=2), 10.0, "Old title"),
    ("UP00000001", ago(minutes=30), 12.0, "Kettle"),
    ("DOWN000001", ago(hours=3), 20.0, "Toaster"),
    ("DOWN000001", ago(minutes=10), 15.0, "Toaster"),
    ("SAME000001", ago(hours=2), 5.0, "Cup"),
    ("SAME000001", ago(minutes=5), 5.0, "Cup"),
    ("EARLIER001", ago(hours=5), 7.0, "Pan"),  # both versions before the last hour
    ("EARLIER001", ago(hours=2), 9.0, "Pan"),
    ("FREE000001", ago(hours=2), 0.0, "Sample"),  # from free: no relative change, ranked after the others
    ("FREE000001", ago(minutes=20), 3.0, "Sample"),
    ("NEW0000001", ago(minutes=15), 99.0, "Novelty"),  # one version: nothing moved
]


def product_movers(spark: SparkSession, top: int = 10) -> DataFrame:
    categories = spark.createDataFrame([(1, "Kitchen")], "id long, category_name string")
    return trends.product_movers(history(spark, REPRICED), categories, UNTIL, WINDOWS, top)


def test_product_movers_of_the_last_hour_start_from_the_price_before_it(spark) -> None:
    moved = product_movers(spark)

    assert movers(moved, "1h") == [
        ("product:1h:up:1", "up", 1, "UP00000001", "Kettle", "Kitchen", 10.0, 12.0, 2.0),
        ("product:1h:up:2", "up", 2, "FREE000001", "Sample", "Kitchen", 0.0, 3.0, 3.0),
        ("product:1h:down:1", "down", 1, "DOWN000001", "Toaster", "Kitchen", 20.0, 15.0, -5.0),
    ]
    assert percentages(moved, "1h") == {"FREE000001": None, "UP00000001": 20.0, "DOWN000001": -25.0}


def test_product_movers_without_a_price_before_the_window_start_from_its_first_price_in_it(spark) -> None:
    moved = product_movers(spark)

    assert movers(moved, "24h") == [
        ("product:24h:up:1", "up", 1, "EARLIER001", "Pan", "Kitchen", 7.0, 9.0, 2.0),
        ("product:24h:up:2", "up", 2, "UP00000001", "Kettle", "Kitchen", 10.0, 12.0, 2.0),
        ("product:24h:up:3", "up", 3, "FREE000001", "Sample", "Kitchen", 0.0, 3.0, 3.0),
        ("product:24h:down:1", "down", 1, "DOWN000001", "Toaster", "Kitchen", 20.0, 15.0, -5.0),
    ]
    assert percentages(moved, "24h")["EARLIER001"] == 200 / 7


def test_movers_carry_their_window_and_keep_the_top_per_direction(spark) -> None:
    moved = product_movers(spark, top=1)

    rows = moved.select(
        "_id", "kind", "window_seconds", F.unix_seconds("since").alias("since"), F.unix_seconds("until")
    ).collect()
    until = int(UNTIL.timestamp())
    assert sorted(tuple(row) for row in rows) == [
        ("product:1h:down:1", "product", 3_600, until - 3_600, until),
        ("product:1h:up:1", "product", 3_600, until - 3_600, until),
        ("product:24h:down:1", "product", 86_400, until - 86_400, until),
        ("product:24h:up:1", "product", 86_400, until - 86_400, until),
    ]
    assert tuple(moved.columns) == ("_id", *catalog.GOLD_MOVERS.fields)


def test_versions_after_until_are_not_seen(spark) -> None:
    later = history(
        spark, [("UP00000001", ago(hours=2), 10.0, "K"), ("UP00000001", UNTIL + timedelta(seconds=1), 30.0, "K")]
    )
    categories = spark.createDataFrame([], "id long, category_name string")

    assert trends.product_movers(later, categories, UNTIL, WINDOWS).count() == 0


def points(spark: SparkSession, rows: list[tuple[int, str, datetime, float]]) -> DataFrame:
    return spark.createDataFrame(rows, POINT_SCHEMA)


def test_category_movers_compare_the_point_at_or_before_since_with_the_latest(spark) -> None:
    history_points = points(
        spark,
        [
            (1, "Kettles", ago(hours=3), 10.0),
            (1, "Kettles", ago(minutes=30), 12.0),
            (2, "Toasters", ago(hours=3), 50.0),  # both points before the last hour
            (2, "Toasters", ago(hours=2), 40.0),
            (3, "Cups", ago(hours=2), 8.0),
            (3, "Cups", ago(minutes=10), 8.0),
            (4, "Pans", ago(hours=1), 30.0),  # exactly at `since` of the last hour: its start
            (4, "Pans", ago(minutes=5), 33.0),
        ],
    )

    moved = trends.category_movers(history_points, UNTIL, WINDOWS)

    assert movers(moved, "1h") == [
        ("category:1h:up:1", "up", 1, "1", "Kettles", "Kettles", 10.0, 12.0, 2.0),
        ("category:1h:up:2", "up", 2, "4", "Pans", "Pans", 30.0, 33.0, 3.0),
    ]
    assert movers(moved, "24h") == [
        ("category:24h:up:1", "up", 1, "1", "Kettles", "Kettles", 10.0, 12.0, 2.0),
        ("category:24h:up:2", "up", 2, "4", "Pans", "Pans", 30.0, 33.0, 3.0),
        ("category:24h:down:1", "down", 1, "2", "Toasters", "Toasters", 50.0, 40.0, -10.0),
    ]
    assert percentages(moved, "24h") == {"1": 20.0, "4": 10.0, "2": -20.0}


def test_a_category_point_per_bucket_of_broker_time(spark) -> None:
    stats = spark.createDataFrame(
        [(7, 7, "Kettles", 3, 12.5, 11.0, 1)],
        "_id long, category_id long, category_name string, product_count long, avg_price double, "
        "median_price double, best_seller_count long",
    )
    at = trends.bucket_start(1_711_886_459, 60)

    [point] = trends.category_history(stats, at).select("*", F.unix_seconds("at").alias("epoch")).collect()

    assert at == 1_711_886_400
    assert point.asDict() | {"at": None} == {
        "_id": "7@1711886400",
        "category_id": 7,
        "category_name": "Kettles",
        "at": None,
        "product_count": 3,
        "avg_price": 12.5,
        "median_price": 11.0,
        "best_seller_count": 1,
        "epoch": 1_711_886_400,
    }
    assert tuple(trends.category_history(stats, at).columns) == ("_id", *catalog.GOLD_CATEGORY_HISTORY.fields)


def kafka_products(spark: SparkSession, records: list[tuple[int, datetime, dict[str, Any]]]) -> DataFrame:
    rows = [("ingest-product", 0, offset, ts, b"k", json.dumps(value).encode()) for offset, ts, value in records]
    schema = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
    return transforms.to_bronze(spark.createDataFrame(rows, schema))


def test_every_valid_version_is_a_price_history_row_once(spark) -> None:
    product = {"asin": "B000000001", "title": "Kettle", "stars": 4.5, "reviews": 3, "price": 10.0, "category_id": 3}
    first, second = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    bronze = kafka_products(
        spark,
        [
            (0, first, product),
            (1, second, product | {"price": 12.5, "listPrice": 15.0}),
            (2, second, product | {"price": -1.0}),  # quarantined, not a price
        ],
    )
    # The same record read by two checkpoints is twice in bronze: one version.
    checked = transforms.parse_products(bronze.unionByName(bronze.where(F.col("_offset") == 0)))

    rows = trends.price_history(transforms.valid_product_versions(checked))
    documents = trends.price_history_documents(rows)

    found = documents.select("*", F.unix_seconds("arrived_at").alias("epoch")).drop("arrived_at").orderBy("_v")
    v1, v2 = (f"{int(t.timestamp() * 1000):013d}.{o:019d}.{0:010d}" for t, o in ((first, 0), (second, 1)))
    assert [row.asDict() for row in found.collect()] == [
        {
            "_id": f"B000000001@{v1}",
            "asin": "B000000001",
            "price": 10.0,
            "listPrice": 0.0,
            "title": "Kettle",
            "category_id": 3,
            "_v": v1,
            "epoch": int(first.timestamp()),
        },
        {
            "_id": f"B000000001@{v2}",
            "asin": "B000000001",
            "price": 12.5,
            "listPrice": 15.0,
            "title": "Kettle",
            "category_id": 3,
            "_v": v2,
            "epoch": int(second.timestamp()),
        },
    ]
    assert tuple(documents.columns) == ("_id", *catalog.PRICE_HISTORY.fields)
    assert set(catalog.KAFKA_COLUMNS) <= set(rows.columns)
