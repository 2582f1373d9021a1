"""Pure shaping of the serving layer's time series into the frames the Trends and Pipeline pages draw.

Times arrive from pymongo as naive datetimes in UTC; every frame keeps them so (the axes say UTC). Documents
may lack optional fields or hold values of the wrong type (an older job, another writer): such a value is NaN,
never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

PRICE_HISTORY_COLUMNS = ["arrived_at", "price", "listPrice", "title", "category_id", "_v"]
CATEGORY_HISTORY_COLUMNS = [
    "category_id",
    "category_name",
    "at",
    "product_count",
    "avg_price",
    "median_price",
    "best_seller_count",
]
CATEGORY_MEASURES = ["product_count", "avg_price", "median_price", "best_seller_count"]
MOVER_COLUMNS = [
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
]
EVENT_COLUMNS = ["at", "batch_id", "input_rows", "rows_per_second", "seconds", "quarantined", "freshness_seconds"]
# Bucket widths (seconds) for counting over a window: the smallest giving at most MAX_BUCKETS bars.
BUCKET_CHOICES = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 86_400)
MAX_BUCKETS = 40
# Coarser resolutions of the category history, label -> pandas offset alias (None: as stored).
RESOLUTIONS: dict[str, str | None] = {"as stored": None, "hour": "1h", "day": "1D", "week": "7D"}


def numbers(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """`columns` as floats, whatever was stored; missing or non-numeric values become NaN."""
    return frame.assign(**{name: pd.to_numeric(frame[name], errors="coerce") for name in columns})


def times(values: pd.Series) -> pd.Series:
    """`values` as naive UTC datetimes (NaT for anything that is not a time)."""
    return pd.to_datetime(values, errors="coerce", utc=True).dt.tz_localize(None)


def price_history_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """price_history documents, oldest first, as [arrived_at, price, listPrice (USD, NaN when absent), title,
    category_id, _v]; a version without an arrival time cannot be placed and is left out."""
    frame = pd.DataFrame(documents, columns=PRICE_HISTORY_COLUMNS, dtype=object)
    frame = numbers(frame, ["price", "listPrice"]).assign(arrived_at=times(frame["arrived_at"]))
    return frame.dropna(subset=["arrived_at"]).sort_values("_v", kind="stable", ignore_index=True)


def category_history_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """gold_category_history documents as [category_id, category_name, at, product_count, avg_price,
    median_price, best_seller_count], in category then time order; a category without a name is called by
    its id."""
    frame = pd.DataFrame(documents, columns=CATEGORY_HISTORY_COLUMNS, dtype=object)
    frame = numbers(frame, ["category_id", *CATEGORY_MEASURES]).assign(at=times(frame["at"]))
    named = frame["category_name"].notna() & (frame["category_name"].astype(str).str.strip() != "")
    fallback = "category " + frame["category_id"].astype("Int64").astype(str)
    frame["category_name"] = frame["category_name"].where(named, fallback).astype(str)
    frame = frame.dropna(subset=["at"])
    return frame.sort_values(["category_id", "at"], kind="stable", ignore_index=True)


def resample(history: pd.DataFrame, rule: str | None) -> pd.DataFrame:
    """The category history at a coarser resolution `rule` (a pandas offset alias such as "1h" or "1D"; None
    keeps it as stored): per category and period, the last point of the period (the state at its end),
    placed at the period's start."""
    if rule is None or history.empty:
        return history
    periods = history.assign(at=history["at"].dt.floor(rule))
    last = periods.groupby(["category_id", "at"], as_index=False, sort=True).last()
    return last[history.columns].reset_index(drop=True)


def movers_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """gold_movers documents of one kind and window as [direction, rank, key, name, category_name,
    start_price, end_price, change (USD), change_pct (percent), since, until], ups then downs, by rank."""
    frame = pd.DataFrame(documents, columns=MOVER_COLUMNS, dtype=object)
    frame = numbers(frame, ["rank", "start_price", "end_price", "change", "change_pct"])
    frame["name"] = frame["name"].where(frame["name"].notna(), frame["key"]).astype(str)
    order = frame["direction"].map({"up": 0, "down": 1})
    return frame.assign(_order=order).sort_values(["_order", "rank"]).drop(columns="_order").reset_index(drop=True)


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """pipeline_events documents as [at (finish, UTC), batch_id, input_rows, rows_per_second, seconds,
    quarantined, freshness_seconds], in time order."""
    frame = pd.DataFrame(events, columns=EVENT_COLUMNS, dtype=object)
    frame = numbers(frame, EVENT_COLUMNS[1:]).assign(at=times(frame["at"]))
    return frame.dropna(subset=["at"]).sort_values("at", kind="stable", ignore_index=True)


def per_key(events: list[dict[str, Any]], field: str, key: str, value: str) -> pd.DataFrame:
    """A dict field of every event (`steps`: step -> seconds, `lag`: topic -> records behind) as a long
    frame [at, `key`, `value`]; an event without the field (or with something else in it) adds no row."""
    rows = [
        {"at": event.get("at"), key: str(name), value: amount}
        for event in events
        if isinstance(event.get(field), Mapping)
        for name, amount in event[field].items()
    ]
    frame = pd.DataFrame(rows, columns=["at", key, value], dtype=object)
    frame = numbers(frame, [value]).assign(at=times(frame["at"]))
    return frame.dropna(subset=["at", value]).sort_values(["at", key], kind="stable", ignore_index=True)


def step_seconds(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Each batch's duration split by step: [at, step, seconds]."""
    return per_key(events, "steps", "step", "seconds")


def lag_per_topic(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Records behind per topic after each batch that recorded its lag: [at, topic, behind]."""
    return per_key(events, "lag", "topic", "behind")


def bucket_seconds(window_seconds: int) -> int:
    """The bucket width for counting over `window_seconds`: at most MAX_BUCKETS buckets, in round units."""
    for width in BUCKET_CHOICES:
        if window_seconds / width <= MAX_BUCKETS:
            return width
    return BUCKET_CHOICES[-1]


def counts_per_bucket(documents: list[dict[str, Any]], width_seconds: int) -> pd.DataFrame:
    """Quarantine documents ({_kafka_ts, reason}) counted per `width_seconds` bucket of broker time and per
    reason: [bucket (start, UTC), reason, records]."""
    frame = pd.DataFrame(documents, columns=["_kafka_ts", "reason"], dtype=object)
    frame = frame.assign(bucket=times(frame["_kafka_ts"]), reason=frame["reason"].fillna("(no reason)").astype(str))
    frame = frame.dropna(subset=["bucket"])
    frame["bucket"] = frame["bucket"].dt.floor(f"{width_seconds}s")
    counted = frame.groupby(["bucket", "reason"], as_index=False).size().rename(columns={"size": "records"})
    return counted.sort_values(["bucket", "reason"], ignore_index=True)
