from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import numpy as np
import pandas as pd
import pytest

from dashboard import common, queries
from dashboard.formatting import (
    clock,
    count,
    decimal,
    identifier,
    json_safe,
    markdown_link,
    markdown_text,
    money,
    product_markdown,
    safe_url,
    seconds_from_ms,
)
from dashboard.queries import (
    CATEGORY_COLUMNS,
    RefusedQuery,
    browse,
    category_choices,
    category_frame,
    category_shares,
    ranked,
    rated_categories,
)
from lakehouse import serving
from lakehouse.mongo import redacted_uri
from tests.dashboard_pages import open_page


def test_the_top_categories_are_shares_and_the_rest_is_summarised_apart() -> None:
    stats = pd.DataFrame(
        {"category_name": ["a", "b", "c", "d"], "product_count": [5, 9, 1, 3], "best_seller_count": [4, 0, 0, 1]}
    )
    top, other = category_shares(stats, 2)
    assert top.to_dict("list") == {"category_name": ["b", "a"], "product_count": [9, 5], "share": [0.5, 5 / 18]}
    assert (other.categories, other.products, other.share) == (2, 4, 4 / 18)
    assert other.describe() == "Other: 2 categories, 4 products (22.2%)"
    top, other = category_shares(stats, 1, by="best_seller_count")
    assert top["category_name"].tolist() == ["a"] and other.describe() == "Other: 3 categories, 13 products (72.2%)"
    top, other = category_shares(stats, 4)
    assert top["category_name"].tolist() == ["b", "a", "d", "c"] and (other.categories, other.products) == (0, 0)


def test_the_shares_of_no_products_are_zero() -> None:
    top, other = category_shares(category_frame([]), 15)
    assert top.empty and other.describe() == "Other: 0 categories, 0 products (0.0%)"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


READING_PAGES = ["Overview", "Categories", "Trends", "Pipeline", "Data browser"]


@pytest.mark.parametrize("page", READING_PAGES)
def test_an_unreachable_mongodb_gets_a_message_not_a_stack_trace(monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    port = closed_port()
    app = open_page(monkeypatch, {"MONGO_URI": f"mongodb://127.0.0.1:{port}/"}, page)
    assert not app.exception
    [error] = app.error
    assert f"127.0.0.1:{port}/ is unreachable (ServerSelectionTimeoutError)" in error.value


def test_the_products_page_reads_nothing_before_a_search(monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(monkeypatch, {"MONGO_URI": f"mongodb://127.0.0.1:{closed_port()}/"}, "Products")
    assert not app.error and not app.exception
    assert app.title[0].value == "Products"
    app.text_input(key="product_lookup").input("B014TMV5YE").run()
    assert "is unreachable" in app.error[0].value


@pytest.mark.parametrize(
    "text",
    [
        "https://www.amazon.com/dp/B014TMV5YE",
        "http://m.media-amazon.com/images/I/815dLQKYIYL._AC_UL320_.jpg",
        "HTTPS://WWW.AMAZON.COM/dp/B014TMV5YE",
    ],
)
def test_safe_url_keeps_http_and_https_urls(text: str) -> None:
    assert safe_url(text) == text
    assert safe_url(f"  {text} ") == text


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "/etc/passwd",
        "images/local.png",
        "//evil.example/x.png",
        "http:evil.example",
        "https://",
        "https://exa mple.com/",
        "https://example.com/\nx",
        "http://[::1",
        "",
        None,
        42,
    ],
)
def test_safe_url_refuses_everything_else(text: object) -> None:
    assert safe_url(text) is None


def test_a_link_is_made_only_to_a_safe_url_and_its_text_stays_text() -> None:
    assert markdown_link("Bag", "https://a.example/p(1)") == "[Bag](https://a.example/p%281%29)"
    assert markdown_link("Bag", "javascript:alert(1)") == "Bag"
    assert markdown_link("[x](javascript:alert(1))", "") == r"\[x\](javascript:alert(1))"
    assert markdown_text("a *b* $1 and $2\n# c <img>") == r"a \*b\* \$1 and \$2 \# c \<img\>"


