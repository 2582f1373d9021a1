"""Trends: how prices and categories move over time. A product's price history (price_history, by asin),
category trends (gold_category_history, by category and time) and the largest movers (gold_movers, by
window). Nothing is searched before the user types; the other reads are indexed or gold."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, queries, series
from dashboard.common import cached, chart_or_note, guarded, show
from dashboard.formatting import count, markdown_text, moment, money
from lakehouse import serving

MAX_TREND_CATEGORIES = 5
FILL_HISTORY = (
    "`make run` fills it: it sends the sample's price history (`dataset/sample/updates/day_*.csv`, made by "
    "`python dataset/generate.py --updates N --days D`, which re-prices products over simulated days) one day "
    "per trends bucket."
)
TREND_CHARTS = {
    "avg_price": "Average price (USD)",
    "median_price": "Median price (USD)",
    "product_count": "Products",
    "best_seller_count": "Best sellers",
}
TREND_FORMATS = {
    "avg_price": charts.USD,
    "median_price": charts.USD,
    "product_count": charts.COUNT,
    "best_seller_count": charts.COUNT,
}
MOVER_TABLE_COLUMNS = [
    "direction",
    "rank",
    "name",
    "key",
    "category_name",
    "start_price",
    "end_price",
    "change",
    "change_pct",
]
MOVER_LABELS = {
    "change_pct": "Price change (%)",
    "label": "",
    "direction": "Direction",
    "name": "Name",
    "key": "Key",
    "category_name": "Category",
    "start_price": "From",
    "end_price": "To",
    "change": "Change (USD)",
}
MOVER_FORMATS = {"change_pct": "+,.1f", "start_price": charts.USD, "end_price": charts.USD, "change": "+$,.2f"}
# kind -> (chart title's subject, what moved): a product has a price, a category an average price.
MOVER_KINDS = {"product": ("Products", "price"), "category": ("Categories", "average price")}


def trends_page() -> None:
    st.subheader("Price history of a product")
    price_history_section()
    st.subheader("Category trends")
    category_trends_section()
    st.subheader("Movers")
    movers_section()


# --- a product's price history ---------------------------------------------------------------------------


@st.fragment
def price_history_section() -> None:
    """A fragment: typing here reruns this section only, not the category trends and movers."""
    guarded(product_price_history)()


def product_price_history() -> None:
    text = st.text_input("ASIN or title words", placeholder="e.g. B014TMV5YE or softside luggage", key="history_lookup")
    if not text.strip():
        st.caption("Type an ASIN or words of a title to see every price the product had.")
        return
    product = chosen_product(text)
    if product is None:
        return
    asin = str(product.get("asin"))
    history = cached(queries.price_history)(asin)
    if history.versions.empty:
        st.info(f"No price history for {markdown_text(asin)} yet. {FILL_HISTORY}")
        return
    price_history_metrics(history)
    price_history_chart(history.versions, product.get("title") or asin)


def chosen_product(text: str) -> dict[str, Any] | None:
    """The product `text` names: the one with that ASIN, else one of the (at most 20) whose title has every
    word, chosen by the user when several match; None (and a note) when none does."""
    found = cached(queries.lookup_products)(text)
    if not found:
        st.info(f'No product has the ASIN or title words "{markdown_text(text.strip())}".')
        return None
    if len(found) == 1:
        return found[0]
    labels = {f"{p.get('title') or '(untitled)'} · {p.get('asin')}": p for p in found}
    first = f" (the first {queries.MAX_MATCHES})" if len(found) == queries.MAX_MATCHES else ""
    st.caption(f"{len(found)} products match{first}.")
    return labels[st.selectbox("Product", list(labels), key="history_product")]


def price_history_metrics(history: queries.PriceHistory) -> None:
    first, last = history.first_price, history.versions["price"].iloc[-1]
    change = (last - first) / first if first else None
    cols = st.columns(4)
    cols[0].metric("Versions", count(len(history.versions)) + ("+" if history.cut else ""))
    cols[1].metric("First price", money(first))
    cols[2].metric("Current price", money(last))
    cols[3].metric("Change", "—" if change is None or pd.isna(change) else f"{change:+.1%}")
    if history.cut:
        st.caption(
            f"The chart shows the newest {count(len(history.versions))} versions; the first price and the change "
            "are the product's very first version's."
        )


def price_history_chart(history: pd.DataFrame, title: object) -> None:
    prices = history.rename(columns={"price": "Price", "listPrice": "List price"}).melt(
        id_vars=["arrived_at"], value_vars=["Price", "List price"], var_name="series", value_name="usd"
    )
    show(
        charts.time_lines(
            prices,
            x="arrived_at",
            y="usd",
            colour_by="series",
            interpolate="step-after",
            title=f"Price history — {series.shortened(str(title))}",
            labels={"arrived_at": "Arrived (UTC)", "usd": "USD", "series": ""},
            formats={"usd": charts.USD},
        )
    )
    st.dataframe(
        history[["arrived_at", "price", "listPrice"]],
        hide_index=True,
        width="stretch",
        column_config={
            "price": st.column_config.NumberColumn(format="$%.2f"),
            "listPrice": st.column_config.NumberColumn("list price", format="$%.2f"),
        },
    )


# --- category trends -----------------------------------------------------------------------------------


def category_trends_section() -> None:
    stats = cached(queries.category_stats)()
    choices = {
        label: category_id for label, category_id in queries.category_choices(stats).items() if category_id is not None
    }
    if not choices:
        st.info(f"No categories yet, so no category trends. {FILL_HISTORY}")
        return
    picked = st.multiselect(
        "Categories (up to five)",
        list(choices),
        default=list(choices)[:MAX_TREND_CATEGORIES],
        max_selections=MAX_TREND_CATEGORIES,
        key="trend_categories",
    )
    left, right = st.columns(2)
    ranges = list(series.HISTORY_RANGES)
    span = left.radio(
        "Range (up to the newest point)",
        ranges,
        index=ranges.index(series.DEFAULT_HISTORY_RANGE),
        horizontal=True,
        key="trend_range",
    )
    resolution = right.radio("Resolution", list(series.RESOLUTIONS), horizontal=True, key="trend_resolution")
    if not picked:
        st.caption("Pick a category to see its trends.")
        return
    labels = {choices[label]: label for label in picked}
    history = cached(queries.category_history)(tuple(labels), series.HISTORY_RANGES[span])
    if history.empty:
        st.info(
            f"No category history yet: the streaming job keeps one point per category and time bucket. {FILL_HISTORY}"
        )
        return
    if series.reached_limit(history, serving.MAX_CATEGORY_POINTS):
        st.caption(
            f"Each category shows at most its newest {serving.MAX_CATEGORY_POINTS:,} points: "
            "the oldest of this range are left out."
        )
    shown = series.resample(series.labelled(history, labels), series.RESOLUTIONS[resolution])
    trend_charts(shown, range_words(span, history))


def range_words(span: str, history: pd.DataFrame) -> str:
    """The range a chart covers, for its title: "7 days up to 2024-05-01 14:00:00 UTC" (its newest point)."""
    return f"{span} up to {moment(history['at'].max())}"


def trend_charts(history: pd.DataFrame, covered: str) -> None:
    columns = st.columns(2)
    for index, (measure, label) in enumerate(TREND_CHARTS.items()):
        with columns[index % 2]:
            show(
                charts.time_lines(
                    history,
                    x="at",
                    y=measure,
                    colour_by="category_name",
                    title=f"{label} — {covered}",
                    labels={"at": "Time (UTC)", measure: label, "category_name": "Category"},
                    formats=TREND_FORMATS,
                )
            )


# --- movers --------------------------------------------------------------------------------------------


def movers_section() -> None:
    window = st.radio("Window", serving.WINDOWS, index=1, horizontal=True, key="movers_window")
    for kind, (label, measure) in MOVER_KINDS.items():
        moved = cached(queries.movers)(window, kind)
        if moved.empty:
            st.info(f"No {kind} has changed price in the last {window} yet. {FILL_HISTORY}")
            continue
        until = moment(series.window_end(moved))
        chart_or_note(
            series.mover_bars(moved, kind),
            f"No {kind} of the {window} window has a start price above 0, so none has a relative change to chart.",
            draw=charts.ranked_bars,
            x="change_pct",
            y="label",
            colour_by="direction",
            colour_scale=charts.UP_DOWN,
            hover=["name", "key", "category_name", "start_price", "end_price", "change"],
            title=f"{label} whose {measure} moved most — {window} up to {until}",
            labels=MOVER_LABELS,
            formats=MOVER_FORMATS,
        )
        st.caption(
            f"The {window} window ends at the newest arrival the job had seen ({until}), not now: once records "
            "stop arriving, these moves grow old."
        )
        mover_table(moved)


def mover_table(moved: pd.DataFrame) -> None:
    st.dataframe(
        moved[MOVER_TABLE_COLUMNS],
        hide_index=True,
        width="stretch",
        column_config={
            "start_price": st.column_config.NumberColumn("from", format="$%.2f"),
            "end_price": st.column_config.NumberColumn("to", format="$%.2f"),
            "change": st.column_config.NumberColumn(format="$%+.2f"),
            "change_pct": st.column_config.NumberColumn("change %", format="%+.1f%%"),
        },
    )


guarded(trends_page)()
