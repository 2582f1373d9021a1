"""Pure shaping of the serving layer's time series into the frames the Trends and Pipeline pages draw.

Times arrive from pymongo as naive datetimes in UTC; every frame keeps them so (the axes say UTC). Documents
may lack optional fields or hold values of the wrong type (an older job, another writer): such a value is NaN,
never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from lakehouse import catalog

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
# A gold_movers document without what the page chose it by (kind, window).
MOVER_COLUMNS = [name for name in catalog.GOLD_MOVERS.fields if name not in ("kind", "window", "window_seconds")]
EVENT_COLUMNS = [
    "at",
    "source",
    "batch_id",
    "input_rows",
    "rows_per_second",
    "seconds",
    "quarantined",
    "freshness_seconds",
]
# Bucket widths (seconds) for counting over a window: the smallest giving at most MAX_BUCKETS bars.
BUCKET_CHOICES = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 86_400)
MAX_BUCKETS = 40
# Coarser resolutions of the category history, label -> pandas period alias (None: as stored); a week is an
# ISO week, Monday to Sunday ("W-SUN": the weeks ending on Sunday).
RESOLUTIONS: dict[str, str | None] = {"as stored": None, "hour": "1h", "day": "1D", "week": "W-SUN"}
# How far back the category trends read from their newest point, label -> seconds (None: all of it).
HISTORY_RANGES: dict[str, int | None] = {"1 day": 86_400, "7 days": 604_800, "30 days": 2_592_000, "all time": None}
DEFAULT_HISTORY_RANGE = "7 days"
# A mover's name is cut to this many characters in a chart label (a title may hold 4,000).
LABEL_CHARACTERS = 60
# The batches the Pipeline page draws by default: the streaming job's, not a backfill's.
STREAM_SOURCE = "stream"
# A job said to be running that has made no progress for longer than this may well be stopped.
STALE_PROGRESS_SECONDS = 600


def numbers(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """`columns` as numbers, whatever was stored: a field null in every document arrives as an object column
    of None, on which nlargest, means and log axes fail. Missing, non-numeric and non-finite values (inf, as
    another writer may store) become NaN."""
    return frame.assign(**{name: finite(pd.to_numeric(frame[name], errors="coerce")) for name in columns})


def finite(values: pd.Series) -> pd.Series:
    return values.replace([np.inf, -np.inf], np.nan)


def times(values: pd.Series) -> pd.Series:
    """`values` as naive UTC datetimes; NaT for anything that is not a datetime (a number would otherwise be
    read as nanoseconds since 1970, text as whatever it resembles)."""
    dated = values.where(values.map(lambda value: isinstance(value, datetime | np.datetime64)))
    return pd.to_datetime(dated, errors="coerce", utc=True).dt.tz_localize(None)


def price_history_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """price_history documents, oldest first (by arrival, then version), as [arrived_at, price, listPrice
    (USD, NaN when absent), title, category_id, _v]; a version without an arrival time cannot be placed and is
    left out. Versions are compared as text: another writer's integer `_v` must not make the sort raise."""
    frame = pd.DataFrame(documents, columns=PRICE_HISTORY_COLUMNS, dtype=object)
    frame = numbers(frame, ["price", "listPrice"]).assign(arrived_at=times(frame["arrived_at"]))
    frame = frame.dropna(subset=["arrived_at"])
    return frame.sort_values(["arrived_at", "_v"], key=_as_text_if_version, kind="stable", ignore_index=True)


def _as_text_if_version(column: pd.Series) -> pd.Series:
    return column.astype(str) if column.name == "_v" else column


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


def labelled(history: pd.DataFrame, labels: Mapping[int, str]) -> pd.DataFrame:
    """The category history with each point's category_name replaced by the label of its category_id (the
    picker's: one per category, told apart when names are shared), so that a line follows a category, not a
    name: a renamed category stays one line, two categories of one name stay two. An id without a label
    keeps its stored name."""
    shown = history["category_id"].map(lambda category_id: _label(labels, category_id))
    return history.assign(category_name=shown.fillna(history["category_name"]).astype(str))


def _label(labels: Mapping[int, str], category_id: float) -> str | None:
    return labels.get(int(category_id)) if pd.notna(category_id) else None


def resample(history: pd.DataFrame, rule: str | None) -> pd.DataFrame:
    """The category history at a coarser resolution `rule` (a pandas period alias such as "1h", "1D" or
    "W-SUN"; None keeps it as stored): per category and period, the last point of the period as a whole row
    (the state at its end, never fields of two points), placed at the period's start."""
    if rule is None or history.empty:
        return history
    periods = history.assign(at=history["at"].dt.to_period(rule).dt.start_time)
    last = periods.groupby(["category_id", "at"], sort=False).tail(1)
    return last.sort_values(["category_id", "at"], kind="stable", ignore_index=True)[history.columns]


