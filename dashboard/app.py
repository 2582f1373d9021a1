"""Streamlit dashboard over the MongoDB serving collections.

    streamlit run dashboard/app.py

Charts read the gold aggregates (recomputed by the streaming job after every micro-batch); product
look-ups read the products collection by asin or a page at a time. The overview refreshes itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import plotly.express as px
import streamlit as st
from pymongo.database import Database
from pymongo.errors import PyMongoError

from dashboard import queries
from lakehouse import serving
from lakehouse.settings import settings

REFRESH_SECONDS = 5
CACHE_SECONDS = 3

st.set_page_config(page_title="Amazon products lakehouse", layout="wide")


SOURCE = (settings.mongo_uri, settings.mongo_db)  # part of every cache key: one cache per database


@st.cache_resource
def connect(uri: str, name: str) -> Database:
    return queries.connect(uri, name)


def database() -> Database:
    return connect(*SOURCE)


@st.cache_data(ttl=CACHE_SECONDS)
def cached_category_stats(source: tuple[str, str]) -> Any:
    return queries.category_stats(connect(*source))


@st.cache_data(ttl=CACHE_SECONDS)
def cached_headline(source: tuple[str, str]) -> dict[str, Any]:
    return queries.headline(connect(*source))


@st.cache_data(ttl=CACHE_SECONDS)
def cached_price_distribution(source: tuple[str, str], category_id: int | None) -> Any:
    return queries.price_distribution(connect(*source), category_id)


def category_stats() -> Any:
    return cached_category_stats(SOURCE)


def show(figure: Any) -> None:
    st.plotly_chart(figure, width="stretch")


def overview() -> None:
    numbers = cached_headline(SOURCE)
    if not numbers["products"]:
        st.info(
            "No products in MongoDB yet. Run `make run`, or `python client/api_client.py` with the "
            "streaming job running, and this page fills itself."
        )
        return
    cols = st.columns(6)
    cols[0].metric("Products", f"{numbers['products']:,}")
    cols[1].metric("Categories", f"{numbers['categories']:,}")
    cols[2].metric("Best sellers", f"{numbers['best_sellers']:,}")
    cols[3].metric("Average price", f"${numbers['avg_price']:,.2f}")
    fresh = numbers["freshness_seconds"]
    cols[4].metric("Newest record", "—" if fresh is None else f"{fresh:,.0f} s ago")
    cols[5].metric("Quarantined", f"{numbers['quarantined']:,}")

    stats = category_stats()
    left, right = st.columns(2)
    with left:
        names = {"All categories": None} | dict(zip(stats["category_name"], stats["category_id"], strict=True))
        chosen = st.selectbox("Category", list(names), key="price_category")
        prices = cached_price_distribution(SOURCE, names[chosen])
        show(
            px.bar(
                prices,
                x="label",
                y="product_count",
                title=f"Price distribution — {chosen}",
                labels={"label": "Price bucket (USD)", "product_count": "Products"},
            )
        )
    with right:
        top_n = st.slider("Top categories", 5, 50, 15, key="top_n")
        sort_by = st.radio(
            "Rank by", ["product_count", "best_seller_count", "bought_last_month"], horizontal=True, key="rank_by"
        )
        top = queries.top_categories(stats, top_n, sort_by)
        figure = px.bar(
            top,
            x="product_count",
            y="category_name",
            orientation="h",
            title=f"Products per category (top {top_n} by {sort_by}, the rest as Other)",
            labels={"product_count": "Products", "category_name": "Category"},
        )
        show(figure.update_layout(yaxis={"categoryorder": "total ascending"}))

    largest = stats.head(30)
    show(
        px.bar(
            largest,
            x="category_name",
            y=["avg_price", "median_price"],
            barmode="group",
            hover_data=["product_count"],
            title="Average and median price per category (30 largest)",
            labels={
                "value": "Price (USD)",
                "category_name": "Category",
                "variable": "",
                "avg_price": "Average",
                "median_price": "Median",
            },
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


def categories_page() -> None:
    stats = category_stats()
    if stats.empty:
        st.info("No categories yet.")
        return
    show(
        px.scatter(
            stats,
            x="median_price",
            y="avg_stars",
            size="product_count",
            hover_name="category_name",
            log_x=True,
            title="Rating vs. price per category (bubble size: products)",
            labels={"median_price": "Median price (USD, log scale)", "avg_stars": "Average stars"},
        )
    )
    left, right = st.columns(2)
    with left:
        sellers = stats.nlargest(15, "bought_last_month")
        show(
            px.bar(
                sellers,
                x="category_name",
                y=["bought_last_month"],
                title="Bought last month (top 15)",
                labels={"value": "Units bought last month", "category_name": "Category", "variable": ""},
            )
        )
    with right:
        discounts = stats.dropna(subset=["avg_discount"]).nlargest(15, "avg_discount")
        show(
            px.bar(
                discounts,
                x="category_name",
                y="avg_discount",
                title="Average discount off list price (top 15)",
                labels={"avg_discount": "Discount (share of list price)", "category_name": "Category"},
            )
        )
    show(
        px.bar(
            stats.nlargest(15, "best_seller_count"),
            x="category_name",
            y="best_seller_count",
            title="Best sellers per category (top 15)",
            labels={"best_seller_count": "Best sellers", "category_name": "Category"},
        )
    )
    name = st.text_input("Find a category", placeholder="e.g. luggage", key="category_lookup")
    if name:
        found = stats[stats["category_name"].str.contains(name, case=False, regex=False)]
        st.dataframe(found, hide_index=True, width="stretch")


def products_page() -> None:
    db = database()
    text = st.text_input("ASIN or title words", placeholder="e.g. B014TMV5YE or softside luggage", key="product_lookup")
    if not text.strip():
        return
    exact = serving.find_product(db, text.strip().upper())
    found = [exact] if exact else serving.search_products(db, q=text, limit=20)[0]
    st.caption(f"{len(found)} product(s)")
    for product in found:
        image, details = st.columns([1, 4])
        if product.get("imgUrl"):
            image.image(product["imgUrl"], width=120)
        details.markdown(
            f"**[{product['title']}]({product['productURL']})**  \n"
            f"{product['asin']} · {product.get('category_name') or 'category not yet arrived'} · "
            f"${product['price']:,.2f} · {product['stars']}★ ({product['reviews']:,} reviews)"
            f"{' · best seller' if product['isBestSeller'] else ''}"
        )


def pipeline_page() -> None:
    db = database()
    status = serving.pipeline_status(db)
    if not status:
        st.info("The streaming job has not finished a micro-batch yet.")
        return
    lag = status.get("lag", {})
    cols = st.columns(4 + len(lag))
    cols[0].metric("Last batch", f"#{status['batch_id']}")
    cols[1].metric("Finished", f"{status['updated_at']:%H:%M:%S} UTC")
    cols[2].metric("Rows/s", f"{status.get('processed_rows_per_second') or 0:,.0f}")
    cols[3].metric("Batch duration", f"{(status.get('batch_duration_ms') or 0) / 1000:,.1f} s")
    for col, (topic, behind) in zip(cols[4:], sorted(lag.items()), strict=True):
        col.metric(f"Lag {topic}", f"{behind:,}")
    st.subheader("Quarantine")
    st.dataframe(queries.quarantine_reasons(db), hide_index=True, width="stretch")
    st.dataframe(queries.latest_quarantined(db), hide_index=True, width="stretch")


def browser_page() -> None:
    db = database()
    collection = st.selectbox("Collection", queries.BROWSABLE, key="browse_collection")
    field, value, page = st.columns(3)
    field_name = field.text_input("Field", placeholder="e.g. category_id", key="browse_field")
    field_value = value.text_input("Equals", placeholder="e.g. 104", key="browse_value")
    page_number = page.number_input("Page", min_value=0, value=0, step=1, key="browse_page")
    documents = queries.browse(db, collection, field_name, field_value, int(page_number))
    st.caption(f"{len(documents)} document(s) on this page")
    for document in documents:
        with st.expander(str(document["_id"])):
            st.json({k: v if isinstance(v, int | float | str | bool | None) else str(v) for k, v in document.items()})


PAGES = {
    "Overview": overview,
    "Categories": categories_page,
    "Products": products_page,
    "Pipeline": pipeline_page,
    "Data browser": browser_page,
}


def guarded(page: Callable[[], None]) -> Callable[[], None]:
    """A page that says so when MongoDB is unreachable, instead of showing a stack trace."""

    @functools.wraps(page)
    def run() -> None:
        try:
            page()
        except PyMongoError as error:
            st.error(
                f"MongoDB at {settings.mongo_uri} is unreachable ({error.__class__.__name__}). "
                "Start the stack with `make run`, or set MONGO_URI."
            )

    return run


def main() -> None:
    st.title("Amazon products lakehouse")
    st.caption(f"MongoDB {settings.mongo_uri} · database {settings.mongo_db}")
    tabs = st.tabs(list(PAGES))
    with tabs[0]:
        st.fragment(run_every=REFRESH_SECONDS)(guarded(overview))()
    for tab, page in zip(tabs[1:], list(PAGES.values())[1:], strict=True):
        with tab:
            guarded(page)()


main()
