"""The job's steps as pure DataFrame -> DataFrame functions; I/O lives in streaming_job.py.

Column conventions: `_topic`, `_partition`, `_offset`, `_kafka_ts` are a record's Kafka coordinates and
travel with it to every layer. `_v` is its version: the Kafka offset. A key always maps to the same
partition, so for one asin (or category id) a higher offset is a later record.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from lakehouse.schemas import ASIN_PATTERN, MAX_CATEGORY_NAME_LENGTH, MAX_TITLE_LENGTH, PRODUCT_FIELDS
from spark_jobs.schemas import CATEGORY_SCHEMA, PRODUCT_SCHEMA

KAFKA_COLUMNS = ("_topic", "_partition", "_offset", "_kafka_ts")


def to_bronze(kafka_rows: DataFrame) -> DataFrame:
    """Kafka source rows -> bronze: every record as received, with its coordinates."""
    return kafka_rows.select(
        F.col("topic").alias("_topic"),
        F.col("partition").alias("_partition"),
        F.col("offset").alias("_offset"),
        F.col("timestamp").alias("_kafka_ts"),
        F.col("key").cast("string").alias("key"),
        F.col("value").alias("value"),
    )


def parse_json(bronze: DataFrame, schema: StructType) -> DataFrame:
    """Adds `record` (the typed struct), `raw_value` (text) and `_rescued_data` (unknown fields as JSON)."""
    raw = F.col("value").cast("string")
    as_map = F.from_json(raw, "map<string,string>")
    known = F.array(*[F.lit(name) for name in schema.fieldNames()])
    extras = F.map_filter(as_map, lambda key, _value: ~F.array_contains(known, key))
    return bronze.select(
        *KAFKA_COLUMNS,
        "key",
        raw.alias("raw_value"),
        # Spark decodes bad UTF-8 to U+FFFD; re-encoding then differs from the bytes that arrived.
        (F.encode(raw, "UTF-8") == F.col("value")).alias("_is_utf8"),
        as_map.isNotNull().alias("_is_json_object"),
        F.from_json(raw, schema).alias("record"),
        F.when(F.size(extras) > 0, F.to_json(extras)).alias("_rescued_data"),
    )


def _first_failure(rules: list[tuple[str, Column]]) -> Column:
    """The name of the first rule whose failure condition holds, else null."""
    reason = F.lit(None).cast("string")
    for name, fails in reversed(rules):
        reason = F.when(fails, F.lit(name)).otherwise(reason)
    return reason


def _missing(field: str) -> Column:
    return F.col(f"record.{field}").isNull()


def _envelope_rules() -> list[tuple[str, Column]]:
    return [("value: not valid UTF-8", ~F.col("_is_utf8")), ("not a JSON object", ~F.col("_is_json_object"))]


def product_rules() -> list[tuple[str, Column]]:
    """Every product validation rule, in the order they are checked. Each pairs a reason with its failure."""
    record = "record."
    return [
        *_envelope_rules(),
        ("asin: missing", _missing("asin")),
        ("asin: not 10 upper-case letters or digits", ~F.col(record + "asin").rlike(ASIN_PATTERN)),
        ("title: missing or empty", _missing("title") | (F.length(F.col(record + "title")) == 0)),
        (f"title: longer than {MAX_TITLE_LENGTH} characters", F.length(record + "title") > MAX_TITLE_LENGTH),
        ("price: missing or not a number", _missing("price")),
        ("price: negative", F.col(record + "price") < 0),
        ("stars: missing or not a number", _missing("stars")),
        ("stars: outside [0, 5]", ~F.col(record + "stars").between(0, 5)),
        ("reviews: missing or not a whole number", _missing("reviews")),
        ("reviews: negative", F.col(record + "reviews") < 0),
        ("listPrice: negative", F.col(record + "listPrice") < 0),
        ("category_id: missing or not a whole number", _missing("category_id")),
        ("category_id: not positive", F.col(record + "category_id") <= 0),
        ("boughtInLastMonth: negative", F.col(record + "boughtInLastMonth") < 0),
    ]


def category_rules() -> list[tuple[str, Column]]:
    return [
        *_envelope_rules(),
        ("id: missing or not a whole number", _missing("id")),
        ("id: not positive", F.col("record.id") <= 0),
        (
            "category_name: missing or empty",
            _missing("category_name") | (F.length(F.trim(F.col("record.category_name"))) == 0),
        ),
        (
            f"category_name: longer than {MAX_CATEGORY_NAME_LENGTH} characters",
            F.length("record.category_name") > MAX_CATEGORY_NAME_LENGTH,
        ),
    ]


def with_failure_reason(parsed: DataFrame, rules: list[tuple[str, Column]]) -> DataFrame:
    return parsed.withColumn("_error", _first_failure(rules))


def quarantined(checked: DataFrame) -> DataFrame:
    """Records that failed a rule, with the reason and what is needed to find and replay them."""
    return checked.where(F.col("_error").isNotNull()).select(
        F.concat_ws(":", "_topic", "_partition", "_offset").alias("_id"),
        *KAFKA_COLUMNS,
        "key",
        F.col("_error").alias("reason"),
        F.substring("raw_value", 1, 10_000).alias("raw_value"),
        F.length("raw_value").alias("raw_length"),
    )


def latest_per_key(records: DataFrame, key: str) -> DataFrame:
    """One row per key: the highest offset (the key's latest record) wins."""
    newest_first = Window.partitionBy(key).orderBy(F.col("_offset").desc())
    return records.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")


def valid_products(checked: DataFrame) -> DataFrame:
    """Checked product rows -> typed silver columns, one row per asin."""
    typed = checked.where(F.col("_error").isNull()).select(
        *[F.col(f"record.{name}").alias(name) for name in PRODUCT_FIELDS],
        F.coalesce(F.col("record.listPrice"), F.lit(0.0)).alias("_list_price"),
        F.coalesce(F.col("record.isBestSeller"), F.lit(False)).alias("_best_seller"),
        F.coalesce(F.col("record.boughtInLastMonth"), F.lit(0)).alias("_bought"),
        F.coalesce(F.col("record.imgUrl"), F.lit("")).alias("_img"),
        F.coalesce(F.col("record.productURL"), F.lit("")).alias("_url"),
        "_rescued_data",
        *KAFKA_COLUMNS,
    )
    defaulted = typed.select(
        *[
            c
            for c in PRODUCT_FIELDS
            if c not in ("listPrice", "isBestSeller", "boughtInLastMonth", "imgUrl", "productURL")
        ],
        F.col("_img").alias("imgUrl"),
        F.col("_url").alias("productURL"),
        F.col("_list_price").alias("listPrice"),
        F.col("_best_seller").alias("isBestSeller"),
        F.col("_bought").alias("boughtInLastMonth"),
        "_rescued_data",
        *KAFKA_COLUMNS,
    )
    return latest_per_key(defaulted, "asin").select(
        *PRODUCT_FIELDS, "_rescued_data", *KAFKA_COLUMNS, F.col("_offset").alias("_v")
    )


def valid_categories(checked: DataFrame) -> DataFrame:
    typed = checked.where(F.col("_error").isNull()).select(
        F.col("record.id").alias("id"),
        F.trim(F.col("record.category_name")).alias("category_name"),
        *KAFKA_COLUMNS,
    )
    return latest_per_key(typed, "id").withColumn("_v", F.col("_offset"))


def enrich_with_categories(products: DataFrame, categories: DataFrame) -> DataFrame:
    """Adds category_name; a product whose category has not arrived yet keeps a null name."""
    names = categories.select(F.col("id").alias("category_id"), "category_name")
    return products.join(names, on="category_id", how="left")


def parse_products(bronze: DataFrame) -> DataFrame:
    return with_failure_reason(parse_json(bronze, PRODUCT_SCHEMA), product_rules())


def parse_categories(bronze: DataFrame) -> DataFrame:
    return with_failure_reason(parse_json(bronze, CATEGORY_SCHEMA), category_rules())