def test_a_product_with_unsafe_urls_and_missing_fields_is_plain_text() -> None:
    shown = product_markdown({"asin": "B000000001", "title": "Bag", "productURL": "javascript:alert(1)"})
    assert shown == "**Bag**  \nB000000001 · category not yet arrived · — · —★ (— reviews)"
    safe = {
        "asin": "B000000002",
        "title": "Case",
        "productURL": "https://www.amazon.com/dp/B000000002",
        "category_name": "Suitcases",
        "price": 1234.5,
        "stars": 4,
        "reviews": 1200,
        "isBestSeller": True,
    }
    assert product_markdown(safe) == (
        "**[Case](https://www.amazon.com/dp/B000000002)**  \n"
        r"B000000002 · Suitcases · \$1,234.50 · 4.0★ (1,200 reviews) · best seller"
    )


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), "twelve", "nan", {}, datetime(2024, 1, 1)])
def test_numbers_that_are_not_there_are_shown_as_a_dash(value: object) -> None:
    assert (count(value), money(value), decimal(value), seconds_from_ms(value)) == ("—",) * 4
    assert identifier(value) == "?"


def test_numbers_and_times_are_formatted() -> None:
    assert (count(1234), money(5), decimal(2.25, 1, " s"), seconds_from_ms(1500)) == (
        "1,234",
        "$5.00",
        "2.2 s",
        "1.5 s",
    )
    assert identifier(1234.0) == "1234" and count("12") == "12"
    assert clock(datetime(2024, 5, 1, 13, 4, 5)) == "13:04:05 UTC"
    assert clock("13:04") == "—"


def test_json_safe_turns_what_json_cannot_carry_into_text() -> None:
    document = {"_id": "a", "n": 3, "x": 1.5, "nan": float("nan"), "at": datetime(2024, 1, 1), "lag": {"t": 1}}
    assert json_safe(document) == {
        "_id": "a",
        "n": 3,
        "x": 1.5,
        "nan": "nan",
        "at": "2024-01-01 00:00:00",
        "lag": "{'t': 1}",
    }


