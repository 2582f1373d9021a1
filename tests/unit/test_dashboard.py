from __future__ import annotations

import socket
from datetime import datetime

import pandas as pd
import pytest

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
    redacted_uri,
    safe_url,
    seconds_from_ms,
)
from dashboard.queries import (
    CATEGORY_COLUMNS,
    browse,
    category_choices,
    category_frame,
    ranked,
    rated_categories,
    top_categories,
)
from tests.conftest import load_dashboard


def test_top_categories_sum_the_rest_into_other() -> None:
    stats = pd.DataFrame(
        {"category_name": ["a", "b", "c", "d"], "product_count": [5, 9, 1, 3], "best_seller_count": [4, 0, 0, 1]}
    )
    assert top_categories(stats, 2).to_dict("list") == {
        "category_name": ["b", "a", "Other"],
        "product_count": [9, 5, 4],
    }
    assert top_categories(stats, 1, by="best_seller_count").to_dict("list") == {
        "category_name": ["a", "Other"],
        "product_count": [5, 13],
    }
    assert top_categories(stats, 4)["category_name"].tolist() == ["b", "a", "d", "c"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_mongodb_gets_a_message_not_a_stack_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    app = load_dashboard(monkeypatch, {"MONGO_URI": f"mongodb://127.0.0.1:{port}/"})
    assert not app.exception
    assert len(app.error) == 4, "every page that reads says it (Products reads only once searched)"
    assert all(f"127.0.0.1:{port}/ is unreachable (ServerSelectionTimeoutError)" in e.value for e in app.error)


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
    assert top_categories(stats, 1, by="avg_discount").to_dict("list") == {
        "category_name": ["b", "Other"],
        "product_count": [6, 5],
    }
    assert top_categories(stats, 2, by="bought_last_month").to_dict("list") == {
        "category_name": ["Other"],
        "product_count": [11],
    }


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
