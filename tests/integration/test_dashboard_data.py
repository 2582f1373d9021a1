"""Every dashboard page on the edge data the pipeline can produce: an empty database, one product, optional
fields left out everywhere, no list price above a price, a category without products, products whose category
has not arrived, URLs that are not http(s), a price history of one version, pipeline events without lag.

Products, categories and gold are made the way the streaming job makes them (its own parse, validate, enrich
and gold functions on Kafka-shaped records; products and categories written by its MongoSink) into a real
MongoDB-wire server, one database per test; the time series (price_history, gold_category_history,
gold_movers, pipeline_events) are inserted in the catalog's shapes. Each page is opened on its own under
Streamlit's AppTest, as st.navigation runs it."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.database import Database
from pyspark.sql import DataFrame, SparkSession
from streamlit.testing.v1 import AppTest

from dashboard.formatting import markdown_text
from lakehouse import catalog
from lakehouse.mongo import mongo_client
from spark_jobs import gold
from spark_jobs.mongo_sink import MongoSink
from spark_jobs.monitoring import status_document
from spark_jobs.serving_writer import category_documents, product_documents, rows_as_dicts
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
from tests.dashboard_pages import (
    assert_no_page_failed,
    captions,
    charts,
    infos,
    metrics,
    open_page,
    series,
    tick_labels,
)

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
            for served, frame in gold_aggregates(silver, names).items():
                self.replace(served, rows_as_dicts(frame))
        sink.write_status(status_document(progress(topics.kafka_topic_products, len(products)), quarantined=0))

    def replace(self, served: catalog.ServingCollection, documents: list[dict[str, Any]]) -> None:
        """The collection's contents replaced by `documents`, as the job replaces a gold collection."""
        self.db[served.name].delete_many({})
        if documents:
            self.db[served.name].insert_many(documents)

    def insert(self, served: catalog.ServingCollection, documents: list[dict[str, Any]]) -> None:
        self.db[served.name].insert_many(documents)


