"""Data browser: any serving collection of the catalog, filtered by one field, a page at a time (the server's
natural order: dashboard/queries.browse)."""

from __future__ import annotations

import streamlit as st

from dashboard import queries
from dashboard.common import database, guarded
from dashboard.formatting import json_safe, markdown_text


def browser_page() -> None:
    collection = st.selectbox("Collection", queries.BROWSABLE, key="browse_collection")
    field, value, page = st.columns(3)
    field_name = field.text_input("Field", placeholder="e.g. category_id", key="browse_field")
    field_value = value.text_input("Equals", placeholder="e.g. 104", key="browse_value")
    page_number = page.number_input("Page", min_value=0, value=0, step=1, key="browse_page")
    try:
        documents = queries.browse(database(), collection, field_name, field_value, int(page_number))
    except queries.RefusedQuery as refused:
        st.warning(markdown_text(refused))
        return
    st.caption(f"{len(documents)} document(s) on this page")
    for document in documents:
        with st.expander(str(document.get("_id"))):
            st.json(json_safe(document))


guarded(browser_page)()
