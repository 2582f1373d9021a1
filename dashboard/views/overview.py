"""Overview (the default page, refreshes itself): headline numbers, price distribution, the largest
categories as shares of all products, and average and median price per category. Reads gold only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, queries
from dashboard.common import REFRESH_SECONDS, cached, guarded, show
from dashboard.formatting import count, decimal, money, number

RANKINGS = {"product_count": "products", "best_seller_count": "best sellers", "bought_last_month": "bought"}


def overview_page() -> None:
    numbers = cached(queries.headline)()
    if not number(numbers["products"]):
        st.info(
            "No products in MongoDB yet. Run `make run`, or `python client/api_client.py` with the "
            "streaming job running, and this page fills itself."
        )
        return
    headline_metrics(numbers)
    stats = cached(queries.category_stats)()
    left, right = st.columns(2)
    with left:
        price_distribution_chart(stats)
    with right:
        top_categories_chart(stats)
    price_per_category(stats)


def headline_metrics(numbers: dict[str, Any]) -> None:
    cols = st.columns(6)
    cols[0].metric("Products", count(numbers["products"]))
    cols[1].metric("Categories", count(numbers["categories"]))
    cols[2].metric("Best sellers", count(numbers["best_sellers"]))
    cols[3].metric("Average price", money(numbers["avg_price"]))
    cols[4].metric("Newest record", decimal(numbers["freshness_seconds"], 0, " s ago"))
    cols[5].metric("Quarantined", count(numbers["quarantined"]))


def price_distribution_chart(stats: pd.DataFrame) -> None:
    choices = queries.category_choices(stats)
    chosen = st.selectbox("Category", list(choices), key="price_category")
    prices = cached(queries.price_distribution)(choices[chosen])
    show(
        charts.category_bars(
            prices,
            x="label",
            y="product_count",
            title=f"Price distribution — {chosen}",
            labels={"label": "Price bucket (USD)", "product_count": "Products"},
            formats={"product_count": charts.COUNT},
        )
    )


def top_categories_chart(stats: pd.DataFrame) -> None:
    """The top N categories as bars of their share of all products; the rest said apart in one line."""
    top_n = st.slider("Top categories", 5, 50, 15, key="top_n")
    sort_by = st.radio("Rank by", list(RANKINGS), format_func=RANKINGS.get, horizontal=True, key="rank_by")
    top, other = queries.category_shares(stats, top_n, sort_by)
    show(
        charts.ranked_bars(
            top,
            x="share",
            y="category_name",
            text="product_count",
            title=f"Products per category (top {len(top)} by {RANKINGS[sort_by]}, share of all products)",
            labels={"share": "Share of all products", "category_name": "Category", "product_count": "Products"},
            formats={"share": charts.PERCENT, "product_count": charts.COUNT},
            hover=["product_count"],
        )
    )
    if other.categories:
        st.caption(other.describe())


def price_per_category(stats: pd.DataFrame) -> None:
    largest = stats.head(30).rename(columns={"avg_price": "Average", "median_price": "Median"})
    prices = largest.melt(["category_name", "product_count"], ["Average", "Median"], "measure", "price")
    show(
        charts.category_bars(
            prices,
            x="category_name",
            group="measure",
            y="price",
            title="Average and median price per category (30 largest)",
            labels={"price": "Price (USD)", "category_name": "Category", "measure": "", "product_count": "Products"},
            formats={"price": charts.USD, "product_count": charts.COUNT},
            hover=["product_count"],
        )
    )
    st.dataframe(
        stats[["category_name", "product_count", "avg_price", "median_price"]],
        hide_index=True,
        width="stretch",
        column_config={
            "avg_price": st.column_config.NumberColumn(format="$%.2f"),
            "median_price": st.column_config.NumberColumn(format="$%.2f"),
        },
    )


st.fragment(run_every=REFRESH_SECONDS)(guarded(overview_page))()