def reached_limit(history: pd.DataFrame, limit: int) -> bool:
    """Whether some category of the history has `limit` points: its oldest points of the range were cut."""
    return bool(len(history)) and int(history.groupby("category_id").size().max()) >= limit


def movers_frame(documents: list[dict[str, Any]]) -> pd.DataFrame:
    """gold_movers documents of one kind and window as [direction, rank, key, name, category_name,
    start_price, end_price, change (USD), change_pct (percent; NaN for a start price of 0), since, until
    (naive UTC)], ups then downs, by rank."""
    frame = pd.DataFrame(documents, columns=MOVER_COLUMNS, dtype=object)
    frame = numbers(frame, ["rank", "start_price", "end_price", "change", "change_pct"])
    frame = frame.assign(since=times(frame["since"]), until=times(frame["until"]))
    frame["name"] = frame["name"].where(frame["name"].notna(), frame["key"]).astype(str)
    order = frame["direction"].map({"up": 0, "down": 1})
    return frame.assign(_order=order).sort_values(["_order", "rank"]).drop(columns="_order").reset_index(drop=True)


def window_end(moved: pd.DataFrame) -> datetime | None:
    """Where the movers' window ends (naive UTC): the newest arrival the job had seen when it ranked them
    (`until`), not now; None when no mover says."""
    until = moved["until"].max() if len(moved) else pd.NaT
    return None if pd.isna(until) else until.to_pydatetime()


def shortened(text: str, characters: int = LABEL_CHARACTERS) -> str:
    """`text` cut to at most `characters` characters, an ellipsis marking a cut."""
    return text if len(text) <= characters else text[: characters - 1] + "…"


def mover_bars(moved: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The movers a bar chart can draw (a start price of 0 has no change_pct: such a row is for the table
    only), with `label`: the shortened name and the key (ASIN or category id), one bar row per mover even
    when names are shared."""
    bars = moved.dropna(subset=["change_pct"])
    key = bars["key"].astype(str)
    names = bars["name"].astype(str).map(shortened)
    label = names + " · " + key if kind == "product" else names + " (id " + key + ")"
    return bars.assign(label=label)


def from_source(events: list[dict[str, Any]], include_backfill: bool = False) -> list[dict[str, Any]]:
    """The streaming job's events (source "stream"; an event without a source predates backfills writing
    events), and with `include_backfill` every event."""
    return [event for event in events if include_backfill or event.get("source", STREAM_SOURCE) == STREAM_SOURCE]


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """pipeline_events documents as [at (finish, UTC), source, batch_id, input_rows, rows_per_second, seconds,
    quarantined, freshness_seconds], in time order."""
    frame = pd.DataFrame(events, columns=EVENT_COLUMNS, dtype=object)
    frame = numbers(frame, EVENT_COLUMNS[2:]).assign(at=times(frame["at"]))
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


# --- the Pipeline page's words ------------------------------------------------------------------------------


def last_progress(status: Mapping[str, Any], last_event: Mapping[str, Any]) -> datetime | None:
    """The newest of the last batch's status time and the event log's newest finish (naive UTC), None when
    neither is a time."""
    moments = [t for t in (status.get("updated_at"), last_event.get("at")) if isinstance(t, datetime)]
    return max((t.replace(tzinfo=None) for t in moments), default=None)


def age(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable: "42 s", "12 min", "3.5 h", "2.0 days"."""
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def job_label(state: object, has_status: bool, progress: datetime | None, now: datetime) -> str:
    """The Pipeline page's word for the job: the supervisor's state (running, restarting, stopped), "Running"
    when only a batch status says so, "Not started" before either. A job said to run whose last progress
    (`progress`, naive UTC, against `now`) is older than STALE_PROGRESS_SECONDS may have died without the
    supervisor saying so: "Running? no progress for N min"."""
    label = {"running": "Running", "restarting": "Restarting", "stopped": "Stopped"}.get(str(state))
    if label is None:
        label = "Running" if has_status else "Not started"
    if label != "Running" or progress is None:
        return label
    quiet = (now - progress).total_seconds()
    return f"Running? no progress for {age(quiet)}" if quiet > STALE_PROGRESS_SECONDS else label


def batches_caption(shown: int, read: int, label: str, limit: int, oldest: datetime | None) -> str:
    """How many micro-batches the charts draw (`shown` of the `read` ones), and, when the read stopped at
    `limit`, that they are only the newest of the window (since `oldest`, naive UTC)."""
    counted = f"{shown:,} micro-batch(es)"
    if read < limit:
        return f"{counted} in the last {label}."
    since = f" since {oldest:%Y-%m-%d %H:%M:%S} UTC" if oldest is not None else ""
    return f"{counted} of the newest {limit:,} batches{since}: the last {label} holds more, the older are not drawn."
