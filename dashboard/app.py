"""Streamlit dashboard over the MongoDB serving collections: the entry that routes to one page module each.

    streamlit run dashboard/app.py

st.navigation runs only the open page's module (dashboard/views/), so only that page queries MongoDB and a
page's failure stays on that page. The modules live in views/, not pages/: a pages/ folder next to the entry
would be Streamlit's older automatic multipage layout, listed by any session until st.navigation runs.
"""

from __future__ import annotations

import streamlit as st

from lakehouse.mongo import redacted_uri
from lakehouse.settings import settings

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("views/categories.py", title="Categories", icon=":material/category:", url_path="categories"),
    st.Page("views/products.py", title="Products", icon=":material/search:", url_path="products"),
    st.Page("views/trends.py", title="Trends", icon=":material/trending_up:", url_path="trends"),
    st.Page("views/pipeline.py", title="Pipeline", icon=":material/monitor_heart:", url_path="pipeline"),
    st.Page("views/browser.py", title="Data browser", icon=":material/table_view:", url_path="browser"),
]

st.set_page_config(page_title="Amazon products lakehouse", layout="wide")
page = st.navigation(PAGES)
st.sidebar.caption(
    f"Amazon products lakehouse · MongoDB {redacted_uri(settings.mongo_uri)} · database {settings.mongo_db}"
)
st.title(page.title)
page.run()
