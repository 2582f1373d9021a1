"""What the dashboard reads: small gold collections for charts, indexed look-ups for products.

No function here loads the products collection whole; charts come from the gold aggregates the streaming
job keeps equal to the silver state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pymongo import MongoClient
from pymongo.database import Database

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


def connect(uri: str = settings.mongo_uri, database: str = settings.mongo_db) -> Database:
    return MongoClient(uri, serverSelectionTimeoutMS=2000)[database]


def headline(db: Database) -> dict[str, Any]:
    summary = db.gold_summary.find_one({"_id": "all"}) or {}
    newest = summary.get("newest_record_ts")
    freshness = (datetime.now(UTC) - newest.replace(tzinfo=UTC)).total_seconds() if newest else None
    return {
        "products": summary.get("products", 0),
        "categories": summary.get("categories", 0),
        "best_sellers": summary.get("best_sellers", 0),
        "avg_price": summary.get("avg_price"),
        "freshness_seconds": freshness,
        "quarantined": db.quarantine.estimated_document_count(),
    }


def category_stats(db: Database) -> pd.DataFrame:
    columns = [
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
    frame = pd.DataFrame(list(db.gold_category_stats.find({}, {"_id": 0})), columns=columns)
    frame["category_name"] = frame["category_name"].fillna("(category not yet arrived)")
    return frame.sort_values("product_count", ascending=False, ignore_index=True)


def top_categories(stats: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The `top_n` largest categories by product count, the rest summed into 'Other'."""
    top = stats.nlargest(top_n, "product_count")[["category_name", "product_count"]]
    rest = stats["product_count"].sum() - top["product_count"].sum()
    if rest > 0:
        top = pd.concat([top, pd.DataFrame([{"category_name": "Other", "product_count": rest}])])
    return top.reset_index(drop=True)


def price_distribution(db: Database, category_id: int | None = None) -> pd.DataFrame:
    query = {} if category_id is None else {"category_id": category_id}
    rows = pd.DataFrame(
        list(db.gold_price_buckets.find(query, {"_id": 0})), columns=["category_id", "bucket", "label", "product_count"]
    )
    return (
        rows.groupby(["bucket", "label"], as_index=False)["product_count"]
        .sum()
        .sort_values("bucket", ignore_index=True)
    )


def rating_distribution(db: Database) -> pd.DataFrame:
    return pd.DataFrame(
        list(db.gold_rating_distribution.find({}, {"_id": 1, "product_count": 1})), columns=["_id", "product_count"]
    ).rename(columns={"_id": "stars"})


def browse(
    db: Database, collection: str, field: str = "", value: str = "", page: int = 0, page_size: int = 25
) -> list[dict[str, Any]]:
    if collection not in BROWSABLE:
        raise ValueError(f"not a browsable collection: {collection!r}")
    query: dict[str, Any] = {}
    if field and value:
        query = {field: int(value)} if value.lstrip("-").isdigit() else {field: value}
    cursor = db[collection].find(query).sort("_id", 1).skip(page * page_size).limit(page_size)
    return list(cursor)
