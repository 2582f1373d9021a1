"""Trends (issue #12) as pure DataFrame -> DataFrame steps: every price a product had, gold's category figures
over time, and the largest price moves per time window. I/O stays in pipeline.py.

Times are broker times (`_kafka_ts`, LogAppendTime), so a replayed batch or a rebuild from bronze computes the
same rows. Prices are US dollars; `change_pct` is the change over the start price in percent (12.5 means
+12.5 %).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse import catalog

# (label, seconds) of each movers window, ending at the newest arrival.
WINDOWS: tuple[tuple[str, int], ...] = (("1h", 3_600), ("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400))
TOP_MOVERS = 10

PRICE_HISTORY_COLUMNS = ("_id", "asin", "arrived_at", "price", "listPrice", "title", "category_id", "_v")


def price_history(versions: DataFrame) -> DataFrame:
    """Valid product versions (transforms.valid_product_versions: contract columns, Kafka coordinates, `_v`)
    -> one row per version: `_id` `<asin>@<_v>`, asin, arrived_at (the broker's time), price, listPrice,
    title, category_id, `_v`, and the record's Kafka coordinates `_topic`, `_partition`, `_offset`,
    `_kafka_ts` (to quarantine a version a sink refuses).

    One row per `_id`: a record read by two checkpoints is twice in bronze, and a rebuild from bronze sees
    both copies in one batch; they are the same record, so the same row."""
    return versions.select(
        F.concat_ws("@", "asin", "_v").alias("_id"),
        "asin",
        F.col("_kafka_ts").alias("arrived_at"),
        "price",
        "listPrice",
        "title",
        "category_id",
        "_v",
        *catalog.KAFKA_COLUMNS,
    ).dropDuplicates(["_id"])


def price_history_documents(history: DataFrame) -> DataFrame:
    """Price-history rows -> catalog.PRICE_HISTORY documents (`_id` and the catalog's fields only)."""
    return history.select("_id", *catalog.PRICE_HISTORY.fields)


def bucket_start(epoch_seconds: int, bucket_seconds: int) -> int:
    """The start (epoch seconds) of the `bucket_seconds`-long bucket holding `epoch_seconds`; buckets start
    at the epoch, so every run cuts time the same way."""
    return epoch_seconds - epoch_seconds % bucket_seconds


def category_history(category_stats: DataFrame, at_epoch_seconds: int) -> DataFrame:
    """gold.category_stats rows -> one catalog.GOLD_CATEGORY_HISTORY point per category at `at` (a bucket
    start, epoch seconds), `_id` `<category_id>@<at epoch seconds>`."""
    return category_stats.select(
        F.concat_ws("@", F.col("category_id").cast("string"), F.lit(str(at_epoch_seconds))).alias("_id"),
        "category_id",
        "category_name",
        F.timestamp_seconds(F.lit(at_epoch_seconds)).alias("at"),
        "product_count",
        "avg_price",
        "median_price",
        "best_seller_count",
    )


def _utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC (Spark would read it in the Python process's local time)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window_starts(
    until: datetime, windows: tuple[tuple[str, int], ...], start_price: dict[str, Column], in_window: dict[str, Column]
) -> Column:
    """One struct per window (window, window_seconds, since, start_price, in_window), as an array to explode."""
    return F.array(
        *[
            F.struct(
                F.lit(label).alias("window"),
                F.lit(seconds).alias("window_seconds"),
                F.lit(until - timedelta(seconds=seconds)).alias("since"),
                start_price[label].alias("start_price"),
                in_window[label].alias("in_window"),
            )
            for label, seconds in windows
        ]
    )


def _start_prices(
    price: str,
    moment: Column,
    order: Column,
    until: datetime,
    windows: tuple[tuple[str, int], ...],
    since_before: bool,
) -> tuple[list[Column], dict[str, Column], dict[str, Column]]:
    """Per window ending at `until` (since = until - window): the aggregates `before_<label>` (the `price` of the
    last row by `order` whose `moment` is before `since`; at `since` too when `since_before`) and
    `inside_<label>` (the first row after that), then per label the start price (the one before, else the
    first inside) and whether the key has a row inside the window, as columns over those aggregates."""
    aggregates, start_price, in_window = [], {}, {}
    for label, seconds in windows:
        since = F.lit(until - timedelta(seconds=seconds))
        before = moment <= since if since_before else moment < since
        aggregates += [
            F.max_by(price, F.when(before, order)).alias(f"before_{label}"),
            F.min_by(price, F.when(~before, order)).alias(f"inside_{label}"),
        ]
        start_price[label] = F.coalesce(f"before_{label}", f"inside_{label}")
        in_window[label] = F.col(f"inside_{label}").isNotNull()
    return aggregates, start_price, in_window


def _ranked(changes: DataFrame, kind: str, until: datetime, top: int) -> DataFrame:
    """Per-key window starts (window, window_seconds, since, start_price, in_window, end_price, key, name,
    category_name) -> the `top` moves up and down per window, shaped like catalog.GOLD_MOVERS.

    Ranked by the size of the relative change; a start price of 0 has no relative change (`change_pct` null)
    and ranks after every move that has one, by its absolute change. Ties go to the smaller key. Prices that
    differ by less than a cent are no move."""
    change = F.col("end_price") - F.col("start_price")
    # In cents: a category's average computed in another order can differ in its last bits.
    moved = changes.where(F.col("in_window") & (F.round("end_price", 2) != F.round("start_price", 2)))
    with_change = moved.select(
        "*",
        change.alias("change"),
        F.when(F.col("start_price") != 0, change * 100 / F.col("start_price")).alias("change_pct"),
        F.when(change > 0, F.lit("up")).otherwise(F.lit("down")).alias("direction"),
    )
    largest_first = Window.partitionBy("window", "direction").orderBy(
        F.abs("change_pct").desc_nulls_last(), F.abs("change").desc(), F.col("key").asc()
    )
    ranked = with_change.withColumn("rank", F.row_number().over(largest_first)).where(F.col("rank") <= top)
    return ranked.select(
        F.concat_ws(":", F.lit(kind), "window", "direction", "rank").alias("_id"),
        F.lit(kind).alias("kind"),
        "window",
        "window_seconds",
        "direction",
        "rank",
        "key",
        "name",
        "category_name",
        "start_price",
        "end_price",
        "change",
        "change_pct",
        "since",
        F.lit(until).alias("until"),
    )


def product_movers(
    history: DataFrame,
    categories: DataFrame,
    until: datetime,
    windows: tuple[tuple[str, int], ...] = WINDOWS,
    top: int = TOP_MOVERS,
) -> DataFrame:
    """Price-history rows (asin, arrived_at, price, title, category_id, `_v`) and silver categories (id,
    category_name) -> the products whose price moved most in each window ending at `until`.

    A product's start price is its last price before `since` (= until - window), else its first price within
    the window; its end price is its latest. Only products with a version in the window whose end price
    differs from the start count. `name` is the latest title, `category_name` its category's current name."""
    until = _utc(until)
    arrived, version = F.col("arrived_at"), F.col("_v")
    aggregates, start_price, in_window = _start_prices("price", arrived, version, until, windows, since_before=False)
    per_product = (
        history.where(arrived <= F.lit(until))
        .groupBy("asin")
        .agg(
            F.max_by("price", version).alias("end_price"),
            F.max_by("title", version).alias("name"),
            F.max_by("category_id", version).alias("category_id"),
            *aggregates,
        )
    )
    names = categories.select(F.col("id").alias("category_id"), "category_name")
    changes = per_product.join(names, "category_id", how="left").select(
        F.col("asin").alias("key"),
        "name",
        "category_name",
        "end_price",
        F.explode(_window_starts(until, windows, start_price, in_window)).alias("w"),
    )
    return _ranked(changes.select("*", "w.*").drop("w"), "product", until, top)


def category_movers(
    history: DataFrame,
    until: datetime,
    windows: tuple[tuple[str, int], ...] = WINDOWS,
    top: int = TOP_MOVERS,
) -> DataFrame:
    """Category-history points (category_id, category_name, at, avg_price) -> the categories whose average
    price moved most in each window ending at `until`: the point at or before `since` against the latest
    point (at or before `until`); with no point at or before `since`, the first point in the window."""
    until = _utc(until)
    at = F.col("at")
    aggregates, start_price, in_window = _start_prices("avg_price", at, at, until, windows, since_before=True)
    per_category = (
        history.where(at <= F.lit(until))
        .groupBy("category_id")
        .agg(F.max_by("avg_price", at).alias("end_price"), F.max_by("category_name", at).alias("name"), *aggregates)
    )
    changes = per_category.select(
        F.col("category_id").cast("string").alias("key"),
        "name",
        F.col("name").alias("category_name"),
        "end_price",
        F.explode(_window_starts(until, windows, start_price, in_window)).alias("w"),
    )
    return _ranked(changes.select("*", "w.*").drop("w"), "category", until, top)
