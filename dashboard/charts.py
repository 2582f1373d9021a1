"""The dashboard's charts: Vega-Lite specs built with Altair, drawn by `common.show` (st.altair_chart).

Vega-Lite, not Plotly: a new browser tab loads Streamlit's Vega-Lite renderer in a fraction of the time it
takes to load and compile its 4.8 MB Plotly bundle, which kept the chart pages above issue #12's 3 s.

Every builder takes a frame and the names of the columns it draws, `labels` (column -> the title its axis,
legend and tooltip show) and `formats` (column -> a d3 number format, e.g. USD or PERCENT), and draws only
those columns, so nothing else of the frame is sent to the browser. Nulls and NaN are gaps, never errors.

Times: the frames hold naive UTC datetimes, and Streamlit's frontend reads a naive Arrow timestamp as the
browser's local time. So they are sent as UTC (`in_utc`) and drawn on a utc scale, with utc time units in
the tooltips: the axes and tooltips show UTC in every time zone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

HEIGHT = 350
# Category names written upright under vertical bars (so none hides another) take up to CATEGORY_LABEL_PIXELS.
CATEGORY_BARS_HEIGHT = 500
CATEGORY_LABEL_PIXELS = 180
# Height per bar of a horizontal bar chart (its label is one line of text), and the width of its labels.
ROW_PIXELS = 30
LABEL_PIXELS = 360
# d3 number formats, for the tooltips and the ticks. Without a precision, Vega picks one from the tick step:
# "," alone would write 700 as "7e+2".
USD = "$,.2f"
PERCENT = ".1~%"
COUNT = ",~f"
NUMBER = ",.2~f"
# The ticks of an axis in dollars are round: no cents.
TICK_FORMATS = {USD: "$,~f"}
UTC_MOMENT = "utcyearmonthdatehoursminutesseconds"
MOMENT_FORMAT = "%Y-%m-%d %H:%M:%S"
# A time axis' tick labels by the ticks' unit (Vega's multi-format): the hour with every minute ("10:15", not
# Vega's ":15"), the date from a day up.
TIME_TICKS = {
    "year": "%Y",
    "quarter": "%b %Y",
    "month": "%b %Y",
    "week": "%b %d",
    "date": "%b %d",
    "hours": "%H:%M",
    "minutes": "%H:%M",
    "seconds": "%H:%M:%S",
    "milliseconds": "%H:%M:%S.%L",
}
CATEGORY_AXIS = alt.Axis(labelAngle=-90, labelLimit=CATEGORY_LABEL_PIXELS)
UP_DOWN = alt.Scale(domain=["up", "down"], range=["#2ca02c", "#d62728"])

Labels = Mapping[str, str]
Formats = Mapping[str, str]


def in_utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """`columns` (naive UTC datetimes) marked as UTC, so the browser does not read them as local time."""
    return frame.assign(**{name: pd.to_datetime(frame[name], utc=True) for name in columns})


def utc_axis(column: str, labels: Labels) -> alt.X:
    return alt.X(
        f"{column}:T", title=labels.get(column, column), scale=alt.Scale(type="utc"), axis=alt.Axis(format=TIME_TICKS)
    )


def tooltip(frame: pd.DataFrame, column: str, labels: Labels, formats: Formats) -> alt.Tooltip:
    """A tooltip line for `column`, typed by its values: a time in full (UTC), a number, or text."""
    title = labels.get(column) or column
    if pd.api.types.is_datetime64_any_dtype(frame[column]):
        return alt.Tooltip(f"{column}:T", title=title, timeUnit=UTC_MOMENT, format=MOMENT_FORMAT)
    if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column]):
        return alt.Tooltip(f"{column}:Q", title=title, format=formats.get(column, NUMBER))
    return alt.Tooltip(f"{column}:N", title=title)


def tooltips(frame: pd.DataFrame, columns: Sequence[str], labels: Labels, formats: Formats) -> list[alt.Tooltip]:
    return [tooltip(frame, column, labels, formats) for column in dict.fromkeys(columns)]


def label_lookup(values: Sequence[float], labels: Sequence[str]) -> str:
    """A Vega `labelExpr` giving each of an axis' tick `values` its label (e.g. dollar_ticks' "$5", "$1,000"),
    so the words are Python's, not a d3 format's."""
    expression = "''"
    for value, label in reversed(list(zip(values, labels, strict=True))):
        expression = f"datum.value === {float(value)!r} ? {json.dumps(label)} : {expression}"
    return expression


def colour(column: str | None, labels: Labels, scale: alt.Scale | None = None) -> dict[str, alt.Color]:
    """The colour encoding of `column` (none when None), its legend titled by `labels` (untitled for "")."""
    if column is None:
        return {}
    title = labels.get(column, column) or None
    return {"color": alt.Color(f"{column}:N", title=title, scale=scale or alt.Undefined, sort=None)}


def quantity(column: str, labels: Labels, formats: Formats, axis: str = "y") -> alt.X | alt.Y:
    """A number axis titled by `labels`, its ticks in the column's format."""
    channel = alt.Y if axis == "y" else alt.X
    return channel(f"{column}:Q", title=labels.get(column, column), axis=number_axis(formats.get(column)))


