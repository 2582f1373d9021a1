"""What every page of the dashboard shares: the database connection, cached reads, showing a chart (built by
dashboard/charts.py) and the guard that keeps a page's failure on that page.

A page module (dashboard/views/) reads through `cached(queries.<function>)(...)`: one cache per database,
function and arguments, kept CACHE_SECONDS, so a rerun within that time does not query MongoDB again.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable
from typing import Any, Concatenate, ParamSpec, TypeVar

import altair as alt
import pandas as pd
import streamlit as st
from pymongo.database import Database
from pymongo.errors import ConnectionFailure

from dashboard import charts, queries
from dashboard.formatting import markdown_text
from lakehouse.mongo import redacted_uri
from lakehouse.settings import settings

log = logging.getLogger("dashboard")

REFRESH_SECONDS = 5
CACHE_SECONDS = 3
SOURCE = (settings.mongo_uri, settings.mongo_db)  # part of every cache key: one cache per database

P = ParamSpec("P")
T = TypeVar("T")


@st.cache_resource
def connect(uri: str, name: str) -> Database:
    return queries.connect(uri, name)


def database() -> Database:
    return connect(*SOURCE)


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False)
def _cached_query(
    source: tuple[str, str], query: str, arguments: tuple[Hashable, ...], keywords: tuple[tuple[str, Hashable], ...]
) -> Any:
    return getattr(queries, query)(connect(*source), *arguments, **dict(keywords))


def cached(query: Callable[Concatenate[Database, P], T]) -> Callable[P, T]:
    """`query`, a function of dashboard.queries taking the database first, called with its other arguments
    (hashable; positional or by keyword, both part of the cache key) through the cache. Looked up by name at
    each call, so a test may replace it."""

    def run(*arguments: P.args, **keywords: P.kwargs) -> T:
        return _cached_query(SOURCE, query.__name__, arguments, tuple(sorted(keywords.items())))

    return run


def show(chart: alt.TopLevelMixin) -> None:
    """`chart` drawn as wide as its column."""
    st.altair_chart(chart, width="stretch")


def chart_or_note(
    frame: pd.DataFrame, note: str, draw: Callable[..., alt.TopLevelMixin] = charts.category_bars, **chart: Any
) -> None:
    """The chart `draw(frame, **chart)` (a builder of dashboard.charts), or `note` when `frame` has no rows (an
    empty chart says nothing)."""
    if frame.empty:
        st.info(note)
    else:
        show(draw(frame, **chart))


def guarded(page: Callable[[], None]) -> Callable[[], None]:
    """A page whose failure is shown on that page only: a plain message when MongoDB is unreachable, else the
    error's own words with its details folded away (and logged). Streamlit's own control flow (st.rerun,
    st.stop, st.switch_page) raises BaseExceptions, which pass through."""

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