def test_a_uri_is_shown_without_its_password() -> None:
    assert redacted_uri("mongodb://root:s3cret@mongo:27017/?authSource=admin") == (
        "mongodb://root:***@mongo:27017/?authSource=admin"
    )
    assert redacted_uri("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"


def test_category_frame_has_one_shape_for_null_missing_and_empty_data() -> None:
    documents = [
        {
            "category_id": 2,
            "category_name": "Bags",
            "product_count": 3,
            "avg_price": 10.0,
            "median_price": 9.0,
            "best_seller_count": 0,
            "avg_stars": None,
            "bought_last_month": 0,
            "avg_discount": None,
        },
        {"category_id": 7, "category_name": None, "product_count": 5, "avg_price": None},
    ]
    frame = category_frame(documents)
    numeric = frame.drop(columns="category_name")
    assert all(pd.api.types.is_numeric_dtype(dtype) for dtype in numeric.dtypes)
    assert frame["category_name"].tolist() == ["(category 7 not yet arrived)", "Bags"]
    assert frame["avg_discount"].isna().all() and frame["avg_stars"].isna().all()

    empty = category_frame([])
    assert empty.empty and list(empty.columns) == CATEGORY_COLUMNS
    assert ranked(empty, "avg_discount", 15).empty
    assert category_choices(empty) == {"All categories": None}


def test_ranking_leaves_out_categories_without_a_value() -> None:
    stats = category_frame(
        [
            {"category_id": 1, "category_name": "a", "product_count": 4, "avg_discount": None},
            {"category_id": 2, "category_name": "b", "product_count": 6, "avg_discount": 0.25},
            {"category_id": 3, "category_name": "c", "product_count": 1, "avg_discount": None},
        ]
    )
    assert ranked(stats, "avg_discount", 15)["category_name"].tolist() == ["b"]
    assert ranked(stats, "avg_stars", 15).empty
    top, other = category_shares(stats, 1, by="avg_discount")
    assert top["category_name"].tolist() == ["b"] and (other.categories, other.products) == (2, 5)
    top, other = category_shares(stats, 2, by="bought_last_month")
    assert top.empty and (other.categories, other.products) == (3, 11)


def test_only_rated_categories_priced_above_zero_go_on_the_log_price_chart() -> None:
    stats = category_frame(
        [
            {"category_id": 1, "category_name": "rated", "product_count": 2, "median_price": 5.0, "avg_stars": 4.0},
            {"category_id": 2, "category_name": "unrated", "product_count": 2, "median_price": 5.0},
            {"category_id": 3, "category_name": "free", "product_count": 2, "median_price": 0.0, "avg_stars": 3.0},
        ]
    )
    assert rated_categories(stats)["category_name"].tolist() == ["rated"]


def test_category_choices_tell_apart_categories_that_share_a_label() -> None:
    stats = category_frame(
        [
            {"category_id": 1, "category_name": "Bags", "product_count": 3},
            {"category_id": 2, "category_name": "Bags", "product_count": 2},
            {"category_id": 3, "category_name": "Toys", "product_count": 1},
        ]
    )
    assert category_choices(stats) == {"All categories": None, "Bags (id 1)": 1, "Bags (id 2)": 2, "Toys": 3}


def test_the_data_browser_refuses_query_operators_as_field_names() -> None:
    with pytest.raises(ValueError, match=r"cannot start with '\$'"):
        browse(None, "products", "$where", "sleep(1000)")  # type: ignore[arg-type]


class RecordingCollection:
    """A collection that encodes each query as pymongo would send it, and keeps it."""

    def __init__(self) -> None:
        self.queries: list[dict[str, Any]] = []

    def find(self, query: dict[str, Any]) -> RecordingCollection:
        bson.encode(query)  # InvalidDocument, OverflowError: what pymongo would raise before sending
        self.queries.append(query)
        return self

    def sort(self, *_args: Any) -> RecordingCollection:
        return self

    def skip(self, _count: int) -> RecordingCollection:
        return self

    def limit(self, _count: int) -> list[dict[str, Any]]:
        return []


def browsed_query(field: str, value: str) -> dict[str, Any]:
    products = RecordingCollection()
    assert browse({"products": products}, "products", field, value) == []  # type: ignore[arg-type]
    [query] = products.queries
    return query


@pytest.mark.parametrize(
    ("field", "value", "query"),
    [
        ("asin", "0316769487", {"asin": {"$in": ["0316769487", 316769487]}}),
        ("category_id", "104", {"category_id": {"$in": ["104", 104]}}),
        ("category_id", "-3", {"category_id": {"$in": ["-3", -3]}}),
        ("id", str(2**63 - 1), {"id": {"$in": [str(2**63 - 1), 2**63 - 1]}}),
        ("id", str(-(2**63)), {"id": {"$in": [str(-(2**63)), -(2**63)]}}),
        ("id", "0" * 30 + "7", {"id": {"$in": ["0" * 30 + "7", 7]}}),
        ("id", str(2**63), {"id": str(2**63)}),
        ("id", "99999999999999999999", {"id": "99999999999999999999"}),
        ("id", "9" * 5000, {"id": "9" * 5000}),
        ("asin", "B014TMV5YE", {"asin": "B014TMV5YE"}),
        ("title", "12.5", {"title": "12.5"}),
        ("asin", "", {}),
        ("", "0316769487", {}),
    ],
)
def test_the_data_browser_matches_digits_as_text_or_as_a_number_that_fits_int64(
    field: str, value: str, query: dict[str, Any]
) -> None:
    assert browsed_query(field, value) == query


def test_the_data_browser_refuses_a_field_name_with_a_nul() -> None:
    products = RecordingCollection()
    with pytest.raises(RefusedQuery, match="cannot contain a NUL character"):
        browse({"products": products}, "products", "asin\x00x", "B014TMV5YE")  # type: ignore[arg-type]
    assert products.queries == []
    assert browsed_query("title", "a\x00b") == {"title": "a\x00b"}, "a NUL in a value is valid BSON"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2**63 - 1, "9223372036854775807"),
        (np.int64(2**63 - 1), "9223372036854775807"),
        (str(2**63 - 1), "9223372036854775807"),
        (9007199254740993, "9007199254740993"),
        (np.uint64(2**64 - 1), "18446744073709551615"),
        (float(2**63), "9223372036854775808"),
    ],
)
def test_an_id_above_2_to_the_53_is_shown_exactly(value: object, shown: str) -> None:
    assert identifier(value) == shown


