"""Categories: rating vs. price, units bought, discounts and best sellers per category, and a name look-up.
Reads gold_category_stats only."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, queries
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
            y="bought_last_month",
            title="Bought last month (top 15)",
            labels={"bought_last_month": "Units bought last month", "category_name": "Category"},
            formats={"bought_last_month": charts.COUNT},
        )
    with right:
        chart_or_note(
            queries.ranked(stats, "avg_discount", 15),
            "No discounts to show: no product has a list price above its price.",
            x="category_name",
            y="avg_discount",
            title="Average discount off list price (top 15)",
            labels={"avg_discount": "Discount (share of list price)", "category_name": "Category"},
            formats={"avg_discount": charts.PERCENT},
        )
    chart_or_note(
        queries.ranked(stats, "best_seller_count", 15),
        "No best-seller counts yet.",
        x="category_name",
        y="best_seller_count",
        title="Best sellers per category (top 15)",
        labels={"best_seller_count": "Best sellers", "category_name": "Category"},
        formats={"best_seller_count": charts.COUNT},
    )
    category_lookup(stats)


def rating_vs_price_chart(stats: pd.DataFrame) -> None:
    rated = queries.rated_categories(stats)
    if rated.empty:
        st.info("No rating-vs-price chart yet: no category has a reviewed product with a price above zero.")
        return
    show(rating_vs_price(rated))


def rating_vs_price(rated: pd.DataFrame) -> alt.Chart:
    """A bubble per category: average stars against median price on a log axis ticked in round dollars."""
    ticks, tick_labels = dollar_ticks(rated["median_price"].min(), rated["median_price"].max())
    labels = {
        "category_name": "Category",
        "median_price": "Median price (USD, log scale)",
        "avg_stars": "Average stars",
        "product_count": "Products",
    }
    formats = {"median_price": charts.USD, "avg_stars": ".2f", "product_count": charts.COUNT}
    shown = rated[list(labels)]
    price_axis = alt.Axis(values=ticks, labelExpr=charts.label_lookup(ticks, tick_labels))
    return (
        alt.Chart(shown, title="Rating vs. price per category (bubble size: products)", height=charts.HEIGHT)
        .mark_circle(opacity=0.7)
        .encode(
            x=alt.X(
                "median_price:Q",
                title=labels["median_price"],
                scale=alt.Scale(type="log", domain=[ticks[0], ticks[-1]]),
                axis=price_axis,
            ),
            y=alt.Y("avg_stars:Q", title=labels["avg_stars"], scale=alt.Scale(zero=False)),
            size=alt.Size("product_count:Q", title=labels["product_count"]),
            tooltip=charts.tooltips(shown, list(labels), labels, formats),
        )
    )


def category_lookup(stats: pd.DataFrame) -> None:
    name = st.text_input("Find a category", placeholder="e.g. luggage", key="category_lookup")
    if name:
        found = stats[stats["category_name"].str.contains(name, case=False, regex=False, na=False)]
        st.dataframe(found, hide_index=True, width="stretch")


guarded(categories_page)()
