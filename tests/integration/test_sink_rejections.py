"""A record the contract accepts but MongoDB cannot store is quarantined by itself with the sink's reason,
and the rest of its batch is served (issue #10, kind 2). The contract keeps every record within MongoDB's
limits, so the sink's document limit is lowered here to make a valid record exceed it: real Spark, Delta
and MongoDB-wire server, the job's own steps."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from lakehouse.mongo import mongo_client
from lakehouse.settings import load_settings
from spark_jobs import transforms
from spark_jobs.consistency import Layers, layer_checks
from spark_jobs.pipeline import IngestPipeline
from stack.services import LocalStack

pytestmark = pytest.mark.integration

TOPIC = "ingest-product-sink"


def product(asin: str, title: str) -> dict:
    return {"asin": asin, "title": title, "stars": 4.0, "reviews": 1, "category_id": 1, "price": 9.5}


def test_a_document_over_the_sinks_limit_is_quarantined_alone(
    spark: SparkSession, infrastructure: LocalStack, tmp_path: Path
) -> None:
    config = load_settings(
        kafka_topic_products=TOPIC, mongo_db=f"test_sink_{uuid.uuid4().hex[:8]}", lakehouse_path=tmp_path / "lake"
    )
    pipeline = IngestPipeline.connect(spark, config)
    sink = pipeline.serving.sink
    sink.max_document_bytes = 2_000  # as a server with a 2 kB document limit would say in `hello`
    values = [product("B0SINK0001", "fits"), product("B0SINK0002", "x" * 3_000), product("B0SINK0003", "fits")]
    rows = [(TOPIC, 0, offset, datetime(2026, 1, 1), b"k", json.dumps(v).encode()) for offset, v in enumerate(values)]
    kafka_rows = spark.createDataFrame(
        rows, "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
    )
    try:
        pipeline.apply(transforms.to_bronze(kafka_rows), {})

        assert sorted(d["_id"] for d in sink.db.products.find()) == ["B0SINK0001", "B0SINK0003"]
        [stored] = sink.db.quarantine.find()
        assert stored["key"] == "B0SINK0002"
        assert stored["reason"].startswith("sink: the document is 0.0 MiB of BSON, over MongoDB's 0.0 MiB")
        assert stored["_id"] == f"{TOPIC}:0:1@{int(datetime(2026, 1, 1).timestamp() * 1000)}"
        quarantine = spark.read.format("delta").load(pipeline.tables.quarantine).collect()
        assert [(r["key"], r["reason"]) for r in quarantine] == [(stored["key"], stored["reason"])]
        assert json.loads(quarantine[0]["raw_value"])["title"] == "x" * 3_000
        # `make check` counts the refused record as quarantined, not as missing from MongoDB.
        served = [c for c in layer_checks(Layers.read(spark, pipeline.tables), config) if "MongoDB" in c.name]
        assert [c.line() for c in served if not c.ok] == []
        assert len(served) == 7
    finally:
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)


def test_a_product_too_large_to_publish_is_quarantined_and_still_served(
    spark: SparkSession, infrastructure: LocalStack, tmp_path: Path
) -> None:
    """Unknown fields are kept as JSON text and escaped again when published: 300,000 quotes (a 600 kB value)
    become a 1.2 MB processed-product record, over Kafka's 1 MB limit."""
    config = load_settings(
        kafka_topic_products=TOPIC, mongo_db=f"test_sink_{uuid.uuid4().hex[:8]}", lakehouse_path=tmp_path / "lake"
    )
    pipeline = IngestPipeline.connect(spark, config)
    sink = pipeline.serving.sink
    values = [product("B0SINK0004", "fits"), {**product("B0SINK0005", "quotes"), "note": '"' * 300_000}]
    rows = [(TOPIC, 0, offset, datetime(2026, 1, 1), b"k", json.dumps(v).encode()) for offset, v in enumerate(values)]
    kafka_rows = spark.createDataFrame(
        rows, "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
    )
    try:
        pipeline.apply(transforms.to_bronze(kafka_rows), {})

        assert sorted(d["_id"] for d in sink.db.products.find({}, {"_id": 1})) == ["B0SINK0004", "B0SINK0005"]
        [stored] = sink.db.quarantine.find({}, {"key": 1, "reason": 1})
        assert (stored["key"], stored["reason"]) == (
            "B0SINK0005",
            "sink: processed-product value over Kafka's 1,000,000-byte record limit",
        )
    finally:
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)
