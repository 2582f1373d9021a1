"""Pure helpers that turn stored values into what a page shows: numbers, links, Markdown-safe text.

The serving collections may hold documents from an older job or from another writer, so every helper
accepts None, NaN and values of the wrong type, and shows "—" (or nothing) instead of raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from numbers import Integral
from typing import Any
from urllib.parse import urlsplit

MISSING = "—"
WEB_SCHEMES = ("http", "https")
# Characters that Streamlit's Markdown (GitHub flavour plus $...$ LaTeX and :color[...] directives) would
# turn into markup: links, images, emphasis, code, HTML, tables, strike-through, headings, math.
MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>#|~$])")
# In a Markdown link target these would end the target or open an autolink; they are percent-encoded.
LINK_TARGET_ENCODING = {"(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}
JSON_SCALARS = (str, int, bool, type(None))
INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


def number(value: object) -> int | float | None:
    """A finite number (numeric text too, as pd.to_numeric reads it), or None for None, NaN, infinities and
    anything else. Integers (Python's, NumPy's, digits alone) stay exact ints: a float has 53 bits, so an id
    or count above 2**53 would lose its last digits."""
    exact = integer(value)
    if exact is not None:
        return exact
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def integer(value: object) -> int | None:
    """`value` as an exact int when it is an integer or integer text, else None (floats are not read here)."""
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value):
        with suppress(ValueError):  # more than 4,300 digits: float() reads it, as infinity
            return int(value)
    return None


def fixed(amount: float, places: int) -> str:
    """`amount` with thousands separators and `places` decimals. Through Decimal, which formats a float as
    the "f" format does but an int exactly (the "f" format turns an int into a float first)."""
    return f"{Decimal(amount):,.{places}f}"


def count(value: object) -> str:
    amount = number(value)
    return MISSING if amount is None else fixed(amount, 0)


def identifier(value: object) -> str:
    """A whole-number id as written in the data (no thousands separator), exact however large; "?" when
    there is none (nothing, NaN, a fraction)."""
    amount = number(value)
    if isinstance(amount, float) and amount.is_integer():
        amount = int(amount)
    return str(amount) if isinstance(amount, int) else "?"


def money(value: object) -> str:
    amount = number(value)
    return MISSING if amount is None else f"${fixed(amount, 2)}"


def decimal(value: object, places: int = 1, unit: str = "") -> str:
    amount = number(value)
    return MISSING if amount is None else f"{fixed(amount, places)}{unit}"


def seconds_from_ms(value: object) -> str:
    milliseconds = number(value)
    return MISSING if milliseconds is None else f"{milliseconds / 1000:,.1f} s"


def clock(value: object) -> str:
    return f"{value:%H:%M:%S} UTC" if isinstance(value, datetime) else MISSING


def moment(value: object) -> str:
    """A date and time (UTC) in full: "2024-05-01 12:00:00 UTC"; "—" for anything else (NaT too)."""
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if isinstance(value, datetime) and value == value else MISSING


def safe_url(text: object) -> str | None:
    """`text` when it is an absolute http(s) URL with a host, else None: never a `javascript:`, `data:` or
    `file:` URL, nor a bare path (which st.image would read from the dashboard's own disk)."""
    if not isinstance(text, str):
        return None
    url = text.strip()
    if any(character.isspace() or not character.isprintable() for character in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not host:
        return None
    return url


def markdown_text(text: object) -> str:
    """`text` shown literally by st.markdown: markup characters escaped, line breaks flattened."""
    flat = " ".join(str(text).splitlines())
    return MARKDOWN_ACTIVE.sub(r"\\\1", flat)


def markdown_link(text: object, url: object) -> str:
    """A Markdown link to `url` when it is a safe http(s) URL, else `text` alone."""
    label = markdown_text(text)
    target = safe_url(url)
    if target is None:
        return label
    for character, encoded in LINK_TARGET_ENCODING.items():
        target = target.replace(character, encoded)
    return f"[{label}]({target})"


def product_markdown(product: Mapping[str, Any]) -> str:
    """One product of a search result: its title (a link when its URL is safe) and its key facts."""
    title = product.get("title") or product.get("asin") or "untitled product"
    facts = [
        product.get("asin") or MISSING,
        product.get("category_name") or "category not yet arrived",
        money(product.get("price")),
        f"{decimal(product.get('stars'))}★ ({count(product.get('reviews'))} reviews)",
    ]
    if product.get("isBestSeller") is True:
        facts.append("best seller")
    return f"**{markdown_link(title, product.get('productURL'))}**  \n" + " · ".join(map(markdown_text, facts))


def json_safe(document: Mapping[str, Any]) -> dict[str, Any]:
    """A document st.json can show: finite numbers and strings as they are, everything else as text
    (dates, ObjectIds, nested documents; NaN and infinities, which JSON cannot carry)."""
    return {key: value if _is_json_scalar(value) else str(value) for key, value in document.items()}


def _is_json_scalar(value: object) -> bool:
    return isinstance(value, JSON_SCALARS) or (isinstance(value, float) and math.isfinite(value))


def dollar_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log-scale dollar axis spanning [low, high] (both > 0): 1-2-5 steps
    ($1, $2, $5, $10, ...) over up to three decades, powers of ten beyond; the ticks include one at or below
    `low` and one at or above `high`, so every axis has at least two labelled ticks."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    candidates = [step * 10.0**exponent for exponent in range(first, last + 1) for step in steps]
    below = max(value for value in candidates if value <= low * (1 + 1e-9))
    above = min(value for value in candidates if value >= high * (1 - 1e-9))
    values = [value for value in candidates if below <= value <= above]
    if len(values) == 1:
        values.append(values[0] * 10)
    return values, [dollars(value) for value in values]


def dollars(value: float) -> str:
    """A round tick amount: "$0.50", "$5", "$1,000"."""
    return f"${value:,.0f}" if value >= 1 else f"${value:.2f}"
