"""Products: look a product up by ASIN (one indexed read) or title words (a search, only once typed)."""

from __future__ import annotations

import streamlit as st

from dashboard import queries
from dashboard.common import cached, guarded
from dashboard.formatting import product_markdown, safe_url


def products_page() -> None:
    text = st.text_input("ASIN or title words", placeholder="e.g. B014TMV5YE or softside luggage", key="product_lookup")
    if not text.strip():
        st.caption("Type an ASIN or words of a title: nothing is searched before.")
        return
    found = cached(queries.lookup_products)(text)
    st.caption(f"{len(found)} product(s)")
    for product in found:
        image, details = st.columns([1, 4])
        picture = safe_url(product.get("imgUrl"))
        if picture:
            image.image(picture, width=120)
        details.markdown(product_markdown(product))


guarded(products_page)()
