"""Trends: how prices and categories move over time. A product's price history (price_history, by asin),
category trends (gold_category_history, by category and time) and the largest movers (gold_movers, by
window). Nothing is searched before the user types; the other reads are indexed or gold."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import queries, series
from dashboard.common import cached, chart_or_note, database, guarded, show
from dashboard.formatting import count, markdown_text, money
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
MOVER_KINDS = {"product": "Products", "category": "Categories"}


def trends_page() -> None:
    st.subheader("Price history of a product")
    price_history_section()
    st.subheader("Category trends")
    category_trends_section()
    st.subheader("Movers")
    movers_section()


# --- a product's price history ---------------------------------------------------------------------------


def price_history_section() -> None:
    text = st.text_input("ASIN or title words", placeholder="e.g. B014TMV5YE or softside luggage", key="history_lookup")
    if not text.strip():
        st.caption("Type an ASIN or words of a title to see every price the product had.")
        return
    product = chosen_product(text)
    if product is None:
        return
    asin = str(product.get("asin"))
    history = cached(queries.price_history)(asin)
    if history.empty:
        st.info(f"No price history for {markdown_text(asin)} yet. {FILL_HISTORY}")
        return
    price_history_metrics(history)
    price_history_chart(history, product.get("title") or asin)


def chosen_product(text: str) -> dict[str, Any] | None:
    """The product `text` names: the one with that ASIN, else one of the (at most 20) whose title has every
    word, chosen by the user when several match; None (and a note) when none does."""
    db = database()
    exact = serving.find_product(db, text.strip().upper())
    found = [exact] if exact else serving.search_products(db, q=text, limit=20)[0]
    if not found:
        st.info(f"No product has the ASIN or title words {markdown_text(text.strip())!r}.")
        return None
    if len(found) == 1:
        return found[0]
    labels = {f"{p.get('title') or '(untitled)'} · {p.get('asin')}": p for p in found}
    st.caption(f"{len(found)} products match{' (the first 20)' if len(found) == 20 else ''}.")
    return labels[st.selectbox("Product", list(labels), key="history_product")]


def price_history_metrics(history: pd.DataFrame) -> None:
    first, last = history["price"].iloc[0], history["price"].iloc[-1]
    change = (last - first) / first if first else None
    cols = st.columns(4)
    cols[0].metric("Versions", count(len(history)))
    cols[1].metric("First price", money(first))
    cols[2].metric("Current price", money(last))
    cols[3].metric("Change", "—" if change is None or pd.isna(change) else f"{change:+.1%}")


def price_history_chart(history: pd.DataFrame, title: object) -> None:
    figure = px.line(
        history,
        x="arrived_at",
        y=["price", "listPrice"],
        line_shape="hv",
        markers=True,
        title=f"Price history — {title}",
        labels={"arrived_at": "Arrived (UTC)", "value": "USD", "variable": ""},
    )
    figure.for_each_trace(lambda trace: trace.update(name={"price": "Price", "listPrice": "List price"}[trace.name]))
    show(figure)
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
    resolution = st.radio("Resolution", list(series.RESOLUTIONS), horizontal=True, key="trend_resolution")
    if not picked:
        st.caption("Pick a category to see its trends.")
        return
    history = cached(queries.category_history)(tuple(choices[label] for label in picked))
    if history.empty:
        st.info(
            f"No category history yet: the streaming job keeps one point per category and time bucket. {FILL_HISTORY}"
        )
        return
    trend_charts(series.resample(history, series.RESOLUTIONS[resolution]))


def trend_charts(history: pd.DataFrame) -> None:
    columns = st.columns(2)
    for index, (measure, label) in enumerate(TREND_CHARTS.items()):
        with columns[index % 2]:
            show(
                px.line(
                    history,
                    x="at",
                    y=measure,
                    color="category_name",
                    markers=True,
                    title=label,
                    labels={"at": "Time (UTC)", measure: label, "category_name": "Category"},
                )
            )


# --- movers --------------------------------------------------------------------------------------------


def movers_section() -> None:
    window = st.radio("Window", serving.WINDOWS, index=1, horizontal=True, key="movers_window")
    for kind, label in MOVER_KINDS.items():
        moved = cached(queries.movers)(window, kind)
        chart_or_note(
            moved,
            f"No {kind} has changed price in the last {window} yet. {FILL_HISTORY}",
            x="change_pct",
            y="name",
            color="direction",
            orientation="h",
            hover_data=["category_name", "start_price", "end_price", "change"],
            title=f"{label} whose average price moved most — {window}",
            labels={"change_pct": "Price change (%)", "name": "", "direction": "Direction"},
            color_discrete_map={"up": "#2ca02c", "down": "#d62728"},
        )
        if not moved.empty:
            mover_table(moved)


def mover_table(moved: pd.DataFrame) -> None:
    st.dataframe(
        moved[["direction", "rank", "name", "category_name", "start_price", "end_price", "change", "change_pct"]],
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
