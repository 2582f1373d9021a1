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


def history(points: list[tuple[int, str, float, float, float | None]]) -> pd.DataFrame:
    """A category history of (category_id, category_name, minutes after T0, avg_price, median_price)."""
    return series.category_history_frame(
        [
            {"category_id": c, "category_name": name, "at": at(m), "avg_price": avg, "median_price": median}
            for c, name, m, avg, median in points
        ]
    )


def test_category_lines_follow_the_id_so_a_renamed_or_a_shared_name_does_not_split_or_merge_them() -> None:
    points = [(1, "Bags", 0, 5.0, 5.0), (1, "Luggage", 10, 6.0, 6.0), (2, "Luggage", 5, 9.0, 9.0)]
    labelled = series.labelled(history(points), {1: "Luggage (id 1)", 2: "Luggage (id 2)"})
    assert labelled.groupby("category_name")["avg_price"].apply(list).to_dict() == {
        "Luggage (id 1)": [5.0, 6.0],
        "Luggage (id 2)": [9.0],
    }
    assert series.labelled(history(points), {})["category_name"].tolist() == ["Bags", "Luggage", "Luggage"]


def test_a_resampled_period_is_one_whole_point_not_fields_of_two() -> None:
    hourly = series.resample(history([(1, "Bags", 0, 5.0, 4.0), (1, "Bags", 30, 6.0, None)]), "1h")
    assert hourly[["avg_price", "median_price"]].fillna(-1).to_dict("list") == {
        "avg_price": [6.0],
        "median_price": [-1],
    }, "the last point's median is missing: not the earlier point's 4.0"


def test_a_week_is_an_iso_week_starting_on_monday() -> None:
    # T0 is Wednesday 2024-05-01; 2024-05-05 is a Sunday, 2024-05-06 a Monday.
    points = [(1, "Bags", 0, 1.0, 1.0), (1, "Bags", 4 * 1440 + 600, 2.0, 2.0), (1, "Bags", 5 * 1440, 3.0, 3.0)]
    weekly = series.resample(history(points), series.RESOLUTIONS["week"])
    assert weekly["at"].tolist() == [pd.Timestamp(2024, 4, 29), pd.Timestamp(2024, 5, 6)]
    assert weekly["avg_price"].tolist() == [2.0, 3.0]


def test_a_category_at_the_point_limit_was_cut() -> None:
    two = history([(1, "Bags", 0, 1.0, 1.0), (1, "Bags", 1, 1.0, 1.0), (2, "Toys", 0, 1.0, 1.0)])
    assert series.reached_limit(two, 2) and not series.reached_limit(two, 3)
    assert not series.reached_limit(series.category_history_frame([]), 1)


def test_a_number_is_not_a_time_and_infinity_is_no_amount() -> None:
    assert series.times(pd.Series([T0, 1_714_564_800, "2024-05-01", None], dtype=object)).isna().tolist() == [
        False,
        True,
        True,
        True,
    ]
    events = [{"at": at(0), "steps": {"read": float("inf"), "mongo": 1.0}}, {"at": 5, "steps": {"read": 1.0}}]
    assert series.step_seconds(events).to_dict("list") == {
        "at": [pd.Timestamp(T0)],
        "step": ["mongo"],
        "seconds": [1.0],
    }


def test_price_history_sorts_by_arrival_then_version_even_when_versions_mix_text_and_numbers() -> None:
    documents = [
        {"arrived_at": at(1), "price": 3.0, "_v": 7},
        {"arrived_at": at(1), "price": 2.0, "_v": "0000000000001.5"},
        {"arrived_at": at(0), "price": 1.0, "_v": "0000000000009.0"},
    ]
    assert series.price_history_frame(documents)["price"].tolist() == [1.0, 2.0, 3.0]


def mover(direction: str, rank: int, key: str, name: str, change_pct: float | None) -> dict[str, object]:
    return {"direction": direction, "rank": rank, "key": key, "name": name, "change_pct": change_pct, "until": T0}


def test_mover_bars_have_one_row_per_key_short_labels_and_leave_out_a_start_price_of_zero() -> None:
    moved = series.movers_frame(
        [
            mover("up", 1, "B0", "Kettle", None),
            mover("up", 2, "B1", "Kettle", 20.0),
            mover("up", 3, "B2", "Kettle", 10.0),
            mover("down", 1, "B3", "x" * 4000, -5.0),
        ]
    )
    bars = series.mover_bars(moved, "product")
    assert bars["label"].tolist()[:2] == ["Kettle · B1", "Kettle · B2"]
    assert bars["label"].str.len().max() == series.LABEL_CHARACTERS + len(" · B3")
    assert bars["label"].iloc[-1].startswith("x" * (series.LABEL_CHARACTERS - 1) + "… · ")
    assert "B0" not in bars["key"].tolist() and "B0" in moved["key"].tolist(), "the table keeps it"
    categories = series.mover_bars(series.movers_frame([mover("down", 1, "3", "Toys", -1.0)]), "category")
    assert categories["label"].tolist() == ["Toys (id 3)"]
    assert series.window_end(moved) == T0 and series.window_end(series.movers_frame([])) is None


def test_backfill_batches_are_left_out_unless_asked_for() -> None:
    events = [{"source": "stream", "batch_id": 1}, {"source": "backfill", "batch_id": 2}, {"batch_id": 3}]
    assert [e["batch_id"] for e in series.from_source(events)] == [1, 3]
    assert len(series.from_source(events, include_backfill=True)) == 3


def test_the_batches_caption_says_when_the_limit_cut_the_window() -> None:
    assert series.batches_caption(12, 12, "1 h", 5000, T0) == "12 micro-batch(es) in the last 1 h."
    assert series.batches_caption(4990, 5000, "24 h", 5000, T0) == (
        "4,990 micro-batch(es) of the newest 5,000 batches since 2024-05-01 12:00:00 UTC: the last 24 h holds "
        "more, the older are not drawn."
    )


@pytest.mark.parametrize(
    ("state", "has_status", "quiet_minutes", "label"),
    [
        ("running", True, 1, "Running"),
        ("running", True, 42, "Running? no progress for 42 min"),
        (None, True, 180, "Running? no progress for 3.0 h"),
        ("running", False, None, "Running"),
        ("stopped", True, 42, "Stopped"),
        ("restarting", True, 42, "Restarting"),
        (None, False, None, "Not started"),
    ],
)
def test_a_job_said_to_run_without_progress_for_ten_minutes_may_be_stopped(
    state: str | None, has_status: bool, quiet_minutes: float | None, label: str
) -> None:
    now = at(500)
    progress = None if quiet_minutes is None else now - pd.Timedelta(minutes=quiet_minutes).to_pytimedelta()
    assert series.job_label(state, has_status, progress, now) == label


def test_last_progress_is_the_newest_of_status_and_event_times() -> None:
    assert series.last_progress({"updated_at": at(1)}, {"at": at(2)}) == at(2)
    assert series.last_progress({"updated_at": "not a time"}, {}) is None