def number_axis(number_format: str | None) -> alt.Axis:
    return alt.Axis() if number_format is None else alt.Axis(format=TICK_FORMATS.get(number_format, number_format))


def category_bars(
    frame: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    labels: Labels,
    formats: Formats | None = None,
    hover: Sequence[str] = (),
    group: str | None = None,
) -> alt.Chart:
    """Vertical bars, one per row, left to right in the frame's order; the names upright under them. With
    `group` (a long frame: one row per x and group), each x's bars side by side, coloured by group."""
    formats = formats or {}
    columns = list(dict.fromkeys([x, *([group] if group else []), y, *hover]))
    shown = frame[columns]
    side_by_side = {"xOffset": alt.XOffset(f"{group}:N", sort=None)} if group else {}
    return (
        alt.Chart(shown, title=title, height=CATEGORY_BARS_HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=labels.get(x, x), sort=None, axis=CATEGORY_AXIS),
            y=quantity(y, labels, formats),
            tooltip=tooltips(shown, columns, labels, formats),
            **side_by_side,
            **colour(group, labels),
        )
    )


def ranked_bars(
    frame: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    labels: Labels,
    formats: Formats | None = None,
    colour_by: str | None = None,
    colour_scale: alt.Scale | None = None,
    hover: Sequence[str] = (),
    text: str | None = None,
) -> alt.Chart | alt.LayerChart:
    """Horizontal bars of `x` per `y`, the largest on top; `text` (a column) written beside each bar."""
    formats = formats or {}
    columns = [y, x, *([colour_by] if colour_by else []), *hover, *([text] if text else [])]
    shown = frame[list(dict.fromkeys(columns))]
    bars = (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=quantity(x, labels, formats, axis="x"),
            y=alt.Y(f"{y}:N", title=labels.get(y, y) or None, sort="-x", axis=alt.Axis(labelLimit=LABEL_PIXELS)),
            tooltip=tooltips(shown, columns, labels, formats),
            **colour(colour_by, labels, colour_scale),
        )
    )
    if text is not None:
        written = bars.mark_text(align="left", baseline="middle", dx=3).encode(text=alt.Text(f"{text}:Q", format=COUNT))
        bars = alt.layer(bars, written)
    return bars.properties(title=title, height=max(HEIGHT, ROW_PIXELS * len(shown) + 80))


def time_lines(
    frame: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    labels: Labels,
    formats: Formats | None = None,
    colour_by: str | None = None,
    interpolate: str = "linear",
) -> alt.Chart:
    """A line with a point per row of `y` over time `x` (naive UTC), one line per `colour_by` value; a null
    `y` breaks the line. `interpolate="step-after"` holds each value until the next."""
    return over_time(frame, x, y, title, labels, formats, colour_by).mark_line(point=True, interpolate=interpolate)


def time_bars(
    frame: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    labels: Labels,
    formats: Formats | None = None,
    colour_by: str | None = None,
) -> alt.Chart:
    """Bars of `y` at each time `x` (naive UTC), stacked by `colour_by` when given."""
    return over_time(frame, x, y, title, labels, formats, colour_by).mark_bar()


def over_time(
    frame: pd.DataFrame, x: str, y: str, title: str, labels: Labels, formats: Formats | None, colour_by: str | None
) -> alt.Chart:
    """The encodings of `y` over time `x` (naive UTC, sent as UTC), coloured by `colour_by`; no mark yet."""
    formats = formats or {}
    columns = [x, *([colour_by] if colour_by else []), y]
    shown = in_utc(frame[list(dict.fromkeys(columns))], x)
    return alt.Chart(shown, title=title, height=HEIGHT).encode(
        x=utc_axis(x, labels),
        y=quantity(y, labels, formats),
        tooltip=tooltips(shown, columns, labels, formats),
        **colour(colour_by, labels),
    )
