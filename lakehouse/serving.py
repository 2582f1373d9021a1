"""Reads from the MongoDB serving layer, shared by the read API and the dashboard.

Charts read the small gold collections; products are read by `_id` (the asin) or through the
category_id index, a page at a time. Nothing here loads a whole products collection.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

PRODUCT_PROJECTION = {"_id": 0, "_rescued_data": 0, "_topic": 0, "_partition": 0, "_offset": 0, "_v": 0}
MAX_PAGE = 200
SUPERVISOR_STATUS_ID = "streaming_job_supervisor"


def find_product(db: Database, asin: str) -> dict[str, Any] | None:
    return db.products.find_one({"_id": asin}, PRODUCT_PROJECTION)


def title_filter(words: str) -> dict[str, Any]:
    """Every word must appear in the title, in any order, ignoring case.

    A regular expression per word (the embedded servers have no text indexes), evaluated while the query
    walks the _id index until a page is full; on real MongoDB a text index would serve it faster.
    """
    return {"$and": [{"title": {"$regex": re.escape(word), "$options": "i"}} for word in words.split()]}


def search_products(
    db: Database, category_id: int | None = None, q: str = "", limit: int = 50, after: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of products in asin order, and the cursor for the next page (None on the last)."""
    limit = max(1, min(limit, MAX_PAGE))
    conditions: list[dict[str, Any]] = []
    if category_id is not None:
        conditions.append({"category_id": category_id})
    if q.strip():
        conditions.append(title_filter(q))
    if after:
        conditions.append({"_id": {"$gt": after}})
    query = {"$and": conditions} if conditions else {}
    items = list(db.products.find(query, PRODUCT_PROJECTION).sort("_id", ASCENDING).limit(limit + 1))
    next_cursor = items[limit - 1]["asin"] if len(items) > limit else None
    return items[:limit], next_cursor


def list_categories(db: Database) -> list[dict[str, Any]]:
    return list(db.categories.find({}, {"_id": 0, "id": 1, "category_name": 1}).sort("id", ASCENDING))


def category_stats(db: Database) -> list[dict[str, Any]]:
    return list(db.gold_category_stats.find({}, {"_id": 0}).sort("product_count", DESCENDING))


def price_buckets(db: Database, category_id: int | None = None) -> list[dict[str, Any]]:
    query = {} if category_id is None else {"category_id": category_id}
    return list(db.gold_price_buckets.find(query, {"_id": 0}))


def rating_distribution(db: Database) -> list[dict[str, Any]]:
    return list(db.gold_rating_distribution.find({}, {"_id": 0}))


def summary(db: Database) -> dict[str, Any]:
    return db.gold_summary.find_one({"_id": "all"}, {"_id": 0}) or {}


def pipeline_status(db: Database) -> dict[str, Any]:
    return db.pipeline_status.find_one({"_id": "streaming_job"}, {"_id": 0}) or {}


def supervisor_status(db: Database) -> dict[str, Any]:
    """The streaming job supervisor's state (spark_jobs/supervisor.py): state running|restarting|stopped, kind,
    cause, message, command, batch_id, ranges, restarts, warnings, updated_at; {} before the job ever ran."""
    return db.pipeline_status.find_one({"_id": SUPERVISOR_STATUS_ID}, {"_id": 0}) or {}


def quarantine_reasons(db: Database) -> list[dict[str, Any]]:
    grouped = db.quarantine.aggregate([{"$group": {"_id": "$reason", "records": {"$sum": 1}}}])
    return sorted(({"reason": g["_id"], "records": g["records"]} for g in grouped), key=lambda r: -r["records"])


def latest_quarantined(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    return list(db.quarantine.find({}, {"_v": 0}).sort("_kafka_ts", DESCENDING).limit(limit))


def freshness_seconds(db: Database, now: datetime | None = None) -> float | None:
    """Age of the newest record in the serving layer (by its Kafka timestamp)."""
    newest = summary(db).get("newest_record_ts")
    if newest is None:
        return None
    return ((now or datetime.now(UTC)) - newest.replace(tzinfo=UTC)).total_seconds()


def insights(db: Database) -> dict[str, Any]:
    """Every gold aggregate, with the time of the micro-batch that computed them."""
    return {
        "as_of": pipeline_status(db).get("updated_at"),
        "summary": summary(db),
        "categories": category_stats(db),
        "price_buckets": price_buckets(db),
        "rating_distribution": rating_distribution(db),
    }
