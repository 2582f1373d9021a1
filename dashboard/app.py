"""Streamlit dashboard over the MongoDB serving collections.

    streamlit run dashboard/app.py

Charts read the gold aggregates (recomputed by the streaming job after every micro-batch); product
look-ups read the products collection by asin or a page at a time. The overview refreshes itself.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from dashboard import queries
from dashboard.formatting import (
    clock,
    count,
    decimal,
    identifier,
    json_safe,
    markdown_text,
    money,
    number,
    product_markdown,
    safe_url,
    seconds_from_ms,
)
from lakehouse import serving
from lakehouse.mongo import redacted_uri
from lakehouse.settings import settings

log = logging.getLogger("dashboard")

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
def cached_category_stats(source: tuple[str, str]) -> pd.DataFrame:
    return queries.category_stats(connect(*source))


@st.cache_data(ttl=CACHE_SECONDS)
def cached_headline(source: tuple[str, str]) -> dict[str, Any]:
    return queries.headline(connect(*source))


@st.cache_data(ttl=CACHE_SECONDS)
def cached_price_distribution(source: tuple[str, str], category_id: int | None) -> pd.DataFrame:
    return queries.price_distribution(connect(*source), category_id)


def category_stats() -> pd.DataFrame:
    return cached_category_stats(SOURCE)


def show(figure: Any) -> None:
    st.plotly_chart(figure, width="stretch")


def bar_or_note(frame: pd.DataFrame, note: str, **bar: Any) -> None:
    """A bar chart of `frame`, or `note` when it has no rows (an empty chart says nothing)."""
    if frame.empty:
        st.info(note)
    else:
        show(px.bar(frame, **bar))


def overview() -> None:
    numbers = cached_headline(SOURCE)
    if not number(numbers["products"]):
        st.info(
            "No products in MongoDB yet. Run `make run`, or `python client/api_client.py` with the "
            "streaming job running, and this page fills itself."
        )
        return
    headline_metrics(numbers)
    stats = category_stats()
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
    prices = cached_price_distribution(SOURCE, choices[chosen])
    show(
        px.bar(
            prices,
            x="label",
            y="product_count",
            title=f"Price distribution — {chosen}",
            labels={"label": "Price bucket (USD)", "product_count": "Products"},
        )
    )


def top_categories_chart(stats: pd.DataFrame) -> None:
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


def price_per_category(stats: pd.DataFrame) -> None:
    show(
        px.bar(
            stats.head(30),
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
        st.info("No category statistics yet: they are computed once products arrive.")
        return
    rating_vs_price_chart(stats)
    left, right = st.columns(2)
    with left:
        bar_or_note(
            queries.ranked(stats, "bought_last_month", 15),
            "No category has units bought last month yet.",
            x="category_name",
            y=["bought_last_month"],
            title="Bought last month (top 15)",
            labels={"value": "Units bought last month", "category_name": "Category", "variable": ""},
        )
    with right:
        bar_or_note(
            queries.ranked(stats, "avg_discount", 15),
            "No discounts to show: no product has a list price above its price.",
            x="category_name",
            y="avg_discount",
            title="Average discount off list price (top 15)",
            labels={"avg_discount": "Discount (share of list price)", "category_name": "Category"},
        )
    bar_or_note(
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
    show(
        px.scatter(
            rated,
            x="median_price",
            y="avg_stars",
            size="product_count",
            hover_name="category_name",
            log_x=True,
            title="Rating vs. price per category (bubble size: products)",
            labels={"median_price": "Median price (USD, log scale)", "avg_stars": "Average stars"},
        )
    )


def category_lookup(stats: pd.DataFrame) -> None:
    name = st.text_input("Find a category", placeholder="e.g. luggage", key="category_lookup")
    if name:
        found = stats[stats["category_name"].str.contains(name, case=False, regex=False, na=False)]
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
        picture = safe_url(product.get("imgUrl"))
        if picture:
            image.image(picture, width=120)
        details.markdown(product_markdown(product))


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


def pipeline_page() -> None:
    db = database()
    supervisor_notice(serving.supervisor_status(db))
    status = serving.pipeline_status(db)
    if not status:
        st.info("The streaming job has not finished a micro-batch yet.")
        return
    lag = status.get("lag") if isinstance(status.get("lag"), dict) else {}
    cols = st.columns(4 + len(lag))
    cols[0].metric("Last batch", f"#{identifier(status.get('batch_id'))}")
    cols[1].metric("Finished", clock(status.get("updated_at")))
    cols[2].metric("Rows/s", decimal(status.get("processed_rows_per_second"), 0))
    cols[3].metric("Batch duration", seconds_from_ms(status.get("batch_duration_ms")))
    for col, (topic, behind) in zip(cols[4:], sorted(lag.items()), strict=True):
        col.metric(f"Lag {topic}", count(behind))
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
    try:
        documents = queries.browse(db, collection, field_name, field_value, int(page_number))
    except queries.RefusedQuery as refused:
        st.warning(markdown_text(refused))
        return
    st.caption(f"{len(documents)} document(s) on this page")
    for document in documents:
        with st.expander(str(document.get("_id"))):
            st.json(json_safe(document))


PAGES = {
    "Overview": overview,
    "Categories": categories_page,
    "Products": products_page,
    "Pipeline": pipeline_page,
    "Data browser": browser_page,
}


def guarded(page: Callable[[], None]) -> Callable[[], None]:
    """A page whose failure is shown on that page only, so the other tabs still render: a plain message
    when MongoDB is unreachable, else the error's own words with its details folded away (and logged)."""

    @functools.wraps(page)
    def run() -> None:
        try:
            page()
        except ConnectionFailure as error:
            st.error(
                f"MongoDB at {redacted_uri(settings.mongo_uri)} is unreachable ({error.__class__.__name__}). "
                "Start the stack with `make run`, or set MONGO_URI."
            )
        except Exception as error:
            log.exception("dashboard page %s failed", page.__name__)
            st.error(f"This page failed: {error.__class__.__name__}: {markdown_text(error)}")
            with st.expander("Details"):
                st.exception(error)

    return run


def main() -> None:
    st.title("Amazon products lakehouse")
    st.caption(f"MongoDB {redacted_uri(settings.mongo_uri)} · database {settings.mongo_db}")
    tabs = st.tabs(list(PAGES))
    with tabs[0]:
        st.fragment(run_every=REFRESH_SECONDS)(guarded(overview))()
    for tab, page in zip(tabs[1:], list(PAGES.values())[1:], strict=True):
        with tab:
            guarded(page)()


main()
