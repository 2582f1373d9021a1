"""The Trends and Pipeline pages' pure shaping (dashboard/series.py), the log axis's dollar ticks, and the
data browser's collections (the catalog's; tests/unit/test_catalog.py checks no reader spells a name)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from dashboard import series
from dashboard.formatting import dollar_ticks
from dashboard.queries import BROWSABLE
from lakehouse import catalog

T0 = datetime(2024, 5, 1, 12, 0)


def at(minutes: float) -> datetime:
    return T0 + pd.Timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("low", "high", "labels"),
    [
        (8.0, 30.0, ["$5", "$10", "$20", "$50"]),
        (3.5, 3.5, ["$2", "$5"]),
        (1.0, 1.0, ["$1", "$10"]),
        (0.4, 12.0, ["$0.20", "$0.50", "$1", "$2", "$5", "$10", "$20"]),
        (8.0, 10_000.0, ["$1", "$10", "$100", "$1,000", "$10,000"]),
    ],
)
def test_a_log_price_axis_gets_round_dollar_ticks(low: float, high: float, labels: list[str]) -> None:
    values, shown = dollar_ticks(low, high)
    assert shown == labels
    assert values[0] <= low and values[-1] >= high
    assert values == sorted(values)


def test_price_history_is_in_version_order_with_nan_for_a_missing_list_price() -> None:
    documents = [
        {"asin": "B1", "arrived_at": at(5), "price": 12.0, "listPrice": None, "_v": "2"},
        {"asin": "B1", "arrived_at": at(0), "price": "10", "_v": "1"},
        {"asin": "B1", "arrived_at": None, "price": 11.0, "_v": "3"},
    ]
    frame = series.price_history_frame(documents)
    assert frame["_v"].tolist() == ["1", "2"], "a version without an arrival time cannot be placed"
    assert frame["price"].tolist() == [10.0, 12.0]
    assert frame["listPrice"].isna().all()
    assert series.price_history_frame([]).empty


def test_category_history_resampled_keeps_the_last_point_of_each_period() -> None:
    documents = [
        {"category_id": 1, "category_name": "Bags", "at": at(m), "product_count": n, "avg_price": p}
        for m, n, p in [(0, 10, 5.0), (30, 11, 6.0), (70, 12, 7.0)]
    ] + [{"category_id": 2, "category_name": None, "at": at(10), "product_count": 3, "avg_price": 1.0}]
    history = series.category_history_frame(documents)
    assert history["category_name"].tolist() == ["Bags", "Bags", "Bags", "category 2"]
    assert series.resample(history, None) is history
    hourly = series.resample(history, "1h")
    assert hourly[["category_id", "at", "product_count", "avg_price"]].to_dict("list") == {
        "category_id": [1, 1, 2],
        "at": [pd.Timestamp(T0), pd.Timestamp(at(60)), pd.Timestamp(T0)],
        "product_count": [11, 12, 3],
        "avg_price": [6.0, 7.0, 1.0],
    }
    assert list(hourly.columns) == series.CATEGORY_HISTORY_COLUMNS
    assert series.resample(series.category_history_frame([]), "1D").empty


def test_movers_are_ups_then_downs_by_rank_and_a_nameless_one_is_called_by_its_key() -> None:
    documents = [
        {"direction": "down", "rank": 1, "key": "B3", "name": "Cup", "change_pct": -50.0},
        {"direction": "up", "rank": 2, "key": "B2", "name": None, "change_pct": 10.0},
        {"direction": "up", "rank": 1, "key": "B1", "name": "Bag", "change_pct": "25"},
    ]
    frame = series.movers_frame(documents)
    assert frame[["direction", "name", "change_pct"]].to_dict("list") == {
        "direction": ["up", "up", "down"],
        "name": ["Bag", "B2", "Cup"],
        "change_pct": [25.0, 10.0, -50.0],
    }
    assert series.movers_frame([]).empty


def test_events_without_lag_or_steps_add_no_points_to_those_series() -> None:
    events = [
        {"at": at(0), "rows_per_second": 5.0, "steps": {"read": 1.0, "mongo": 2.5}, "lag": {"ingest-product": 7}},
        {"at": at(1), "rows_per_second": None, "steps": None},
        {"at": at(2), "rows_per_second": 9, "lag": "not a dict", "quarantined": 2},
    ]
    assert series.events_frame(events)[["rows_per_second", "quarantined"]].fillna(-1).to_dict("list") == {
        "rows_per_second": [5.0, -1, 9.0],
        "quarantined": [-1, -1, 2.0],
    }
    assert series.step_seconds(events).to_dict("list") == {
        "at": [pd.Timestamp(T0)] * 2,
        "step": ["mongo", "read"],
        "seconds": [2.5, 1.0],
    }
    assert series.lag_per_topic(events)[["topic", "behind"]].to_dict("list") == {
        "topic": ["ingest-product"],
        "behind": [7.0],
    }
    assert series.lag_per_topic(events[1:]).empty and series.events_frame([]).empty


@pytest.mark.parametrize(("window", "width"), [(900, 30), (3600, 120), (21_600, 600), (86_400, 3600)])
def test_a_window_is_counted_in_at_most_forty_round_buckets(window: int, width: int) -> None:
    assert series.bucket_seconds(window) == width


def test_quarantined_records_are_counted_per_bucket_and_reason() -> None:
    documents = [
        {"_kafka_ts": at(0.5), "reason": "price: below 0"},
        {"_kafka_ts": at(1.5), "reason": "price: below 0"},
        {"_kafka_ts": at(2.5), "reason": "value: not one JSON object"},
        {"_kafka_ts": at(2.9), "reason": None},
    ]
    counted = series.counts_per_bucket(documents, 120)
    assert counted.to_dict("list") == {
        "bucket": [pd.Timestamp(T0), pd.Timestamp(at(2)), pd.Timestamp(at(2))],
        "reason": ["price: below 0", "(no reason)", "value: not one JSON object"],
        "records": [2, 1, 1],
    }
    assert series.counts_per_bucket([], 60).empty


def test_the_data_browser_offers_every_collection_of_the_catalog() -> None:
    assert tuple(collection.name for collection in catalog.ALL) == BROWSABLE
    assert {"price_history", "gold_category_history", "gold_movers", "pipeline_events"} <= set(BROWSABLE)
