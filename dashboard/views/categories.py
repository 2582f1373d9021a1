"""Categories: rating vs. price, units bought, discounts and best sellers per category, and a name look-up.
Reads gold_category_stats only."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard import queries
from dashboard.common import cached, chart_or_note, guarded, show
from dashboard.formatting import dollar_ticks


def categories_page() -> None:
    stats = cached(queries.category_stats)()
    if stats.empty:
        st.info("No category statistics yet: they are computed once products arrive.")
        return
    rating_vs_price_chart(stats)
    left, right = st.columns(2)
    with left:
        chart_or_note(
            queries.ranked(stats, "bought_last_month", 15),
            "No category has units bought last month yet.",
            x="category_name",
            y=["bought_last_month"],
            title="Bought last month (top 15)",
            labels={"value": "Units bought last month", "category_name": "Category", "variable": ""},
        )
    with right:
        chart_or_note(
            queries.ranked(stats, "avg_discount", 15),
            "No discounts to show: no product has a list price above its price.",
            x="category_name",
            y="avg_discount",
            title="Average discount off list price (top 15)",
            labels={"avg_discount": "Discount (share of list price)", "category_name": "Category"},
        )
    chart_or_note(
        queries.ranked(stats, "best_seller_count", 15),
        "No best-seller counts yet.",
        x="category_name",
        y="best_seller_count",
        title="Best sellers per category (top 15)",
        labels={"best_seller_count": "Best sellers", "category_name": "Category"},
    )
    category_lookup(stats)


def rating_vs_price_chart(stats: pd.DataFrame) -> None:
    rated = queries.rated_categories(stats)
    if rated.empty:
        st.info("No rating-vs-price chart yet: no category has a reviewed product with a price above zero.")
        return
    figure = px.scatter(
        rated,
        x="median_price",
        y="avg_stars",
        size="product_count",
        hover_name="category_name",
        log_x=True,
        title="Rating vs. price per category (bubble size: products)",
        labels={"median_price": "Median price (USD, log scale)", "avg_stars": "Average stars"},
    )
    ticks, labels = dollar_ticks(rated["median_price"].min(), rated["median_price"].max())
    figure.update_xaxes(tickvals=ticks, ticktext=labels)
    show(figure)


def category_lookup(stats: pd.DataFrame) -> None:
    name = st.text_input("Find a category", placeholder="e.g. luggage", key="category_lookup")
    if name:
        found = stats[stats["category_name"].str.contains(name, case=False, regex=False, na=False)]
        st.dataframe(found, hide_index=True, width="stretch")


guarded(categories_page)()
