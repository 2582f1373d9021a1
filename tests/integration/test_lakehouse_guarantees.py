"""The job's guarantees under what a real feed does: late categories, updates, duplicates, bad records."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from kafka import KafkaProducer
from pyspark.sql import SparkSession

from client import api_client
from lakehouse.mongo import mongo_client
from lakehouse.settings import load_settings
from spark_jobs import transforms
from spark_jobs.consistency import KAFKA_SOURCE_SCHEMA
from spark_jobs.pipeline import IngestPipeline
from spark_jobs.progress import lag_per_topic
from stack.processes import wait_until
from stack.services import LocalStack
from tests.conftest import SAMPLE_DATASET
from tests.integration.conftest import Pipeline, running_pipeline
from tests.integration.test_pipeline_e2e import assert_mongo_matches

pytestmark = pytest.mark.integration

PRODUCTS = SAMPLE_DATASET / "amazon_products.csv"
CATEGORIES = SAMPLE_DATASET / "amazon_categories.csv"


def produce(pipeline: Pipeline, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers, acks="all", max_request_size=2 * 2**20
    )
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def gold_per_category(pipeline: Pipeline) -> pd.DataFrame:
    rows = list(
        pipeline.db.gold_category_stats.find(
            {}, {"_id": 0, "category_id": 1, "category_name": 1, "product_count": 1, "avg_price": 1}
        )
    )
    return pd.DataFrame(rows).set_index("category_id").sort_index()


def expected_gold(products: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    named = products.merge(categories, left_on="category_id", right_on="id")
    return named.groupby("category_id").agg(
        category_name=("category_name", "first"), product_count=("asin", "size"), avg_price=("price", "mean")
    )


def assert_gold_matches(pipeline: Pipeline, products: pd.DataFrame) -> None:
    got, want = gold_per_category(pipeline), expected_gold(products, pd.read_csv(CATEGORIES))
    assert got["category_name"].tolist() == want["category_name"].tolist()
    assert got["product_count"].tolist() == want["product_count"].tolist()
    assert got["avg_price"].tolist() == pytest.approx(want["avg_price"].tolist(), rel=1e-9)


def test_categories_arriving_before_between_and_after_products_and_a_rename(pipeline: Pipeline, tmp_path: Path) -> None:
    categories = pd.read_csv(CATEGORIES)
    first_half, second_half = tmp_path / "first.csv", tmp_path / "second.csv"
    categories.iloc[:30].to_csv(first_half, index=False)
    renamed = categories.iloc[30:].copy()
    categories.iloc[30:].to_csv(second_half, index=False)
    no_products = tmp_path / "no_products.csv"
    no_products.write_text(PRODUCTS.read_text().splitlines()[0] + "\n")
    api = pipeline.settings.api_url

    assert api_client.run(no_products, first_half, api, show_progress=False).ok
    pipeline.wait_until_idle()
    assert api_client.run(PRODUCTS, first_half, api, show_progress=False).ok  # known names re-sent: no change
    pipeline.wait_for_products(2000)
    pipeline.wait_until_idle()
    unnamed = pipeline.db.products.count_documents({"category_name": None})
    assert unnamed == int(pd.read_csv(PRODUCTS)["category_id"].gt(30).sum())

    assert api_client.run(no_products, second_half, api, show_progress=False).ok
    pipeline.wait_until_idle()
    assert_mongo_matches(pipeline, PRODUCTS, CATEGORIES)

    renamed.loc[renamed["id"] == 31, "category_name"] = "Renamed Luggage"
    renamed_file = tmp_path / "renamed.csv"
    pd.concat([categories.iloc[:30], renamed]).to_csv(renamed_file, index=False)
    assert api_client.run(no_products, renamed_file, api, show_progress=False).ok
    pipeline.wait_until_idle()
    assert pipeline.db.products.count_documents({}) == 2000
    assert_mongo_matches(pipeline, PRODUCTS, renamed_file)
    final = pd.concat([categories.iloc[:30], renamed])
    got, want = gold_per_category(pipeline), expected_gold(pd.read_csv(PRODUCTS), final)
    assert got["category_name"].tolist() == want["category_name"].tolist()


def test_updates_and_duplicates_leave_one_document_per_asin_with_the_last_price(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    assert api_client.run(PRODUCTS, CATEGORIES, pipeline.settings.api_url, show_progress=False).ok
    products = pd.read_csv(PRODUCTS)
    updated = products.copy()
    updated.loc[:299, "price"] = (updated.loc[:299, "price"] + 1.25).round(2)
    changed = tmp_path / "changed.csv"
    updated.iloc[:300].to_csv(changed, index=False)
    duplicates = tmp_path / "duplicates.csv"
    products.iloc[300:600].to_csv(duplicates, index=False)
    for path in (changed, duplicates, changed):
        assert api_client.run(path, CATEGORIES, pipeline.settings.api_url, show_progress=False).ok
    pipeline.wait_until_idle()
    assert pipeline.db.products.count_documents({}) == 2000
    prices = {d["_id"]: d["price"] for d in pipeline.db.products.find({}, {"price": 1})}
    assert prices == dict(zip(updated["asin"], updated["price"], strict=True))
    assert_gold_matches(pipeline, updated)


def test_bad_records_are_quarantined_with_their_reason_and_the_stream_goes_on(pipeline: Pipeline) -> None:
    good = {"asin": "B0GOOD0001", "title": "fine", "stars": 4.0, "reviews": 2, "price": 3.5, "category_id": 1}
    bad = {
        "not JSON": b"{oops",
        "wrong types": json.dumps({**good, "asin": "B0BAD00001", "price": "cheap"}).encode(),
        "missing asin": json.dumps({k: v for k, v in good.items() if k != "asin"}).encode(),
        "negative price": json.dumps({**good, "asin": "B0BAD00002", "price": -1}).encode(),
        "1 MB title": json.dumps({**good, "asin": "B0BAD00003", "title": "x" * 1_000_000}).encode(),
        "invalid UTF-8": b'{"asin": "B0BAD00004", "title": "\xff\xfe", "stars": 1, "reviews": 1, "price": 1, '
        b'"category_id": 1}',
        # Issue #11/#10: written straight to Kafka by producers other than the API.
        "two objects": (
            json.dumps({**good, "asin": "B0BAD00005"}) + "\n" + json.dumps({**good, "asin": "B0BAD00006"})
        ).encode(),
        "trailing junk": (json.dumps({**good, "asin": "B0BAD00007"}) + " junk").encode(),
        "NaN": json.dumps({**good, "asin": "B0BAD00008", "price": float("nan")}).encode(),
        "Infinity": json.dumps({**good, "asin": "B0BAD00009", "listPrice": float("inf")}).encode(),
        "1e999": json.dumps({**good, "asin": "B0BAD00010"}).replace('"price": 3.5', '"price": 1e999').encode(),
        "beyond 64 bits": json.dumps({**good, "asin": "B0BAD00011", "reviews": 2**64}).encode(),
        "lone surrogate": json.dumps({**good, "asin": "B0BAD00012", "title": "x\ud800y"}).encode(),
        "javascript URL": json.dumps({**good, "asin": "B0BAD00013", "productURL": "javascript:alert(1)"}).encode(),
    }
    extra = json.dumps({**good, "asin": "B0GOOD0002", "colour": "red", "size": 3}).encode()
    topic = pipeline.settings.kafka_topic_products
    produce(
        pipeline,
        topic,
        [(b"k", value) for value in bad.values()]
        + [(b"B0GOOD0001", json.dumps(good).encode()), (b"B0GOOD0002", extra)],
    )
    pipeline.wait_for_products(2)
    pipeline.wait_until_idle()
    reasons = sorted(d["reason"] for d in pipeline.db.quarantine.find())
    assert reasons == sorted(
        [
            "value: not one JSON object",
            "price: not a number",
            "asin: missing",
            "price: below 0",
            "title: longer than 4000 characters",
            "value: not valid UTF-8",
            "value: not one JSON object",
            "value: not one JSON object",
            "value: not one JSON object",
            "value: not one JSON object",
            "price: not a finite number",
            "reviews: not a whole number within 64 bits",
            "value: a lone surrogate escape (not Unicode text)",
            "productURL: not an http(s) URL or empty",
        ]
    )
    for document in pipeline.db.quarantine.find():
        broker_ms = int(document["_kafka_ts"].replace(tzinfo=UTC).timestamp() * 1000)  # pymongo: naive UTC
        coordinates = f"{topic}:{document['_partition']}:{document['_offset']}"
        assert (document["_topic"], document["_id"]) == (topic, f"{coordinates}@{broker_ms}")
    assert {d["_id"] for d in pipeline.db.products.find()} == {"B0GOOD0001", "B0GOOD0002"}
    rescued = pipeline.db.products.find_one({"_id": "B0GOOD0002"})["_rescued_data"]
    assert json.loads(rescued) == {"colour": "red", "size": "3"}

    produce(pipeline, topic, [(b"B0GOOD0003", json.dumps({**good, "asin": "B0GOOD0003"}).encode())])
    pipeline.wait_for_products(3)


def test_an_older_version_read_again_after_the_newer_one_is_served_never_replaces_it(
    infrastructure: LocalStack, tmp_path: Path
) -> None:
    """The checkpoint and silver are deleted while MongoDB is kept (a silver rebuild gone wrong), and the job
    reads the topic again from the start, one record per micro-batch: the older price wins in the new silver
    for one batch, and MongoDB's version guard must refuse it."""
    older, newer = (
        {"asin": "B0VERSION1", "title": "t", "stars": 4.0, "reviews": 1, "category_id": 1, "price": price}
        for price in (10.0, 20.0)
    )
    with running_pipeline(infrastructure, tmp_path, stream_max_offsets_per_trigger=1) as pipeline:
        topic = pipeline.settings.kafka_topic_products
        produce(pipeline, topic, [(b"B0VERSION1", json.dumps(older).encode())])
        produce(pipeline, topic, [(b"B0VERSION1", json.dumps(newer).encode())])
        pipeline.wait_until_idle()
        assert pipeline.db.products.find_one({"_id": "B0VERSION1"})["price"] == 20.0

        job = pipeline.stack.process("job")
        job.stop()
        shutil.rmtree(pipeline.settings.checkpoint_dir / "ingest")
        shutil.rmtree(pipeline.settings.lakehouse_dir / "silver")
        pipeline.stack.start_job()
        served: set[float] = set()

        def read_again() -> bool:
            served.add(pipeline.db.products.find_one({"_id": "B0VERSION1"})["price"])
            pipeline.fail_if_job_died()
            lag = lag_per_topic(pipeline.settings)
            return lag is not None and sum(lag.values()) == 0

        assert wait_until(read_again, 300, interval=0.1), job.log_tail()
        assert served == {20.0}
        assert "1 write(s) refused by the version guard" in job.log_file.read_text()


