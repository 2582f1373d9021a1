"""Reads from the MongoDB serving layer, shared by the read API and the dashboard.

Collection names, keys and indexes come from lakehouse.catalog. Charts read the small gold collections;
products are read by `_id` (the asin) or through the category_id index, a page at a time; the time series
(price history, category history, pipeline events, quarantine times) are read through the catalog's indexes
and bounded by a time window or a limit. Nothing here loads a whole products collection.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from lakehouse import catalog

# The supervisor (spark_jobs/supervisor.py) imports SUPERVISOR_STATUS_ID from here.
from lakehouse.catalog import STREAMING_JOB_STATUS_ID, SUPERVISOR_STATUS_ID

PRODUCT_PROJECTION = {"_id": 0, "_rescued_data": 0, "_topic": 0, "_partition": 0, "_offset": 0, "_v": 0}
MAX_PAGE = 200
# A price history longer than this is cut to its newest versions (a product re-priced every minute for days).
MAX_PRICE_VERSIONS = 5_000
# The Pipeline page's widest window holds at most this many micro-batches (the newest ones).
MAX_EVENTS = 5_000
# A category's trend is read as at most this many of its newest points (two weeks of 60 s buckets).
MAX_CATEGORY_POINTS = 20_000
WINDOWS = ("1h", "24h", "7d", "30d")
# The next character after ":" in ASCII: "kind:window:" <= an _id < "kind:window;" is one _id prefix range.
AFTER_COLON = ";"


def find_product(db: Database, asin: str) -> dict[str, Any] | None:
    return db[catalog.PRODUCTS.name].find_one({"_id": asin}, PRODUCT_PROJECTION)


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
    found = db[catalog.PRODUCTS.name].find(query, PRODUCT_PROJECTION).sort("_id", ASCENDING).limit(limit + 1)
    items = list(found)
    next_cursor = items[limit - 1]["asin"] if len(items) > limit else None
    return items[:limit], next_cursor


def list_categories(db: Database) -> list[dict[str, Any]]:
    categories = db[catalog.CATEGORIES.name]
    return list(categories.find({}, {"_id": 0, "id": 1, "category_name": 1}).sort("id", ASCENDING))


def category_stats(db: Database) -> list[dict[str, Any]]:
    return list(db[catalog.GOLD_CATEGORY_STATS.name].find({}, {"_id": 0}).sort("product_count", DESCENDING))


def price_buckets(db: Database, category_id: int | None = None) -> list[dict[str, Any]]:
    query = {} if category_id is None else {"category_id": category_id}
    return list(db[catalog.GOLD_PRICE_BUCKETS.name].find(query, {"_id": 0}))


def rating_distribution(db: Database) -> list[dict[str, Any]]:
    return list(db[catalog.GOLD_RATING_DISTRIBUTION.name].find({}, {"_id": 0}))


def summary(db: Database) -> dict[str, Any]:
    return db[catalog.GOLD_SUMMARY.name].find_one({"_id": "all"}, {"_id": 0}) or {}


def pipeline_status(db: Database) -> dict[str, Any]:
    """The last micro-batch (spark_jobs/monitoring.status_document): batch_id, input_rows,
    input_rows_per_second, processed_rows_per_second, batch_duration_ms, batch_started_at, quarantined,
    lag (topic -> records behind), updated_at; {} before the first batch."""
    return db[catalog.PIPELINE_STATUS.name].find_one({"_id": STREAMING_JOB_STATUS_ID}, {"_id": 0}) or {}


def supervisor_status(db: Database) -> dict[str, Any]:
    """The streaming job supervisor's state (spark_jobs/supervisor.py): state running|restarting|stopped, kind,
    cause, message, command, batch_id, ranges, restarts, warnings, updated_at; {} before the job ever ran."""
    return db[catalog.PIPELINE_STATUS.name].find_one({"_id": SUPERVISOR_STATUS_ID}, {"_id": 0}) or {}


def quarantine_count(db: Database) -> int:
    """How many records are in quarantine, from the collection's metadata (no scan)."""
    return db[catalog.QUARANTINE.name].estimated_document_count()


def quarantine_reasons(db: Database) -> list[dict[str, Any]]:
    """Every quarantine reason with its number of records ({reason, records}), most records first."""
    grouped = db[catalog.QUARANTINE.name].aggregate([{"$group": {"_id": "$reason", "records": {"$sum": 1}}}])
    return sorted(({"reason": g["_id"], "records": g["records"]} for g in grouped), key=lambda r: -r["records"])