def test_an_id_that_is_a_fraction_is_not_a_whole_number() -> None:
    assert (identifier(1.5), identifier(1234.0), identifier(-7)) == ("?", "1234", "-7")


def test_big_counts_and_amounts_keep_every_digit() -> None:
    assert count(2**63 - 1) == "9,223,372,036,854,775,807"
    assert count(np.int64(9007199254740993)) == "9,007,199,254,740,993"
    assert count("9007199254740993") == "9,007,199,254,740,993"
    assert money(9007199254740993) == "$9,007,199,254,740,993.00"
    assert decimal(2**63 - 1, 1, " s") == "9,223,372,036,854,775,807.0 s"
    assert (count(1.5), count(2.5), money(2.675), decimal(2.25)) == ("2", "2", "$2.67", "2.2")


def test_an_unnamed_category_keeps_its_exact_id_when_another_has_none() -> None:
    documents = [
        {"category_id": 2**63 - 1, "category_name": None, "product_count": 2},
        {"category_id": 9007199254740993, "category_name": "", "product_count": 1},
        {"category_id": None, "category_name": None, "product_count": 0},
    ]
    frame = category_frame(documents)
    assert frame["category_name"].tolist() == [
        "(category 9223372036854775807 not yet arrived)",
        "(category 9007199254740993 not yet arrived)",
        "(category ? not yet arrived)",
    ]
    assert category_choices(frame) == {
        "All categories": None,
        "(category 9223372036854775807 not yet arrived)": 2**63 - 1,
        "(category 9007199254740993 not yet arrived)": 9007199254740993,
    }


def test_the_pipeline_page_shows_why_the_job_stopped_and_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's document as the job writes it; the page's other reads find MongoDB unreachable, which
    the page says after the job's state."""
    stopped = {
        "state": "stopped",
        "kind": "deterministic",
        "cause": "java.lang.IllegalStateException: Cannot fetch offset 3",
        "message": "Records the job has not read are gone from Kafka (retention or deleted records): batch 1: "
        "ingest-product partition 0 offsets 3-5. To go on without these records, start the job once with "
        "STREAM_FAIL_ON_DATA_LOSS=false (`STREAM_FAIL_ON_DATA_LOSS=false make up`).",
        "command": "STREAM_FAIL_ON_DATA_LOSS=false make up",
        "restarts": 0,
        "warnings": [],
    }
    app = open_page(
        monkeypatch,
        {"MONGO_URI": f"mongodb://127.0.0.1:{closed_port()}/"},
        "Pipeline",
        serving__supervisor_status=lambda _db: stopped,
        serving__pipeline_status=lambda _db: {},
        serving__last_event=lambda _db: {},
    )

    assert not app.exception
    assert {m.label: m.value for m in app.metric} == {"Job": "Stopped", "Last progress": "—"}
    [shown] = [e.value.replace("\\", "") for e in app.error if "stopped" in e.value]  # markdown escapes removed
    assert shown.startswith("The streaming job stopped (deterministic failure): Records the job has not read")
    assert "ingest-product partition 0 offsets 3-5" in shown
    assert "start the job once with STREAM_FAIL_ON_DATA_LOSS=false" in shown
    assert [c.value for c in app.code] == ["STREAM_FAIL_ON_DATA_LOSS=false make up"]
    assert "is unreachable" in app.error[-1].value


