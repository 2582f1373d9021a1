"""Every dashboard page on the edge data the pipeline can produce: an empty database, one product, optional
fields left out everywhere, no list price above a price, a category without products, products whose category
has not arrived, and URLs that are not http(s).

The documents are made the way the streaming job makes them (its own parse, validate, enrich and gold
functions on Kafka-shaped records, written by its MongoSink) into a real MongoDB-wire server, one database per
test; the dashboard runs under Streamlit's AppTest against it."""

from __future__ import annotations

import base64
import importlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession
from streamlit.testing.v1 import AppTest

from dashboard.formatting import markdown_text
from lakehouse.mongo import mongo_client
from spark_jobs import gold
from spark_jobs.mongo_sink import MongoSink
from spark_jobs.monitoring import status_document
from spark_jobs.streaming_job import category_documents, product_documents, rows_as_dicts
from spark_jobs.transforms import (
    enrich_with_categories,
    parse_categories,
    parse_products,
    quarantined,
    to_bronze,
    valid_categories,
    valid_products,
)
from stack.services import LocalStack
from tests.conftest import PROJECT_ROOT, load_dashboard

pytestmark = pytest.mark.integration

KAFKA_ROWS = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
BATCH_ID = 3


@dataclass
class ServingDatabase:
    """A database of its own on the stack's MongoDB-wire server, filled as the streaming job fills it."""

    spark: SparkSession
    stack: LocalStack
    db: Database

    @property
    def environment(self) -> dict[str, str]:
        return {"MONGO_URI": self.stack.settings.mongo_uri, "MONGO_DB": self.db.name}

    def kafka_records(self, topic: str, key: str, records: list[dict[str, Any]]) -> DataFrame:
        sent = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        rows = [
            (topic, 0, offset, sent, str(record[key]).encode(), json.dumps(record).encode())
            for offset, record in enumerate(records)
        ]
        return to_bronze(self.spark.createDataFrame(rows, KAFKA_ROWS))

    def serve(self, products: list[dict[str, Any]], categories: list[dict[str, Any]]) -> None:
        """One micro-batch of the job: categories, products, gold and the progress status."""
        topics = self.stack.settings
        checked_categories = parse_categories(self.kafka_records(topics.kafka_topic_categories, "id", categories))
        checked_products = parse_products(self.kafka_records(topics.kafka_topic_products, "asin", products))
        assert quarantined(checked_categories).count() == quarantined(checked_products).count() == 0
        names = valid_categories(checked_categories)
        silver = enrich_with_categories(valid_products(checked_products), names)
        sink = MongoSink(self.db)
        sink.setup()
        if categories:
            sink.upsert_categories(rows_as_dicts(category_documents(names)))
        if products:
            sink.upsert_products(rows_as_dicts(product_documents(silver)))
            for name, frame in gold_aggregates(silver, names).items():
                sink.replace_gold(name, rows_as_dicts(frame))
        sink.write_status(status_document(progress(topics.kafka_topic_products, len(products)), quarantined=0))


def gold_aggregates(products: DataFrame, categories: DataFrame) -> dict[str, DataFrame]:
    """What IngestJob._refresh_gold writes, from the same gold functions."""
    return {
        "category_stats": gold.category_stats(products),
        "price_buckets": gold.price_buckets(products),
        "rating_distribution": gold.rating_distribution(products),
        "summary": gold.summary(products, categories),
    }


def progress(topic: str, rows: int) -> SimpleNamespace:
    """A StreamingQueryProgress as the job's listener receives it: the batch read everything in Kafka."""
    offsets = json.dumps({topic: {"0": rows}})
    return SimpleNamespace(
        batchId=BATCH_ID,
        numInputRows=rows,
        inputRowsPerSecond=float(rows),
        processedRowsPerSecond=2.0 * rows,
        batchDuration=1500,
        timestamp="2024-05-01T12:00:00.000Z",
        sources=[SimpleNamespace(endOffset=offsets, latestOffset=offsets)],
    )


@pytest.fixture
def serving(infrastructure: LocalStack, spark: SparkSession) -> Iterator[ServingDatabase]:
    client = mongo_client(infrastructure.settings.mongo_uri)
    name = f"dashboard_{uuid.uuid4().hex[:8]}"
    yield ServingDatabase(spark, infrastructure, client[name])
    client.drop_database(name)
    client.close()


@pytest.fixture
def open_dashboard(serving: ServingDatabase, monkeypatch: pytest.MonkeyPatch) -> Callable[[], AppTest]:
    return lambda: load_dashboard(monkeypatch, serving.environment)


