"""The dashboard's data: the serving-layer reads of lakehouse.serving, shaped into small DataFrames."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pymongo import ASCENDING
from pymongo.database import Database

from lakehouse import serving
from lakehouse.mongo import mongo_client
from lakehouse.settings import settings

BROWSABLE = (
    "products",
    "categories",
    "quarantine",
    "gold_category_stats",
    "gold_price_buckets",
    "gold_rating_distribution",
    "gold_summary",
    "pipeline_status",
)
CATEGORY_COLUMNS = [
    "category_id",
    "category_name",
    "product_count",
    "avg_price",
    "median_price",
    "best_seller_count",
    "avg_stars",
    "bought_last_month",
    "avg_discount",
]
NOT_YET_ARRIVED = "(category not yet arrived)"


def connect(uri: str = settings.mongo_uri, database: str = settings.mongo_db) -> Database:
    return mongo_client(uri, server_selection_timeout_ms=2000, app_name="amazon-lakehouse-dashboard")[database]


def headline(db: Database) -> dict[str, Any]:
    summary = serving.summary(db)
    return {
        "products": summary.get("products", 0),
        "categories": summary.get("categories", 0),
        "best_sellers": summary.get("best_sellers", 0),
        "avg_price": summary.get("avg_price"),
        "freshness_seconds": serving.freshness_seconds(db),
        "quarantined": db.quarantine.estimated_document_count(),
    }


def category_stats(db: Database) -> pd.DataFrame:
    frame = pd.DataFrame(serving.category_stats(db), columns=CATEGORY_COLUMNS)
    frame["category_name"] = frame["category_name"].fillna(NOT_YET_ARRIVED)
    return frame.sort_values(["product_count", "category_id"], ascending=[False, True], ignore_index=True)


def top_categories(stats: pd.DataFrame, top_n: int, by: str = "product_count") -> pd.DataFrame:
    """The `top_n` categories by `by`, the rest of the products summed into 'Other'."""
    top = stats.nlargest(top_n, by)[["category_name", "product_count"]]
    rest = stats["product_count"].sum() - top["product_count"].sum()
    if rest > 0:
        top = pd.concat([top, pd.DataFrame([{"category_name": "Other", "product_count": rest}])])
    return top.reset_index(drop=True)


def price_distribution(db: Database, category_id: int | None = None) -> pd.DataFrame:
    rows = pd.DataFrame(
        serving.price_buckets(db, category_id), columns=["category_id", "bucket", "label", "product_count"]
    )
    return (
        rows.groupby(["bucket", "label"], as_index=False)["product_count"]
        .sum()
        .sort_values("bucket", ignore_index=True)
    )


def quarantine_reasons(db: Database) -> pd.DataFrame:
    return pd.DataFrame(serving.quarantine_reasons(db), columns=["reason", "records"])


def latest_quarantined(db: Database) -> pd.DataFrame:
    columns = ["_kafka_ts", "_topic", "_partition", "_offset", "reason", "raw_value"]
    return pd.DataFrame(serving.latest_quarantined(db), columns=columns)


def browse(
    db: Database, collection: str, field: str = "", value: str = "", page: int = 0, page_size: int = 25
) -> list[dict[str, Any]]:
    if collection not in BROWSABLE:
        raise ValueError(f"not a browsable collection: {collection!r}")
    query: dict[str, Any] = {}
    if field and value:
        query = {field: int(value)} if value.lstrip("-").isdigit() else {field: value}
    # In _id order, so a page walks the _id index instead of scanning the collection.
    return list(db[collection].find(query).sort("_id", ASCENDING).skip(page * page_size).limit(page_size))
