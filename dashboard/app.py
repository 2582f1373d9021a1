"""Streamlit dashboard over the MongoDB serving collections.

streamlit run dashboard/app.py
"""

from __future__ import annotations

import plotly.express as px
import streamlit as st
from pymongo.errors import PyMongoError

from dashboard import queries
from lakehouse.settings import settings

REFRESH_SECONDS = 5

st.set_page_config(page_title="Amazon products lakehouse", layout="wide")


@st.cache_resource
def database():  # noqa: ANN201 - a pymongo Database, cached across reruns
    return queries.connect()


def overview() -> None:
    db = database()
    numbers = queries.headline(db)
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

    stats = queries.category_stats(db)
    left, right = st.columns(2)
    with left:
        names = {"All categories": None} | dict(zip(stats["category_name"], stats["category_id"], strict=True))
        chosen = st.selectbox("Category", list(names), key="price_category")
        prices = queries.price_distribution(db, names[chosen])
        figure = px.bar(
            prices,
            x="label",
            y="product_count",
            title=f"Price distribution — {chosen}",
            labels={"label": "Price (USD)", "product_count": "Products"},
        )
        st.plotly_chart(figure, use_container_width=True)
    with right:
        top_n = st.slider("Top categories", 5, 50, 15, key="top_n")
        top = queries.top_categories(stats, top_n)
        figure = px.bar(
            top,
            x="product_count",
            y="category_name",
            orientation="h",
            title=f"Products per category (top {top_n}, rest as Other)",
            labels={"product_count": "Products", "category_name": "Category"},
        )
        figure.update_layout(yaxis={"categoryorder": "total ascending"})
        st.plotly_chart(figure, use_container_width=True)

    by_price = stats.nlargest(30, "product_count")
    figure = px.bar(
        by_price,
        x="category_name",
        y=["avg_price", "median_price"],
        barmode="group",
        hover_data=["product_count"],
        title="Average and median price per category (30 largest categories)",
        labels={"value": "Price (USD)", "category_name": "Category", "variable": ""},
    )
    st.plotly_chart(figure, use_container_width=True)
    st.dataframe(stats, hide_index=True, use_container_width=True)


def browser() -> None:
    db = database()
    collection = st.selectbox("Collection", queries.BROWSABLE)
    field, value, page = st.columns(3)
    field_name = field.text_input("Field", placeholder="e.g. category_id")
    field_value = value.text_input("Equals", placeholder="e.g. 104")
    page_number = page.number_input("Page", min_value=0, value=0, step=1)
    documents = queries.browse(db, collection, field_name, field_value, int(page_number))
    st.caption(f"{len(documents)} document(s) on this page")
    for document in documents:
        with st.expander(str(document["_id"])):
            st.json(
                {k: str(v) if not isinstance(v, int | float | str | bool | None) else v for k, v in document.items()}
            )


def main() -> None:
    st.title("Amazon products lakehouse")
    st.caption(f"MongoDB {settings.mongo_uri} · database {settings.mongo_db} · refreshes every {REFRESH_SECONDS}s")
    overview_tab, browser_tab = st.tabs(["Overview", "Data browser"])
    try:
        with overview_tab:
            st.fragment(run_every=REFRESH_SECONDS)(overview)()
        with browser_tab:
            browser()
    except PyMongoError as error:
        st.error(
            f"MongoDB at {settings.mongo_uri} is unreachable: {error.__class__.__name__}. "
            "Start the stack with `make run`, or set MONGO_URI."
        )


main()