def dashboard_with(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], **replaced: Any) -> AppTest:
    """As load_dashboard (which drops the project modules first), with some of dashboard.queries' functions
    replaced in the fresh module the app then imports."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for module in [m for m in sys.modules if m.split(".")[0] in ("lakehouse", "dashboard")]:
        monkeypatch.delitem(sys.modules, module)
    queries = importlib.import_module("dashboard.queries")
    for name, replacement in replaced.items():
        monkeypatch.setattr(queries, name, replacement)
    return AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60).run()


def product(asin: str, price: float, category_id: int, **fields: Any) -> dict[str, Any]:
    """A product record with only the required fields, plus `fields`."""
    required = {"asin": asin, "title": f"Product {asin}", "stars": 0.0, "reviews": 0, "price": price}
    return required | {"category_id": category_id} | fields


def tab(app: AppTest, label: str) -> Any:
    [found] = [t for t in app.tabs if t.label == label]
    return found


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def infos(app: AppTest, label: str) -> list[str]:
    return [info.value for info in tab(app, label).info]


def values(array: list | dict) -> list:
    """A Plotly trace array: a plain list, or (Plotly 6) base64 bytes with a dtype."""
    if isinstance(array, list):
        return array
    return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()


def charts(app: AppTest) -> dict[str, dict]:
    """Every chart's first trace, by the start of its title (up to the first ' (' or ' —')."""
    found = {}
    for element in app.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        title = spec["layout"]["title"]["text"].split(" (")[0].split(" —")[0]
        found[title] = spec["data"][0]
    return found


def assert_no_page_failed(app: AppTest) -> None:
    assert not app.exception
    assert not [e.value for e in app.error]


def search(app: AppTest, text: str) -> AppTest:
    return app.text_input(key="product_lookup").input(text).run()


def test_an_empty_database_renders_every_page(open_dashboard: Callable[[], AppTest]) -> None:
    app = open_dashboard()

    assert_no_page_failed(app)
    assert infos(app, "Overview")[0].startswith("No products in MongoDB yet.")
    assert infos(app, "Categories") == ["No category statistics yet: they are computed once products arrive."]
    assert infos(app, "Pipeline") == ["The streaming job has not finished a micro-batch yet."]
    assert [c.value for c in tab(app, "Data browser").caption] == ["0 document(s) on this page"]
    search(app, "B000000001")
    assert_no_page_failed(app)
    assert [c.value for c in tab(app, "Products").caption] == ["0 product(s)"]


def test_no_list_price_above_a_price_leaves_every_page_working(
    serving: ServingDatabase, open_dashboard: Callable[[], AppTest]
) -> None:
    """The issue's data: no discount anywhere (72% of the real sample has listPrice 0.0, here all do or less)."""
    serving.serve(
        [
            product("B000000001", 80.0, 1, listPrice=0.0, stars=4.0, reviews=10, boughtInLastMonth=50),
            product("B000000002", 20.0, 1, listPrice=20.0, stars=5.0, reviews=3, isBestSeller=True),
            product("B000000003", 5.0, 2, listPrice=4.0, stars=3.0, reviews=1, boughtInLastMonth=300),
        ],
        [{"id": 1, "category_name": "Luggage"}, {"id": 2, "category_name": "Toys"}],
    )
    app = open_dashboard()

    assert_no_page_failed(app)
    assert infos(app, "Categories") == ["No discounts to show: no product has a list price above its price."]
    shown = charts(app)
    assert values(shown["Bought last month"]["y"]) == [300, 50]
    assert values(shown["Best sellers per category"]["y"]) == [1, 0]
    assert values(shown["Rating vs. price per category"]["y"]) == [4.5, 3.0]
    assert "Average discount off list price" not in shown
    assert metrics(app)["Last batch"] == f"#{BATCH_ID}"
    assert metrics(app)["Lag ingest-product"] == "0"
    assert [c.value for c in tab(app, "Data browser").caption] == ["3 document(s) on this page"]
    search(app, "B000000003")
    assert tab(app, "Products").markdown[0].value == (
        "**Product B000000003**  \nB000000003 · Toys · \\$5.00 · 3.0★ (1 reviews)"
    )


def test_a_single_product_with_every_optional_field_left_out(
    serving: ServingDatabase, open_dashboard: Callable[[], AppTest]
) -> None:
    """No imgUrl, productURL, listPrice, isBestSeller, boughtInLastMonth, no reviews: avg_stars and avg_discount
    are null in every gold document."""
    serving.serve([product("B000000001", 19.99, 7, title="Pocket Knife")], [{"id": 7, "category_name": "Tools"}])
    stats = serving.db.gold_category_stats.find_one({}, {"avg_stars": 1, "avg_discount": 1, "_id": 0})
    assert stats == {"avg_stars": None, "avg_discount": None}
    app = open_dashboard()

    assert_no_page_failed(app)
    shown = metrics(app)
    assert {k: shown[k] for k in ("Products", "Categories", "Best sellers", "Average price", "Quarantined")} == {
        "Products": "1",
        "Categories": "1",
        "Best sellers": "0",
        "Average price": "$19.99",
        "Quarantined": "0",
    }
    prices = charts(app)["Price distribution"]
    assert (values(prices["x"]), values(prices["y"])) == (["$10-20"], [1])
    assert values(charts(app)["Products per category"]["x"]) == [1]
    table = app.dataframe[0].value
    assert table.to_dict("list") == {
        "category_name": ["Tools"],
        "product_count": [1],
        "avg_price": [19.99],
        "median_price": [19.99],
    }
    assert infos(app, "Categories") == [
        "No rating-vs-price chart yet: no category has a reviewed product with a price above zero.",
        "No discounts to show: no product has a list price above its price.",
    ]
    assert values(charts(app)["Best sellers per category"]["y"]) == [0]
    search(app, "pocket")
    assert not app.get("imgs")
    assert tab(app, "Products").markdown[0].value == (
        "**Pocket Knife**  \nB000000001 · Tools · \\$19.99 · 0.0★ (0 reviews)"
    )


def test_a_category_without_products_and_products_whose_category_has_not_arrived(
    serving: ServingDatabase, open_dashboard: Callable[[], AppTest]
) -> None:
    serving.serve(
        [
            product("B000000001", 30.0, 1),
            product("B000000002", 40.0, 1),
            product("B000000003", 3.0, 3),
            product("B000000004", 600.0, 4),
        ],
        [{"id": 1, "category_name": "Luggage"}, {"id": 2, "category_name": "Empty shelf"}],
    )
    app = open_dashboard()

    assert_no_page_failed(app)
    assert (metrics(app)["Products"], metrics(app)["Categories"]) == ("4", "2")
    table = app.dataframe[0].value
    assert dict(zip(table["category_name"], table["product_count"], strict=True)) == {
        "Luggage": 2,
        "(category 3 not yet arrived)": 1,
        "(category 4 not yet arrived)": 1,
    }
    chooser = app.selectbox(key="price_category")
    assert chooser.options == [
        "All categories",
        "Luggage",
        "(category 3 not yet arrived)",
        "(category 4 not yet arrived)",
    ]
    chooser.select("(category 4 not yet arrived)").run()
    assert_no_page_failed(app)
    prices = charts(app)["Price distribution"]
    assert (values(prices["x"]), values(prices["y"])) == (["$500-1,000"], [1])
    app.text_input(key="category_lookup").input("not yet").run()
    [found] = [d.value for d in app.dataframe if "avg_discount" in d.value.columns]
    assert found["category_id"].tolist() == [3, 4]
    search(app, "B000000003")
    assert "B000000003 · category not yet arrived · \\$3.00" in tab(app, "Products").markdown[0].value


def test_urls_that_are_not_http_are_never_links_or_images(
    serving: ServingDatabase, open_dashboard: Callable[[], AppTest]
) -> None:
    """Documents written before the API and the job refused such URLs, or by another writer."""
    serving.serve(
        [
            product(
                f"B00000000{i}",
                10.0,
                1,
                title=f"Knife {i}",
                imgUrl=f"https://m.media-amazon.com/{i}.jpg",
                productURL=f"https://www.amazon.com/dp/B00000000{i}",
            )
            for i in (1, 2, 3)
        ],
        [{"id": 1, "category_name": "Tools"}],
    )
    unsafe = {
        "B000000002": {"imgUrl": "javascript:alert(1)", "productURL": "javascript:alert(1)"},
        "B000000003": {"imgUrl": "/etc/passwd", "productURL": "data:text/html,<script>alert(1)</script>"},
    }
    for asin, urls in unsafe.items():
        serving.db.products.update_one({"_id": asin}, {"$set": urls})
    app = search(open_dashboard(), "knife")

    assert_no_page_failed(app)
    assert [image.proto.imgs[0].url for image in app.get("imgs")] == ["https://m.media-amazon.com/1.jpg"]
    assert [m.value.split("  \n")[0] for m in tab(app, "Products").markdown] == [
        "**[Knife 1](https://www.amazon.com/dp/B000000001)**",
        "**Knife 2**",
        "**Knife 3**",
    ]


def test_a_failing_page_shows_its_error_and_the_other_tabs_still_render(
    serving: ServingDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the Categories page (its rating chart's selection raises) blanks no other tab."""
    serving.serve([product("B000000001", 12.0, 1, title="Tent")], [{"id": 1, "category_name": "Camping"}])
    message = "Column 'avg_stars' has dtype object, cannot use method 'nlargest' with this dtype [see](javascript:x)"

    def broken(_stats: object) -> None:
        raise TypeError(message)

    app = dashboard_with(monkeypatch, serving.environment, rated_categories=broken)

    assert [e.value for e in tab(app, "Categories").error] == [f"This page failed: TypeError: {markdown_text(message)}"]
    assert len(tab(app, "Categories").exception) == 1, "the details, folded in an expander"
    assert not [
        e.value for label in ("Overview", "Products", "Pipeline", "Data browser") for e in tab(app, label).error
    ]
    assert (metrics(app)["Products"], metrics(app)["Last batch"]) == ("1", f"#{BATCH_ID}")
    assert [c.value for c in tab(app, "Data browser").caption] == ["1 document(s) on this page"]
    search(app, "tent")
    assert tab(app, "Products").markdown[0].value.startswith("**Tent**")