def test_an_older_version_of_a_category_arriving_later_renames_no_product(
    spark: SparkSession, infrastructure: LocalStack, tmp_path: Path
) -> None:
    """Silver keeps a category's newest version, and its products carry that version's name: a batch holding an
    older version (a partition read behind another, a replay) changes neither, in Delta or MongoDB."""
    config = load_settings(
        kafka_topic_categories="ingest-category-stale",
        kafka_topic_products="ingest-product-stale",
        mongo_db=f"test_stale_{uuid.uuid4().hex[:8]}",
        lakehouse_path=tmp_path / "lake",
    )
    pipeline = IngestPipeline.connect(spark, config)
    newer, older = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    product = {"asin": "B0STALE001", "title": "t", "stars": 4.0, "reviews": 1, "category_id": 7, "price": 9.5}
    named = {"New": json.dumps({"id": 7, "category_name": "New"}), "Old": json.dumps({"id": 7, "category_name": "Old"})}
    # The Kafka source's rows: key, value, topic, partition, offset, broker time, timestamp type.
    first = [
        (b"7", named["New"].encode(), config.kafka_topic_categories, 0, 0, newer, 1),
        (b"B0STALE001", json.dumps(product).encode(), config.kafka_topic_products, 0, 0, newer, 1),
    ]
    stale = [(b"7", named["Old"].encode(), config.kafka_topic_categories, 1, 0, older, 1)]
    try:
        for rows in (first, stale):
            kafka_rows = spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA)
            pipeline.apply(transforms.to_bronze(kafka_rows), {}, refresh_gold=False)

        silver = spark.read.format("delta").load(pipeline.tables.silver_products).collect()
        assert [(r["asin"], r["category_name"]) for r in silver] == [("B0STALE001", "New")]
        [served] = pipeline.serving.sink.db.products.find()
        assert served["category_name"] == "New"
        assert [c["category_name"] for c in pipeline.serving.sink.db.categories.find()] == ["New"]
    finally:
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)
