"""Gold aggregates for the dashboard, always computed from the current silver state (one row per asin),
so an updated product is counted once, with its latest values."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# Prices are long-tailed (cents to thousands of dollars): buckets grow roughly x2-x2.5 each step.
PRICE_BUCKET_EDGES: tuple[float, ...] = (0, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000)


def price_bucket_label(index: int) -> str:
    lower = PRICE_BUCKET_EDGES[index]
    if index + 1 == len(PRICE_BUCKET_EDGES):
        return f"${lower:,.0f}+"
    return f"${lower:,.0f}-{PRICE_BUCKET_EDGES[index + 1]:,.0f}"


def _price_bucket_index(price: Column) -> Column:
    index = F.lit(0)
    for position, edge in enumerate(PRICE_BUCKET_EDGES[1:], start=1):
        index = F.when(price >= edge, F.lit(position)).otherwise(index)
    return index


def category_stats(products: DataFrame) -> DataFrame:
    is_rated = F.col("reviews") > 0
    has_list_price = F.col("listPrice") > F.col("price")
    return (
        products.groupBy("category_id")
        .agg(
            F.max("category_name").alias("category_name"),
            F.count("*").alias("product_count"),
            F.avg("price").alias("avg_price"),
            F.median("price").alias("median_price"),
            F.min("price").alias("min_price"),
            F.max("price").alias("max_price"),
            F.sum(F.col("isBestSeller").cast("int")).alias("best_seller_count"),
            F.avg(F.when(is_rated, F.col("stars"))).alias("avg_stars"),
            # A double: a sum of 64-bit counts can pass 2^63 and Spark's long sum would wrap around.
            F.sum(F.col("boughtInLastMonth").cast("double")).alias("bought_last_month"),
            F.avg(F.when(has_list_price, 1 - F.col("price") / F.col("listPrice"))).alias("avg_discount"),
        )
        .select(F.col("category_id").alias("_id"), "*")
    )


def price_buckets(products: DataFrame) -> DataFrame:
    """Product counts per (category, price bucket); the dashboard sums them for all categories."""
    bucketed = products.withColumn("bucket", _price_bucket_index(F.col("price")))
    labels = F.create_map(
        *[item for i in range(len(PRICE_BUCKET_EDGES)) for item in (F.lit(i), F.lit(price_bucket_label(i)))]
    )
    return (
        bucketed.groupBy("category_id", "bucket")
        .agg(F.count("*").alias("product_count"))
        .select(
            F.concat_ws(":", "category_id", "bucket").alias("_id"),
            "category_id",
            "bucket",
            labels[F.col("bucket")].alias("label"),
            "product_count",
        )
    )


def rating_distribution(products: DataFrame) -> DataFrame:
    """Products per half-star rating; 'unrated' (no reviews) is its own row."""
    rating = F.when(F.col("reviews") > 0, F.round(F.col("stars") * 2) / 2)
    return (
        products.groupBy(rating.alias("stars"))
        .agg(F.count("*").alias("product_count"))
        .select(F.coalesce(F.col("stars").cast("string"), F.lit("unrated")).alias("_id"), "stars", "product_count")
    )


def summary(products: DataFrame, categories: DataFrame) -> DataFrame:
    return (
        products.agg(
            F.count("*").alias("products"),
            F.sum(F.col("isBestSeller").cast("int")).alias("best_sellers"),
            F.avg("price").alias("avg_price"),
            F.max("_kafka_ts").alias("newest_record_ts"),
            F.sum(F.col("category_name").isNull().cast("int")).alias("products_without_category"),
        )
        .crossJoin(categories.agg(F.count("*").alias("categories")))
        .select(F.lit("all").alias("_id"), "*")
    )
