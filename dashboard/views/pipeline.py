"""Pipeline: the streaming job's state and last progress (pipeline_status), its micro-batches over a chosen
window (pipeline_events, index at), and the quarantine (quarantine, index _kafka_ts): counts by reason over
time, the newest records, and how to replay them after a fix."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, queries, series
from dashboard.common import cached, chart_or_note, guarded
from dashboard.formatting import clock, count, decimal, identifier, markdown_text, moment, seconds_from_ms
from lakehouse import serving

WINDOWS = {"15 min": 900, "1 h": 3600, "6 h": 21_600, "24 h": 86_400}
REPLAY = """**Replaying quarantined records after a fix.**
- *A rule was wrong, and is fixed in the job* (`spark_jobs/`): `make backfill` stops the job and rebuilds
  silver, gold and MongoDB from bronze, where every record ever received is kept, judging each record again;
  then `make up` starts the job. Records the fixed rule accepts are served; the quarantine keeps the rest.
- *The producer sent bad records*: send the corrected records again through the API (`POST /products/batch`,
  or `python client/api_client.py --products fixed.csv`); the newer version of each key wins everywhere.
- `make check` then says whether every layer agrees."""


def pipeline_page() -> None:
    state = cached(queries.job_state)()
    job_state(state)
    if not state["status"]:
        st.info("The streaming job has not finished a micro-batch yet.")
    else:
        last_batch(state["status"])
    label = st.radio("Window", list(WINDOWS), index=1, horizontal=True, key="pipeline_window")
    include_backfill = st.toggle("Include backfill batches", value=False, key="pipeline_backfill")
    batches(WINDOWS[label], label, include_backfill)
    quarantine(WINDOWS[label], label)


def job_state(state: dict[str, Any]) -> None:
    """Running, restarting (with the last error in words) or stopped (with the command that resolves it),
    when the supervisor said so, and when the job last made progress; a job said to run without progress for
    series.STALE_PROGRESS_SECONDS is flagged as possibly stopped."""
    supervisor, status = state["supervisor"], state["status"]
    progress = series.last_progress(status, state["last_event"])
    now = datetime.now(UTC).replace(tzinfo=None)
    label = series.job_label(supervisor.get("state"), bool(status), progress, now)
    cols = st.columns(2)
    cols[0].metric("Job", label)
    said = supervisor.get("updated_at")
    if isinstance(said, datetime):
        state_word = markdown_text(supervisor.get("state"))
        cols[0].caption(f"Supervisor: {state_word} at {moment(said)} ({ago(said, now)})")
    cols[1].metric("Last progress", clock(progress))
    if progress is not None:
        cols[1].caption(ago(progress, now))
    if label.startswith("Running?"):
        st.warning(f"{label} (the job may be stopped: `make status`).")
    supervisor_notice(supervisor)


def ago(then: datetime, now: datetime) -> str:
    """How long before `now` (naive UTC) `then` was: "42 s ago", "12 min ago"."""
    return f"{series.age((now - then.replace(tzinfo=None)).total_seconds())} ago"


def supervisor_notice(supervisor: dict[str, Any]) -> None:
    """The job supervisor's state when the job does not run normally: stopped (an error with the command that
    resolves it), restarting (a warning), or running with a setting that skips lost records."""
    state = supervisor.get("state")
    if state == "stopped":
        kind = f" ({supervisor['kind']} failure)" if supervisor.get("kind") else ""
        st.error(f"The streaming job stopped{kind}: {markdown_text(supervisor.get('message', ''))}")
        if supervisor.get("command"):
            st.code(supervisor["command"], language="bash")
    elif state == "restarting":
        st.warning(
            f"The streaming job is restarting ({markdown_text(supervisor.get('kind'))}, "
            f"{count(supervisor.get('restarts'))} in a row): {markdown_text(supervisor.get('message', ''))}"
        )
    for warning in supervisor.get("warnings") or []:
        st.warning(markdown_text(warning))


def last_batch(status: dict[str, Any]) -> None:
    lag = status.get("lag") if isinstance(status.get("lag"), dict) else {}
    cols = st.columns(4 + len(lag))
    cols[0].metric("Last batch", f"#{identifier(status.get('batch_id'))}")
    cols[1].metric("Finished", clock(status.get("updated_at")))
    cols[2].metric("Rows/s", decimal(status.get("processed_rows_per_second"), 0))
    cols[3].metric("Batch duration", seconds_from_ms(status.get("batch_duration_ms")))
    for col, (topic, behind) in zip(cols[4:], sorted(lag.items()), strict=True):
        col.metric(f"Lag {topic}", count(behind))


def batches(window_seconds: int, label: str, include_backfill: bool) -> None:
    """The micro-batches of the window (the streaming job's; a backfill's too with `include_backfill`): rows/s,
    duration by step, lag per topic, freshness, quarantined."""
    read = cached(queries.pipeline_events)(window_seconds)
    events = series.from_source(read, include_backfill)
    if not events:
        st.info(
            f"No micro-batch finished in the last {label}: the job runs a batch when records arrive "
            "(`make run` sends the sample; `python client/api_client.py` sends more)."
        )
        return
    frame = series.events_frame(events)
    at = {"at": "Finished (UTC)"}
    left, right = st.columns(2)
    with left:
        time_chart(frame, "rows_per_second", f"Rows per second — last {label}", "Rows/s")
        chart_or_note(
            series.step_seconds(events),
            "No batch of this window recorded its steps.",
            draw=charts.time_bars,
            x="at",
            y="seconds",
            colour_by="step",
            title=f"Batch duration by step — last {label}",
            labels=at | {"seconds": "Seconds", "step": "Step"},
        )
        time_chart(
            frame, "quarantined", f"Quarantined per batch — last {label}", "Records", charts.time_bars, charts.COUNT
        )
    with right:
        chart_or_note(
            series.lag_per_topic(events),
            "No batch of this window recorded its lag.",
            draw=charts.time_lines,
            x="at",
            y="behind",
            colour_by="topic",
            title=f"Lag per topic — last {label}",
            labels=at | {"behind": "Records behind", "topic": "Topic"},
            formats={"behind": charts.COUNT},
        )
        time_chart(frame, "freshness_seconds", f"Freshness (age of the newest record) — last {label}", "Seconds")
    oldest = read[0].get("at") if isinstance(read[0].get("at"), datetime) else None
    st.caption(series.batches_caption(len(frame), len(read), label, serving.MAX_EVENTS, oldest))


def time_chart(
    frame: pd.DataFrame,
    column: str,
    title: str,
    unit: str,
    draw: Callable[..., alt.Chart] = charts.time_lines,
    number_format: str = charts.NUMBER,
) -> None:
    """One measure of the batches over their finish time; the batches without it are left out."""
    chart_or_note(
        frame.dropna(subset=[column]),
        f"No batch of this window recorded {column.replace('_', ' ')}.",
        draw=draw,
        x="at",
        y=column,
        title=title,
        labels={"at": "Finished (UTC)", column: unit},
        formats={column: number_format},
    )


def quarantine(window_seconds: int, label: str) -> None:
    st.subheader("Quarantine")
    counted = cached(queries.quarantine_by_reason_over_time)(window_seconds)
    chart_or_note(
        counted,
        f"No record was quarantined in the last {label}.",
        draw=charts.time_bars,
        x="bucket",
        y="records",
        title=f"Quarantined records by reason — last {label}",
        colour_by="reason",
        labels={"bucket": "Broker time (UTC)", "records": "Records", "reason": "Reason"},
        formats={"records": charts.COUNT},
    )
    left, right = st.columns([1, 2])
    left.caption("All quarantined records by reason")
    left.dataframe(cached(queries.quarantine_reasons)(), hide_index=True, width="stretch")
    right.caption("The newest quarantined records")
    right.dataframe(cached(queries.latest_quarantined)(), hide_index=True, width="stretch")
    st.markdown(REPLAY)


guarded(pipeline_page)()
