"""The dashboard's data: the serving-layer reads of lakehouse.serving, shaped into small DataFrames."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pymongo.database import Database

from dashboard import series
from dashboard.formatting import identifier
from lakehouse import catalog, serving
from lakehouse.mongo import mongo_client
from lakehouse.schemas import INT64_MAX
from lakehouse.settings import settings

BROWSABLE = tuple(collection.name for collection in catalog.ALL)
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
NUMERIC_CATEGORY_COLUMNS = [name for name in CATEGORY_COLUMNS if name != "category_name"]
ALL_CATEGORIES = "All categories"
# A title search lists at most this many products.
MAX_MATCHES = 20
# A field name starting with "$" is a query operator ($where runs JavaScript on the server), not a field.
OPERATOR_PREFIX = "$"
# BSON writes a field name as a C string, so pymongo refuses to send one with a NUL in it (InvalidDocument).
NUL = "\0"
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
# BSON's widest integer is a signed 64-bit one; a longer number cannot be sent (OverflowError).
INT64_MIN = -INT64_MAX - 1
INT64_DIGITS = len(str(INT64_MAX))


class RefusedQuery(ValueError):
    """A data-browser query the dashboard will not send; its message says why, for the page to show."""


def connect(uri: str = settings.mongo_uri, database: str = settings.mongo_db) -> Database:
    return mongo_client(uri, server_selection_timeout_ms=2000, app_name="amazon-lakehouse-dashboard")[database]


def headline(db: Database) -> dict[str, Any]:
    summary = serving.summary(db)
    newest = summary.get("newest_record_ts")
    return {
        "products": summary.get("products", 0),
        "categories": summary.get("categories", 0),
        "best_sellers": summary.get("best_sellers", 0),
        "avg_price": summary.get("avg_price"),
        "freshness_seconds": serving.freshness_seconds(db) if isinstance(newest, datetime) else None,
        "quarantined": serving.quarantine_count(db),
    }


def unnamed_category(category_id: object) -> str:
    return f"(category {identifier(category_id)} not yet arrived)"


def as_text(ids: pd.Series, shown: Callable[[object], str]) -> pd.Series:
    """`shown` of each id. Not Series.map: on a column of whole numbers with <NA>, map hands the function
    floats, and 2**63 - 1 arrives as 2**63."""
    return pd.Series([shown(category_id) for category_id in ids], index=ids.index, dtype=object)


def exact_integers(values: pd.Series) -> pd.Series:
    """`values` as numbers, whole ones kept exact: with one missing value a plain numeric column is float64,
    which rounds an id above 2**53 (2**63 - 1 would become 2**63), so missing values are <NA> instead."""
    return pd.to_numeric(values, errors="coerce", dtype_backend="numpy_nullable")


def category_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """gold_category_stats documents as one frame shape: numeric columns, a name for every category."""
    stored = pd.DataFrame(documents, columns=CATEGORY_COLUMNS, dtype=object)  # as stored: no float64 guess
    frame = series.numbers(stored, NUMERIC_CATEGORY_COLUMNS).assign(category_id=exact_integers(stored["category_id"]))
    names = frame["category_name"].astype(str)
    named = frame["category_name"].notna() & (names.str.strip() != "")
    frame["category_name"] = names.where(named, as_text(frame["category_id"], unnamed_category))
    return frame.sort_values(["product_count", "category_id"], ascending=[False, True], ignore_index=True)


def category_stats(db: Database) -> pd.DataFrame:
    return category_frame(serving.category_stats(db))


def category_choices(stats: pd.DataFrame) -> dict[str, int | None]:
    """The price chart's choices, label -> category_id; a name two categories share gets their ids."""
    known = stats.dropna(subset=["category_id"])
    shared = known["category_name"].duplicated(keep=False)
    labels = known["category_name"].where(
        ~shared, known["category_name"] + " (id " + as_text(known["category_id"], identifier) + ")"
    )
    return {ALL_CATEGORIES: None} | {
        label: int(category_id) for label, category_id in zip(labels, known["category_id"], strict=True)
    }


