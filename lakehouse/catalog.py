"""The serving catalog: every MongoDB collection the streaming job writes and the dashboard and the read API
read, with what its `_id` holds, its document fields and the indexes its readers need.

The writer (spark_jobs/) and the readers (lakehouse/serving.py, dashboard/, api_ingest/) import these names
instead of spelling collection names; a test checks that no other module does. Times are BSON dates in UTC,
prices US dollars, durations seconds unless a field name says `_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.schemas import CATEGORY_FIELDS, PRODUCT_FIELDS

# Where a record came from in Kafka (spark_jobs/transforms.py adds them to every parsed record).
KAFKA_COLUMNS = ("_topic", "_partition", "_offset", "_kafka_ts")


@dataclass(frozen=True)
class ServingCollection:
    """One MongoDB collection: `name`, what its `_id` is (`key`), the other fields of its documents, and the
    compound indexes (field tuples, ascending) that its readers' filters and sorts use."""

    name: str
    key: str
    fields: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    # Written by the job from the lakehouse (dropped and rebuilt by `make backfill`), not kept by it.
    derived: bool = True


PRODUCTS = ServingCollection(
    "products",
    key="asin",
    fields=(*PRODUCT_FIELDS, "category_name", "_rescued_data", *KAFKA_COLUMNS, "_v"),
    indexes=(("category_id", "_id"),),
)
CATEGORIES = ServingCollection("categories", key="id", fields=(*CATEGORY_FIELDS, *KAFKA_COLUMNS, "_v"))
QUARANTINE = ServingCollection(
    "quarantine",
    key="<topic>:<partition>:<offset>@<broker ms> (spark_jobs/transforms.record_id)",
    fields=("_topic", "_partition", "_offset", "_kafka_ts", "key", "reason", "raw_value", "raw_length"),
    indexes=(("_kafka_ts",), ("reason",)),
)
# Every price a product had: one document per version of the product (issue #12's price history).
PRICE_HISTORY = ServingCollection(
    "price_history",
    key="<asin>@<_v>",
    fields=("asin", "arrived_at", "price", "listPrice", "title", "category_id", "_v"),
    indexes=(("asin", "_v"), ("arrived_at",)),
)

# Gold: aggregates of silver's current state, replaced whole after every refresh.
GOLD_CATEGORY_STATS = ServingCollection(
    "gold_category_stats",
    key="category_id",
    fields=(
        "category_id",
        "category_name",
        "product_count",
        "avg_price",
        "median_price",
        "min_price",
        "max_price",
        "best_seller_count",
        "avg_stars",
        "bought_last_month",
        "avg_discount",
    ),
)
GOLD_PRICE_BUCKETS = ServingCollection(
    "gold_price_buckets", key="<category_id>:<bucket>", fields=("category_id", "bucket", "label", "product_count")
)
GOLD_RATING_DISTRIBUTION = ServingCollection(
    "gold_rating_distribution", key="stars as text, or 'unrated'", fields=("stars", "product_count")
)
GOLD_SUMMARY = ServingCollection(
    "gold_summary",
    key="'all'",
    fields=("products", "best_sellers", "avg_price", "newest_record_ts", "products_without_category", "categories"),
)
# Gold over time: one point per category and time bucket (TRENDS_BUCKET_SECONDS of broker time), the last
# refresh within a bucket wins. Kept by a rebuild from bronze, which cannot recompute past points.
GOLD_CATEGORY_HISTORY = ServingCollection(
    "gold_category_history",
    key="<category_id>@<at, epoch seconds>",
    fields=("category_id", "category_name", "at", "product_count", "avg_price", "median_price", "best_seller_count"),
    indexes=(("category_id", "at"), ("at",)),
    derived=False,
)
# The largest price moves up and down per window (kind 'product' or 'category'), replaced after every refresh.
GOLD_MOVERS = ServingCollection(
    "gold_movers",
    key="<kind>:<window>:<direction>:<rank>",
    fields=(
        "kind",
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
        "until",
    ),
)
GOLD_COLLECTIONS = (
    GOLD_CATEGORY_STATS,
    GOLD_PRICE_BUCKETS,
    GOLD_RATING_DISTRIBUTION,
    GOLD_SUMMARY,
    GOLD_CATEGORY_HISTORY,
    GOLD_MOVERS,
)

# Operations: the job's state, and one document per micro-batch for the Pipeline page's time series.
PIPELINE_STATUS = ServingCollection(
    "pipeline_status",
    key="'streaming_job' (the last micro-batch), 'streaming_job_supervisor' (the supervisor's state) or "
    "'gold_refresh' (the last refresh of gold: the silver versions it was built from, its steps)",
    fields=(),
    derived=False,
)
STREAMING_JOB_STATUS_ID = "streaming_job"
SUPERVISOR_STATUS_ID = "streaming_job_supervisor"
GOLD_REFRESH_STATUS_ID = "gold_refresh"
PIPELINE_EVENTS = ServingCollection(
    "pipeline_events",
    key="<app id>:<batch id>",
    fields=(
        "source",
        "batch_id",
        "started_at",
        "at",
        "input_rows",
        "rows_per_second",
        "seconds",
        "steps",
        "quarantined",
        "rescued",
        "newest_record_ts",
        "freshness_seconds",
        "lag",
    ),
    indexes=(("at",),),
    derived=False,
)

ALL = (PRODUCTS, CATEGORIES, QUARANTINE, PRICE_HISTORY, *GOLD_COLLECTIONS, PIPELINE_STATUS, PIPELINE_EVENTS)
DERIVED = tuple(collection for collection in ALL if collection.derived)