def test_cached_passes_keyword_arguments_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def price_distribution(db: str, category_id: int | None = None) -> tuple[str, int | None]:
        return db, category_id

    monkeypatch.setattr(common, "connect", lambda *_: "db")
    monkeypatch.setattr(queries, "price_distribution", price_distribution)
    common._cached_query.clear()
    assert common.cached(queries.price_distribution)(category_id=5) == ("db", 5)
    assert common.cached(queries.price_distribution)(6) == ("db", 6)
    assert common.cached(queries.price_distribution)() == ("db", None)
    common._cached_query.clear()


def test_queries_read_numbers_through_one_helper() -> None:
    assert not hasattr(queries, "with_numbers")


def test_a_lookup_is_the_asin_else_at_most_twenty_title_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[tuple[str, int]] = []
    monkeypatch.setattr(serving, "find_product", lambda _db, asin: {"asin": asin} if asin == "B1" else None)
    monkeypatch.setattr(serving, "search_products", lambda _db, q, limit: (searched.append((q, limit)) or [], None))
    assert queries.lookup_products(None, " b1 ") == [{"asin": "B1"}] and not searched
    assert queries.lookup_products(None, "kettle") == [] and searched == [("kettle", queries.MAX_MATCHES)]


def test_a_cut_price_history_takes_its_first_price_from_the_first_version(monkeypatch: pytest.MonkeyPatch) -> None:
    newest = [{"arrived_at": datetime(2024, 5, 2, h), "price": 10.0 + h, "_v": f"2.{h}"} for h in range(3)]
    monkeypatch.setattr(serving, "price_history", lambda _db, _asin: newest)
    monkeypatch.setattr(
        serving, "first_price_version", lambda _db, _asin: {"arrived_at": datetime(2024, 5, 1), "price": 4.0, "_v": "1"}
    )
    monkeypatch.setattr(serving, "MAX_PRICE_VERSIONS", 3)
    cut = queries.price_history(None, "B1")
    assert (cut.first_price, cut.cut, len(cut.versions)) == (4.0, True, 3)
    monkeypatch.setattr(serving, "MAX_PRICE_VERSIONS", 4)
    whole = queries.price_history(None, "B1")
    assert (whole.first_price, whole.cut) == (10.0, False)


def test_category_history_is_read_from_the_newest_point_back_over_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    newest = datetime(2024, 5, 8, 12)
    reads: list[object] = []
    monkeypatch.setattr(serving, "newest_category_point", lambda _db, _ids: newest)
    monkeypatch.setattr(serving, "category_history", lambda _db, _ids, since: reads.append(since) or [])
    queries.category_history(None, (1, 2), 7 * 86_400)
    queries.category_history(None, (1, 2), None)
    assert reads == [datetime(2024, 5, 1, 12), None]


def test_a_title_search_without_a_match_shows_the_words_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page(
        monkeypatch,
        {"MONGO_URI": f"mongodb://127.0.0.1:{closed_port()}/"},
        "Trends",
        serving__find_product=lambda _db, _asin: None,
        serving__search_products=lambda _db, q, limit: ([], None),
    )
    app.text_input(key="history_lookup").input("[x](http://e.example)").run()
    [shown] = [info.value for info in app.info if info.value.startswith("No product")]
    assert shown == 'No product has the ASIN or title words "\\[x\\](http://e.example)".'


def test_a_running_job_without_progress_for_ten_minutes_may_be_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    app = open_page(
        monkeypatch,
        {"MONGO_URI": f"mongodb://127.0.0.1:{closed_port()}/"},
        "Pipeline",
        serving__supervisor_status=lambda _db: {"state": "running", "updated_at": now - timedelta(hours=2)},
        serving__pipeline_status=lambda _db: {"batch_id": 9, "updated_at": now - timedelta(minutes=42, seconds=5)},
        serving__last_event=lambda _db: {"at": now - timedelta(minutes=50)},
    )

    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Job"] == "Running? no progress for 42 min"
    assert app.warning[0].value == "Running? no progress for 42 min (the job may be stopped: `make status`)."
    assert any(c.value.startswith("Supervisor: running at ") and "2.0 h ago" in c.value for c in app.caption)