def ranked(stats: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """The `n` rows with the largest `column`; rows without a value are no rank, so they are left out."""
    return stats.dropna(subset=[column]).nlargest(n, column)


def rated_categories(stats: pd.DataFrame) -> pd.DataFrame:
    """Categories a rating-vs-price chart with a log price axis can place: rated, priced above zero."""
    placeable = stats["avg_stars"].notna() & (stats["median_price"] > 0) & (stats["product_count"] > 0)
    return stats[placeable]


@dataclass(frozen=True)
class Other:
    """The categories left out of a top-N chart: how many, their products, and their share of all products."""

    categories: int
    products: int
    share: float

    def describe(self) -> str:
        return f"Other: {self.categories:,} categories, {self.products:,} products ({self.share:.1%})"


def category_shares(stats: pd.DataFrame, top_n: int, by: str = "product_count") -> tuple[pd.DataFrame, Other]:
    """The `top_n` categories by `by` with their products and share of all products (0..1), largest first,
    and the rest summarised apart, so that no "Other" bar dwarfs the top ones."""
    total = stats["product_count"].sum()
    top = ranked(stats, by, top_n)[["category_name", "product_count"]].reset_index(drop=True)
    top["share"] = top["product_count"] / total if total else 0.0
    rest = total - top["product_count"].sum()
    other = Other(len(stats) - len(top), int(rest), float(rest / total) if total else 0.0)
    return top, other


def price_distribution(db: Database, category_id: int | None = None) -> pd.DataFrame:
    rows = pd.DataFrame(
        serving.price_buckets(db, category_id), columns=["category_id", "bucket", "label", "product_count"]
    )
    return (
        series.numbers(rows, ["bucket", "product_count"])
        .groupby(["bucket", "label"], as_index=False)["product_count"]
        .sum()
        .sort_values("bucket", ignore_index=True)
    )


def quarantine_reasons(db: Database) -> pd.DataFrame:
    return pd.DataFrame(serving.quarantine_reasons(db), columns=["reason", "records"])


def quarantine_by_reason_over_time(db: Database, window_seconds: int) -> pd.DataFrame:
    """Quarantined records per time bucket and reason in the last `window_seconds` of broker time."""
    documents = serving.quarantine_times(db, since(window_seconds))
    return series.counts_per_bucket(documents, series.bucket_seconds(window_seconds))


def latest_quarantined(db: Database) -> pd.DataFrame:
    columns = ["_kafka_ts", "_topic", "_partition", "_offset", "reason", "raw_value"]
    return pd.DataFrame(serving.latest_quarantined(db), columns=columns)


def browse(
    db: Database, collection: str, field: str = "", value: str = "", page: int = 0, page_size: int = 25
) -> list[dict[str, Any]]:
    if collection not in BROWSABLE:
        raise RefusedQuery(f"not a browsable collection: {collection!r}")
    check_field_name(field)
    query = {field: equals(value)} if field and value else {}
    # In the server's natural order, where an unfiltered page stops after skip + limit rows (the embedded
    # server with our patch, stack/patches/: 1 ms for a first page of 1.4M products, 0.9-3.8 s unpatched); an
    # _id-sorted page walks the whole _id index first (8.5-11.7 s at 1.4M). A page is stable while the
    # collection does not change.
    return list(db[collection].find(query).skip(page * page_size).limit(page_size))


def check_field_name(field: str) -> None:
    if field.startswith(OPERATOR_PREFIX):
        raise RefusedQuery(f"a field name cannot start with {OPERATOR_PREFIX!r}: {field!r}")
    if NUL in field:
        raise RefusedQuery(f"a field name cannot contain a NUL character: {field!r}")


def equals(value: str) -> str | dict[str, list[str | int]]:
    """What a typed value matches. Digits alone may be stored as text or as a number (a book's ASIN
    0316769487 is text, category_id 104 a number), so they match either; the number only when it fits BSON."""
    number = int64(value)
    return value if number is None else {"$in": [value, number]}


def int64(text: str) -> int | None:
    """`text` as a signed 64-bit integer, or None when it is not a whole number or does not fit."""
    # The length check comes first: int() refuses text of more than 4,300 digits.
    if not WHOLE_NUMBER.fullmatch(text) or len(text.lstrip("-").lstrip("0")) > INT64_DIGITS:
        return None
    number = int(text)
    return number if INT64_MIN <= number <= INT64_MAX else None


# --- over time (issue #12) -----------------------------------------------------------------------------


def since(window_seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=window_seconds)


def lookup_products(db: Database, text: str) -> list[dict[str, Any]]:
    """The products `text` names: the one with that ASIN (one indexed read), else at most MAX_MATCHES whose
    title has every word (a search that may walk every product when no title matches: read it cached)."""
    exact = serving.find_product(db, text.strip().upper())
    return [exact] if exact else serving.search_products(db, q=text, limit=MAX_MATCHES)[0]


@dataclass(frozen=True)
class PriceHistory:
    """A product's price history: `versions` as series.price_history_frame shapes them (at most the newest
    serving.MAX_PRICE_VERSIONS), and the price (USD) of its very first version, which `versions` lacks when
    `cut`."""

    versions: pd.DataFrame
    first_price: float | None
    cut: bool


def price_history(db: Database, asin: str) -> PriceHistory:
    documents = serving.price_history(db, asin)
    versions = series.price_history_frame(documents)
    first = serving.first_price_version(db, asin) if len(documents) >= serving.MAX_PRICE_VERSIONS else None
    cut = first is not None and first.get("_v") != documents[0].get("_v")
    oldest = series.price_history_frame([first]) if cut else versions
    return PriceHistory(versions, float(oldest["price"].iloc[0]) if len(oldest) else None, cut)


def category_history(db: Database, category_ids: tuple[int, ...], range_seconds: int | None) -> pd.DataFrame:
    """The history of `category_ids` over the `range_seconds` (all of it when None) up to their newest point,
    at most serving.MAX_CATEGORY_POINTS newest points per category, as series.category_history_frame shapes
    it."""
    newest = serving.newest_category_point(db, category_ids) if range_seconds is not None else None
    since = None if newest is None else newest - timedelta(seconds=range_seconds or 0)
    return series.category_history_frame(serving.category_history(db, category_ids, since))


def movers(db: Database, window: str, kind: str) -> pd.DataFrame:
    return series.movers_frame(serving.movers(db, window, kind))


def pipeline_events(db: Database, window_seconds: int) -> list[dict[str, Any]]:
    return serving.pipeline_events(db, since(window_seconds))


def job_state(db: Database) -> dict[str, Any]:
    """The supervisor's state, the last micro-batch's status and the newest event, for the Pipeline page."""
    return {
        "supervisor": serving.supervisor_status(db),
        "status": serving.pipeline_status(db),
        "last_event": serving.last_event(db),
    }