def gold_aggregates(products: DataFrame, categories: DataFrame) -> dict[catalog.ServingCollection, DataFrame]:
    """What IngestPipeline.refresh_gold writes, from the same gold functions."""
    return {
        catalog.GOLD_CATEGORY_STATS: gold.category_stats(products),
        catalog.GOLD_PRICE_BUCKETS: gold.price_buckets(products),
        catalog.GOLD_RATING_DISTRIBUTION: gold.rating_distribution(products),
        catalog.GOLD_SUMMARY: gold.summary(products, categories),
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
def open_dashboard(serving: ServingDatabase, monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """Opens one page (by its navigation title) on the test's database, after `replaced` functions."""
    return lambda page="Overview", **replaced: open_page(monkeypatch, serving.environment, page, **replaced)


def product(asin: str, price: float, category_id: int, **fields: Any) -> dict[str, Any]:
    """A product record with only the required fields, plus `fields`."""
    required = {"asin": asin, "title": f"Product {asin}", "stars": 0.0, "reviews": 0, "price": price}
    return required | {"category_id": category_id} | fields


def search(app: AppTest, text: str) -> AppTest:
    return app.text_input(key="product_lookup").input(text).run()


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def version(asin: str, day: int, price: float, list_price: float | None = None, **fields: Any) -> dict[str, Any]:
    """A price_history document: the product's version `day` (arrived that many days after 2024-05-01)."""
    v = f"{1714564800000 + day * 86_400_000:013d}.{day:019d}.{0:010d}"
    arrived = datetime(2024, 5, 1, 12, tzinfo=UTC) + timedelta(days=day)
    document = {"_id": f"{asin}@{v}", "asin": asin, "arrived_at": arrived, "price": price, "listPrice": list_price}
    return document | {"title": f"Product {asin}", "category_id": 1, "_v": v} | fields


def point(category_id: int, name: str, hour: float, count: int, avg: float | None, **fields: Any) -> dict[str, Any]:
    """A gold_category_history point of the bucket starting `hour` hours after 2024-05-01 12:00 UTC."""
    at = datetime(2024, 5, 1, 12, tzinfo=UTC) + timedelta(hours=hour)
    document = {"_id": f"{category_id}@{int(at.timestamp())}", "category_id": category_id, "category_name": name}
    return document | {"at": at, "product_count": count, "avg_price": avg, "median_price": avg} | fields


def event(batch_id: int, minutes_ago: float, rows: int, **fields: Any) -> dict[str, Any]:
    """A pipeline_events document of a batch that finished `minutes_ago` minutes ago."""
    finished = ago(minutes=minutes_ago)
    return {
        "_id": f"amazon-lakehouse-ingest-test:{batch_id}",
        "source": "stream",
        "batch_id": batch_id,
        "started_at": finished - timedelta(seconds=2),
        "at": finished,
        "input_rows": rows,
        "rows_per_second": rows / 2,
        "seconds": 2.0,
        "steps": {"read": 0.5, "bronze": 0.5, "mongo": 1.0},
        "quarantined": 0,
        "rescued": 0,
        "newest_record_ts": finished - timedelta(seconds=3),
        "freshness_seconds": 3.0,
    } | fields


def test_an_empty_database_renders_every_page(open_dashboard: Callable[..., AppTest]) -> None:
    pages = {name: open_dashboard(name) for name in PAGE_NAMES}
    for app in pages.values():
        assert_no_page_failed(app)
    assert infos(pages["Overview"])[0].startswith("No products in MongoDB yet.")
    assert infos(pages["Categories"]) == ["No category statistics yet: they are computed once products arrive."]
    trends = infos(pages["Trends"])
    assert [info.split(":")[0] for info in trends] == [
        "No categories yet, so no category trends. `make run` fills it",
        "No product has changed price in the last 24h yet. `make run` fills it",
        "No category has changed price in the last 24h yet. `make run` fills it",
    ]
    assert metrics(pages["Pipeline"]) == {"Job": "Not started", "Last progress": "—"}
    assert infos(pages["Pipeline"]) == [
        "The streaming job has not finished a micro-batch yet.",
        "No micro-batch finished in the last 1 h: the job runs a batch when records arrive "
        "(`make run` sends the sample; `python client/api_client.py` sends more).",
        "No record was quarantined in the last 1 h.",
    ]
    assert captions(pages["Data browser"]) == ["0 document(s) on this page"]
    assert captions(search(pages["Products"], "B000000001")) == ["0 product(s)"]
    lookup = pages["Trends"].text_input(key="history_lookup").input("B000000001").run()
    assert_no_page_failed(lookup)
    assert infos(lookup)[0] == 'No product has the ASIN or title words "B000000001".'


PAGE_NAMES = ("Overview", "Categories", "Products", "Trends", "Pipeline", "Data browser")


def test_no_list_price_above_a_price_leaves_every_page_working(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
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
    categories = open_dashboard("Categories")

    assert_no_page_failed(categories)
    assert infos(categories) == ["No discounts to show: no product has a list price above its price."]
    shown = charts(categories)
    assert shown["Bought last month"].values("y") == [300, 50]
    assert shown["Bought last month"].encoding("x")["sort"] is None, "the largest first, as ranked"
    assert shown["Best sellers per category"].values("y") == [1, 0]
    rating = shown["Rating vs. price per category"]
    assert rating.values("y") == [4.5, 3.0]
    assert rating.encoding("x")["scale"] == {"type": "log", "domain": [5, 50]}
    assert rating.encoding("x")["axis"]["values"] == [5, 10, 20, 50]
    assert list(tick_labels(rating).values()) == ["$5", "$10", "$20", "$50"], "round dollars, not '8 9 10 2 3'"
    assert "Average discount off list price" not in shown
    pipeline = open_dashboard("Pipeline")
    assert_no_page_failed(pipeline)
    assert metrics(pipeline)["Last batch"] == f"#{BATCH_ID}"
    assert metrics(pipeline)["Lag ingest-product"] == "0"
    assert metrics(pipeline)["Job"] == "Running"
    assert captions(open_dashboard("Data browser")) == ["3 document(s) on this page"]
    found = search(open_dashboard("Products"), "B000000003")
    assert found.markdown[0].value == "**Product B000000003**  \nB000000003 · Toys · \\$5.00 · 3.0★ (1 reviews)"


def test_a_single_product_with_every_optional_field_left_out(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
) -> None:
    """No imgUrl, productURL, listPrice, isBestSeller, boughtInLastMonth, no reviews: avg_stars and avg_discount
    are null in every gold document; its price history is one version without a list price."""
    serving.serve([product("B000000001", 19.99, 7, title="Pocket Knife")], [{"id": 7, "category_name": "Tools"}])
    stats = serving.db[catalog.GOLD_CATEGORY_STATS.name].find_one({}, {"avg_stars": 1, "avg_discount": 1, "_id": 0})
    assert stats == {"avg_stars": None, "avg_discount": None}
    serving.insert(catalog.PRICE_HISTORY, [version("B000000001", 0, 19.99, title="Pocket Knife", category_id=7)])
    serving.insert(
        catalog.GOLD_CATEGORY_HISTORY, [point(7, "Tools", 0, 1, 19.99, best_seller_count=None, median_price=None)]
    )
    overview = open_dashboard("Overview")

    assert_no_page_failed(overview)
    shown = metrics(overview)
    assert {k: shown[k] for k in ("Products", "Categories", "Best sellers", "Average price", "Quarantined")} == {
        "Products": "1",
        "Categories": "1",
        "Best sellers": "0",
        "Average price": "$19.99",
        "Quarantined": "0",
    }
    prices = charts(overview)["Price distribution"]
    assert (prices.values("x"), prices.values("y")) == (["$10-20"], [1])
    shares = charts(overview)["Products per category"]
    assert (shares.values("x"), shares.values("y")) == ([1.0], ["Tools"])
    assert shares.encoding("x")["axis"]["format"] == ".1~%" and shares.values("text") == [1]
    assert not [c for c in captions(overview) if c.startswith("Other:")], "no other category to summarise"
    assert overview.dataframe[0].value.to_dict("list") == {
        "category_name": ["Tools"],
        "product_count": [1],
        "avg_price": [19.99],
        "median_price": [19.99],
    }
    categories = open_dashboard("Categories")
    assert infos(categories) == [
        "No rating-vs-price chart yet: no category has a reviewed product with a price above zero.",
        "No discounts to show: no product has a list price above its price.",
    ]
    assert charts(categories)["Best sellers per category"].values("y") == [0]
    found = search(open_dashboard("Products"), "pocket")
    assert not found.get("imgs")
    assert found.markdown[0].value == "**Pocket Knife**  \nB000000001 · Tools · \\$19.99 · 0.0★ (0 reviews)"

    trends = open_dashboard("Trends").text_input(key="history_lookup").input("b000000001").run()
    assert_no_page_failed(trends)
    assert metrics(trends) == {"Versions": "1", "First price": "$19.99", "Current price": "$19.99", "Change": "+0.0%"}
    history = series(trends, "Price history")
    assert history["Price"].values("y") == [19.99] and history["Price"].mark["interpolate"] == "step-after"
    [no_list_price] = history["List price"].values("y")
    assert no_list_price is None or math.isnan(no_list_price)
    assert trends.multiselect(key="trend_categories").value == ["Tools"]
    assert series(trends, "Average price")["Tools"].values("y") == [19.99]
    [no_count] = series(trends, "Best sellers")["Tools"].values("y")
    assert no_count is None or math.isnan(no_count), "a null count is a gap, not a failure"


def test_a_category_without_products_and_products_whose_category_has_not_arrived(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
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
    app = open_dashboard("Overview")

    assert_no_page_failed(app)
    assert (metrics(app)["Products"], metrics(app)["Categories"]) == ("4", "2")
    table = app.dataframe[0].value
    assert dict(zip(table["category_name"], table["product_count"], strict=True)) == {
        "Luggage": 2,
        "(category 3 not yet arrived)": 1,
        "(category 4 not yet arrived)": 1,
    }
    app.slider(key="top_n").set_value(5).run()
    assert charts(app)["Products per category"].values("x") == [0.5, 0.25, 0.25]
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
    assert (prices.values("x"), prices.values("y")) == (["$500-1,000"], [1])
    categories = open_dashboard("Categories").text_input(key="category_lookup").input("not yet").run()
    [found] = [d.value for d in categories.dataframe if "avg_discount" in d.value.columns]
    assert found["category_id"].tolist() == [3, 4]
    found = search(open_dashboard("Products"), "B000000003")
    assert "B000000003 · category not yet arrived · \\$3.00" in found.markdown[0].value
    trends = open_dashboard("Trends")
    assert_no_page_failed(trends)
    assert trends.multiselect(key="trend_categories").options == [
        "Luggage",
        "(category 3 not yet arrived)",
        "(category 4 not yet arrived)",
    ]
    assert infos(trends)[0].startswith("No category history yet: the streaming job keeps one point per category")


def test_urls_that_are_not_http_are_never_links_or_images(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
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
        serving.db[catalog.PRODUCTS.name].update_one({"_id": asin}, {"$set": urls})
    app = search(open_dashboard("Products"), "knife")

    assert_no_page_failed(app)
    assert [image.proto.imgs[0].url for image in app.get("imgs")] == ["https://m.media-amazon.com/1.jpg"]
    assert [m.value.split("  \n")[0] for m in app.markdown] == [
        "**[Knife 1](https://www.amazon.com/dp/B000000001)**",
        "**Knife 2**",
        "**Knife 3**",
    ]


def test_a_failing_page_shows_its_error_and_the_other_pages_still_render(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
) -> None:
    """A bug in the Categories page (its rating chart's selection raises) blanks no other page."""
    serving.serve([product("B000000001", 12.0, 1, title="Tent")], [{"id": 1, "category_name": "Camping"}])
    message = "Column 'avg_stars' has dtype object, cannot use method 'nlargest' with this dtype [see](javascript:x)"

    def broken(_stats: object) -> None:
        raise TypeError(message)

    pages = {name: open_dashboard(name, rated_categories=broken) for name in PAGE_NAMES}

    assert [e.value for e in pages["Categories"].error] == [f"This page failed: TypeError: {markdown_text(message)}"]
    assert len(pages["Categories"].exception) == 1, "the details, folded in an expander"
    assert pages["Categories"].title[0].value == "Categories", "the navigation and title still render"
    for name in PAGE_NAMES:
        if name != "Categories":
            assert_no_page_failed(pages[name])
    assert (metrics(pages["Overview"])["Products"], metrics(pages["Pipeline"])["Last batch"]) == ("1", f"#{BATCH_ID}")
    assert captions(pages["Data browser"]) == ["1 document(s) on this page"]
    assert search(pages["Products"], "tent").markdown[0].value.startswith("**Tent**")


def test_the_trends_page_draws_a_price_history_category_trends_and_movers(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
) -> None:
    sizes = {1: 60, 2: 50, 3: 40, 4: 30, 5: 20, 6: 10}
    serving.serve(
        [product(f"B{c}{i:08d}", 10.0 * c, c, title=f"Kettle {c} {i}") for c, n in sizes.items() for i in range(n)],
        [{"id": c, "category_name": f"Category {c}"} for c in sizes],
    )
    serving.insert(
        catalog.PRICE_HISTORY,
        [version("B100000000", 0, 10.0, 15.0), version("B100000000", 1, 12.0, 15.0), version("B100000000", 3, 9.0)],
    )
    serving.insert(
        catalog.GOLD_CATEGORY_HISTORY,
        [point(c, f"Category {c}", h, sizes[c], 10.0 * c + h, best_seller_count=h) for c in sizes for h in (0, 0.5, 2)],
    )
    serving.insert(catalog.GOLD_MOVERS, movers("24h") + movers("7d"))
    app = open_dashboard("Trends")
    assert_no_page_failed(app)

    picker = app.multiselect(key="trend_categories")
    assert picker.value == [f"Category {c}" for c in (1, 2, 3, 4, 5)], "the five largest by product count"
    assert picker.max_selections == 5
    average = series(app, "Average price")
    assert sorted(average) == [f"Category {c}" for c in (1, 2, 3, 4, 5)]
    assert average["Category 2"].values("y") == [20.0, 20.5, 22.0]
    first = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert average["Category 2"].values("x") == [first, first + timedelta(minutes=30), first + timedelta(hours=2)]
    assert average["Category 2"].encoding("x")["scale"] == {"type": "utc"}, "drawn in UTC in every time zone"
    app.radio(key="trend_resolution").set_value("hour").run()
    assert series(app, "Average price")["Category 2"].values("y") == [20.5, 22.0], "the hour's last point"
    assert series(app, "Best sellers")["Category 1"].values("y") == [0.5, 2.0]

    moved = charts(app)["Products whose price moved most"]
    assert moved.encoding("y")["sort"] == "-x", "the largest rise on top, the largest fall at the bottom"
    assert moved.encoding("color")["scale"] == {"domain": ["up", "down"], "range": ["#2ca02c", "#d62728"]}
    up = moved.series()["up"]
    bars = ["Kettle 24h up 1 · B100000001", "Kettle 24h up 2 · B100000002"]
    assert (up.values("y"), up.values("x")) == (bars, [50.0, 20.0])
    assert up.data["start_price"].tolist() == [10.0, 10.0], "the table's facts in the tooltip"
    app.radio(key="movers_window").set_value("7d").run()
    down = series(app, "Categories whose average price moved most")["down"]
    assert down.values("y") == ["Category 7d down 1 (id 3)"]
    app.radio(key="movers_window").set_value("1h").run()
    assert infos(app)[0].startswith("No product has changed price in the last 1h yet. `make run` fills it")

    app.text_input(key="history_lookup").input("kettle 1 1").run()
    assert app.selectbox(key="history_product").options[:2] == ["Kettle 1 0 · B100000000", "Kettle 1 1 · B100000001"]
    assert "20 products match (the first 20)." in captions(app)
    app.text_input(key="history_lookup").input("B100000000").run()
    assert_no_page_failed(app)
    assert metrics(app) == {"Versions": "3", "First price": "$10.00", "Current price": "$9.00", "Change": "-10.0%"}
    history = series(app, "Price history")
    assert history["Price"].values("y") == [10.0, 12.0, 9.0]
    assert history["Price"].mark["interpolate"] == "step-after"
    assert history["List price"].values("y")[:2] == [15.0, 15.0]


def movers(window: str) -> list[dict[str, Any]]:
    """gold_movers documents of `window`: two products up, one category down."""
    seconds = {"1h": 3600, "24h": 86_400, "7d": 604_800, "30d": 2_592_000}[window]
    until = datetime(2024, 5, 4, 12, tzinfo=UTC)
    common = {"window": window, "window_seconds": seconds, "since": until - timedelta(seconds=seconds), "until": until}
    rows = [("product", "up", 1, "B100000001", 10.0, 15.0), ("product", "up", 2, "B100000002", 10.0, 12.0)]
    rows.append(("category", "down", 1, "3", 40.0, 30.0))
    return [
        common
        | {
            "_id": f"{kind}:{window}:{direction}:{rank}",
            "kind": kind,
            "direction": direction,
            "rank": rank,
            "key": key,
            "name": f"{'Kettle' if kind == 'product' else 'Category'} {window} {direction} {rank}",
            "category_name": "Category 1",
            "start_price": start,
            "end_price": end,
            "change": end - start,
            "change_pct": 100 * (end - start) / start,
        }
        for kind, direction, rank, key, start, end in rows
    ]


def test_the_pipeline_page_draws_the_batches_of_the_window_also_without_lag(
    serving: ServingDatabase, open_dashboard: Callable[..., AppTest]
) -> None:
    serving.insert(
        catalog.PIPELINE_EVENTS,
        [
            event(1, 50, 100, lag={"ingest-product": 40, "ingest-category": 0}),
            event(2, 30, 60, quarantined=2),
            event(3, 10, 40, lag={"ingest-product": 0, "ingest-category": 0}),
            event(4, 180, 999),
        ],
    )
    serving.insert(
        catalog.QUARANTINE,
        [
            {"_id": f"t:0:{i}@1", "_kafka_ts": ago(minutes=m), "reason": reason, "raw_value": "x", "_topic": "t"}
            for i, (m, reason) in enumerate([(31, "price: below 0"), (30, "price: below 0"), (200, "old")])
        ],
    )
    serving.db[catalog.PIPELINE_STATUS.name].insert_one(
        {"_id": catalog.SUPERVISOR_STATUS_ID, "state": "restarting", "kind": "transient", "restarts": 2}
        | {"message": "Kafka at 127.0.0.1:19092 does not answer; restarting from the checkpoint", "warnings": []}
    )
    app = open_dashboard("Pipeline")
    assert_no_page_failed(app)

    assert metrics(app)["Job"] == "Restarting"
    assert metrics(app)["Last progress"].endswith(" UTC")
    assert app.warning[0].value.startswith("The streaming job is restarting (transient, 2 in a row): Kafka at")
    assert set(charts(app)) >= {
        "Rows per second",
        "Batch duration by step",
        "Quarantined per batch",
        "Lag per topic",
        "Freshness",
        "Quarantined records by reason",
    }
    assert series(app, "Rows per second")[""].values("y") == [50.0, 30.0, 20.0], "the last hour's batches"
    lag = series(app, "Lag per topic")
    assert lag["ingest-product"].values("y") == [40, 0], "the batch without lag adds no point"
    assert sorted(series(app, "Batch duration by step")) == ["bronze", "mongo", "read"]
    assert series(app, "Quarantined per batch")[""].values("y") == [0, 2, 0]
    assert charts(app)["Quarantined per batch"].mark["type"] == "bar"
    reasons = series(app, "Quarantined records by reason")
    assert list(reasons) == ["price: below 0"] and sum(reasons["price: below 0"].values("y")) == 2
    assert "`make backfill`" in app.markdown[-1].value
    app.radio(key="pipeline_window").set_value("6 h").run()
    assert series(app, "Rows per second")[""].values("y") == [499.5, 50.0, 30.0, 20.0]
    assert sorted(series(app, "Quarantined records by reason")) == ["old", "price: below 0"]
