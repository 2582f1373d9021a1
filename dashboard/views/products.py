"""Products: look a product up by ASIN (one indexed read) or title words (a search, only once typed)."""

from __future__ import annotations

import streamlit as st

from dashboard.common import database, guarded
from dashboard.formatting import product_markdown, safe_url
from lakehouse import serving


def products_page() -> None:
    text = st.text_input("ASIN or title words", placeholder="e.g. B014TMV5YE or softside luggage", key="product_lookup")
    if not text.strip():
        st.caption("Type an ASIN or words of a title: nothing is searched before.")
        return
    db = database()
    exact = serving.find_product(db, text.strip().upper())
    found = [exact] if exact else serving.search_products(db, q=text, limit=20)[0]
    st.caption(f"{len(found)} product(s)")
    for product in found:
        image, details = st.columns([1, 4])
        picture = safe_url(product.get("imgUrl"))
        if picture:
            image.image(picture, width=120)
        details.markdown(product_markdown(product))


guarded(products_page)()