def latest_quarantined(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest quarantined records by broker time (index _kafka_ts), as stored but without `_v`."""
    return list(db[catalog.QUARANTINE.name].find({}, {"_v": 0}).sort("_kafka_ts", DESCENDING).limit(limit))


def quarantine_times(db: Database, since: datetime, limit: int = 50_000) -> list[dict[str, Any]]:
    """When and why records were quarantined since `since` (broker time, index _kafka_ts), newest first, at
    most `limit`: [{_kafka_ts: datetime, reason: str}]."""
    query = {"_kafka_ts": {"$gte": since}}
    projection = {"_id": 0, "_kafka_ts": 1, "reason": 1}
    return list(db[catalog.QUARANTINE.name].find(query, projection).sort("_kafka_ts", DESCENDING).limit(limit))


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


# --- over time (issue #12) -----------------------------------------------------------------------------


def price_history(db: Database, asin: str, limit: int = MAX_PRICE_VERSIONS) -> list[dict[str, Any]]:
    """Every price `asin` had, oldest first (index asin, _v), at most its `limit` newest versions:
    [{asin, arrived_at: datetime UTC, price: float USD, listPrice: float USD | None, title, category_id, _v}]."""
    newest = db[catalog.PRICE_HISTORY.name].find({"asin": asin}, {"_id": 0}).sort("_v", DESCENDING).limit(limit)
    return list(newest)[::-1]


def first_price_version(db: Database, asin: str) -> dict[str, Any] | None:
    """The first version of `asin` (index asin, _v), as price_history gives it; None when it has none."""
    return db[catalog.PRICE_HISTORY.name].find_one({"asin": asin}, {"_id": 0}, sort=[("_v", ASCENDING)])


def newest_category_point(db: Database, category_ids: Iterable[int]) -> datetime | None:
    """The newest bucket start (UTC) among the history of `category_ids` (index category_id, at), None when
    they have none."""
    history = db[catalog.GOLD_CATEGORY_HISTORY.name]
    newest = [
        history.find_one({"category_id": c}, {"_id": 0, "at": 1}, sort=[("at", DESCENDING)]) for c in category_ids
    ]
    moments = [point["at"] for point in newest if point and isinstance(point.get("at"), datetime)]
    return max(moments, default=None)


def category_history(
    db: Database, category_ids: Iterable[int], since: datetime | None = None, limit: int = MAX_CATEGORY_POINTS
) -> list[dict[str, Any]]:
    """The gold aggregates of `category_ids` over time from `since` (all time when None), at most the `limit`
    newest points of each category, one query per category on the index (category_id, at), each in time
    order: [{category_id, category_name, at: bucket start UTC, product_count, avg_price USD, median_price USD,
    best_seller_count}]."""
    history = db[catalog.GOLD_CATEGORY_HISTORY.name]
    points: list[dict[str, Any]] = []
    for category_id in category_ids:
        query: dict[str, Any] = {"category_id": category_id}
        if since is not None:
            query["at"] = {"$gte": since}
        points += list(history.find(query, {"_id": 0}).sort("at", DESCENDING).limit(limit))[::-1]
    return points


def movers(db: Database, window: str, kind: str) -> list[dict[str, Any]]:
    """The largest price moves of `kind` ('product' or 'category') over `window` ('1h', '24h', '7d', '30d'),
    read as one range of the _id index ("<kind>:<window>:<direction>:<rank>"), by direction then rank:
    [{kind, window, window_seconds, direction 'up'|'down', rank, key (asin or category id), name,
    category_name, start_price USD, end_price USD, change USD, change_pct (percent), since, until}]."""
    prefix = f"{kind}:{window}"
    query = {"_id": {"$gte": f"{prefix}:", "$lt": f"{prefix}{AFTER_COLON}"}}
    found = db[catalog.GOLD_MOVERS.name].find(query, {"_id": 0})
    return sorted(found, key=lambda mover: (str(mover.get("direction")), _rank(mover.get("rank"))))


def _rank(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def pipeline_events(db: Database, since: datetime, limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
    """The micro-batches that finished since `since` (index at), oldest first, at most the `limit` newest:
    [{source, batch_id, started_at, at (finish, UTC), input_rows, rows_per_second, seconds, steps (step ->
    seconds), quarantined, rescued, newest_record_ts, freshness_seconds, lag (topic -> records behind; may be
    absent)}]."""
    events = db[catalog.PIPELINE_EVENTS.name].find({"at": {"$gte": since}}).sort("at", DESCENDING).limit(limit)
    return list(events)[::-1]


def last_event(db: Database) -> dict[str, Any]:
    """The newest micro-batch of the event log (index at), {} when none."""
    return db[catalog.PIPELINE_EVENTS.name].find_one({}, sort=[("at", DESCENDING)]) or {}
