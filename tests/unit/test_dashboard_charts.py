"""The dashboard's chart builders (dashboard/charts.py), drawn through Streamlit as a page draws them (AppTest),
and read back as the browser gets them: the Vega-Lite spec and the data sent as Arrow."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import altair as alt
import pandas as pd
from streamlit.testing.v1 import AppTest

from dashboard import charts
from dashboard.formatting import dollar_ticks
from tests.dashboard_pages import Chart, all_charts, tick_labels


def drawn(*built: object) -> list[Chart]:
    """`built` charts shown by a page of their own under AppTest, as the browser would receive them."""

    def page(built: tuple) -> None:
        from dashboard.common import show

        for chart in built:
            show(chart)

    app = AppTest.from_function(page, args=(built,)).run()
    assert not app.exception
    return all_charts(app)


def test_times_are_sent_as_utc_and_drawn_on_a_utc_scale() -> None:
    """Streamlit's frontend reads a naive timestamp as the browser's local time: the naive UTC times of the
    frames go out marked UTC, with the same wall-clock time."""
    frame = pd.DataFrame({"at": [datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 13)], "rows": [10.0, 20.0]})
    [chart] = drawn(charts.time_lines(frame, x="at", y="rows", title="Rows", labels={"at": "Finished (UTC)"}))
    assert chart.values("x") == [datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 13, tzinfo=UTC)]
    assert chart.encoding("x")["scale"] == {"type": "utc"} and chart.encoding("x")["title"] == "Finished (UTC)"
    assert chart.encoding("x")["axis"]["format"]["minutes"] == "%H:%M", "the hour with the minutes"
    [when, _] = chart.encoding("tooltip")
    assert (when["timeUnit"], when["format"]) == ("utcyearmonthdatehoursminutesseconds", "%Y-%m-%d %H:%M:%S")


def test_a_column_of_nothing_but_nulls_is_drawn_as_gaps() -> None:
    """An optional field absent from every document: an object column of None, or NaN after series.numbers."""
    at = [datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 13)]
    frame = pd.DataFrame({"at": at, "none": [None, None], "nan": [math.nan, math.nan], "name": ["a", None]})
    lines, bars, ranked = drawn(
        charts.time_lines(frame, x="at", y="none", colour_by="name", title="Lines", labels={}),
        charts.time_bars(frame, x="at", y="nan", title="Bars", labels={}),
        charts.ranked_bars(frame, x="nan", y="name", text="none", title="Ranked", labels={}),
    )
    assert lines.values("y") == [None, None] and lines.values("color") == ["a", None]
    assert all(math.isnan(value) for value in bars.values("y"))
    assert ranked.data.columns.tolist() == ["name", "nan", "none"], "only what the chart draws is sent"


def test_an_empty_frame_draws_an_empty_chart() -> None:
    frame = pd.DataFrame({"label": pd.Series([], dtype=object), "product_count": pd.Series([], dtype=float)})
    [chart] = drawn(charts.category_bars(frame, x="label", y="product_count", title="Prices", labels={}))
    assert chart.data.empty and chart.title == "Prices"


def test_category_bars_keep_the_frames_order_and_their_titles_and_formats() -> None:
    frame = pd.DataFrame({"category_name": ["b", "a", "c"], "share": [0.5, 0.3, 0.2], "product_count": [5, 3, 2]})
    [chart] = drawn(
        charts.category_bars(
            frame,
            x="category_name",
            y="share",
            title="Shares",
            labels={"category_name": "Category", "share": "Share"},
            formats={"share": ".0%"},
            hover=["product_count"],
        )
    )
    assert chart.values("x") == ["b", "a", "c"] and chart.encoding("x")["sort"] is None
    assert (chart.encoding("x")["title"], chart.encoding("y")["title"]) == ("Category", "Share")
    assert chart.encoding("y")["axis"] == {"format": ".0%"}
    assert [tip["title"] for tip in chart.encoding("tooltip")] == ["Category", "Share", "product_count"]


def test_ranked_bars_put_the_largest_on_top_with_their_count_beside_them() -> None:
    frame = pd.DataFrame({"name": [f"c{i}" for i in range(30)], "share": [i / 100 for i in range(30)], "n": range(30)})
    [chart] = drawn(charts.ranked_bars(frame, x="share", y="name", text="n", title="Top", labels={"name": ""}))
    assert chart.encoding("y")["sort"] == "-x" and chart.encoding("y")["title"] is None
    assert [unit["mark"]["type"] for unit in chart.units] == ["bar", "text"]
    assert chart.values("text") == list(range(30))
    assert chart.spec["height"] == 30 * charts.ROW_PIXELS + 80, "a line of text per bar"


def test_grouped_bars_put_the_groups_side_by_side_in_colour() -> None:
    frame = pd.DataFrame({"category": ["a", "b", "a", "b"], "measure": ["Average", "Average", "Median", "Median"]})
    frame["price"] = [10.0, 20.0, 8.0, 15.0]
    [chart] = drawn(charts.category_bars(frame, "category", "price", "Prices", {"measure": ""}, group="measure"))
    assert chart.encoding("xOffset")["field"] == chart.encoding("color")["field"] == "measure"
    assert {name: part.values("y") for name, part in chart.series().items()} == {
        "Average": [10.0, 20.0],
        "Median": [8.0, 15.0],
    }


def test_a_step_line_holds_each_price_until_the_next() -> None:
    frame = pd.DataFrame({"at": [datetime(2024, 5, 1), datetime(2024, 5, 2)], "usd": [10.0, 12.0]})
    [chart] = drawn(charts.time_lines(frame, x="at", y="usd", interpolate="step-after", title="Price", labels={}))
    assert chart.mark == {"type": "line", "interpolate": "step-after", "point": True}


def test_an_axis_labels_its_ticks_with_the_words_python_gave_them() -> None:
    ticks, labels = dollar_ticks(0.6, 1500)
    frame = pd.DataFrame({"price": [0.6, 1500.0], "stars": [3.0, 4.0]})
    chart = (
        alt.Chart(frame, title="Log")
        .mark_circle()
        .encode(x=alt.X("price:Q", axis=alt.Axis(values=ticks, labelExpr=charts.label_lookup(ticks, labels))))
    )
    [shown] = drawn(chart)
    assert tick_labels(shown) == dict(zip(ticks, labels, strict=True))
    assert list(tick_labels(shown).values()) == ["$0.10", "$1", "$10", "$100", "$1,000", "$10,000"]
