"""What a micro-batch changes in silver: the products whose MongoDB document it rewrites, and their current rows.

The pipeline (pipeline.py) asks `touched_products` before its MERGEs, and `current_rows` after them.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import lake


def touched_products(
    spark: SparkSession, tables: lake.LakeTables, categories: DataFrame, products: DataFrame
) -> DataFrame:
    """Before the MERGEs: the asins (one column, `asin`, persisted) whose silver row this batch changes: its
    valid `products`, and the products of the valid `categories` whose name it changes (or, replayed, may
    have changed: `renamed_category_ids`)."""
    silver = lake.read_if_exists(spark, tables.silver_products)
    if silver is None:
        return products.select("asin").persist()
    renamed_ids = renamed_category_ids(categories, lake.read_if_exists(spark, tables.silver_categories))
    renamed_products = silver.where(F.col("category_id").isin(renamed_ids)).select("asin")
    # A set union of keys: an asin both updated and in a renamed category is one key to rewrite.
    return products.select("asin").unionByName(renamed_products).distinct().persist()


def renamed_category_ids(categories: DataFrame, known: DataFrame | None) -> list[int]:
    """The ids of `categories` (rows `id`, `category_name`, `_v`) that are new or named otherwise in `known`
    (silver categories before the batch, None when there are none yet), or whose very version `known` holds
    already: this batch replayed after a crash (or re-read), whose first run may have renamed the products
    in silver without publishing them, so they are rewritten and published again."""
    renamed = categories.select(F.col("id").alias("category_id"), "category_name", "_v")
    if known is not None:
        before = known.select(
            F.col("id").alias("category_id"), F.col("category_name").alias("old_name"), F.col("_v").alias("old_v")
        )
        renamed = renamed.join(before, "category_id", how="left").where(
            F.col("old_name").isNull() | (F.col("old_name") != F.col("category_name")) | (F.col("old_v") == F.col("_v"))
        )
    return [row["category_id"] for row in renamed.select("category_id").collect()]


def current_rows(spark: SparkSession, tables: lake.LakeTables, touched: DataFrame) -> DataFrame | None:
    """After the MERGEs: silver's current row (persisted) for every asin in `touched`; None before silver has a
    product."""
    silver = lake.read_if_exists(spark, tables.silver_products)
    return None if silver is None else silver.join(touched, "asin", how="left_semi").persist()
