"""The speed layer beside the streaming job (issue #9): a product is served before the job has run at all,
hostile records are never served by it, and once the job has caught up MongoDB holds the job's documents
(its category names, its newer versions, its quarantine), with `make check` green."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from pyspark.sql import SparkSession

from lakehouse.versions import version_text
from spark_jobs import lake
from spark_jobs.consistency import Layers, layer_checks
from spark_jobs.mongo_sink import MongoSink
from speed_layer.consumer import speed_layer_lag
from stack.processes import wait_until
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, running_pipeline
from tests.integration.test_consistency_empty import all_agree, failure, run_check

pytestmark = pytest.mark.integration

# Generous: the bound that matters is "before the job ran at all"; the seconds are bench/freshness.py's.
SERVED_WITHIN_S = 60.0


def asin() -> str:
    return "S" + uuid.uuid4().hex[:9].upper()


def product(key: str, price: float, category_id: int) -> dict[str, Any]:
    return {
        "asin": key,
        "title": f"product {key}",
        "stars": 4,
        "reviews": 3,
        "price": price,
        "category_id": category_id,
    }


@pytest.fixture(scope="module")
def speedy(infrastructure: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """A pipeline with the speed layer and the API running, and the job not started yet."""
    with running_pipeline(infrastructure, tmp_path_factory.mktemp("speed"), start_job=False) as pipeline:
        pipeline.stack.start_speed_layer()
        yield pipeline


def post(pipeline: Pipeline, path: str, body: dict[str, Any] | list[dict[str, Any]], key: str = "") -> None:
    headers = {"Idempotency-Key": key} if key else {}
    response = httpx.post(f"{pipeline.settings.api_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text


def produce_raw(pipeline: Pipeline, values: list[bytes]) -> None:
    """Straight to Kafka, as a producer that bypasses the API would."""
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "acks": "all"})
    for value in values:
        producer.produce(pipeline.settings.kafka_topic_products, value=value)
    assert producer.flush(30) == 0


def served(pipeline: Pipeline, key: str) -> dict[str, Any] | None:
    return pipeline.db.products.find_one({"_id": key})


def wait_served(pipeline: Pipeline, key: str, price: float) -> dict[str, Any]:
    def arrived() -> bool:
        document = served(pipeline, key)
        return document is not None and document["price"] == price

    assert wait_until(arrived, SERVED_WITHIN_S), (
        f"{key} at {price} not served:\n{pipeline.stack.process('speed').log_tail()}"
    )
    return served(pipeline, key)  # type: ignore[return-value]


def test_the_speed_layer_serves_before_the_job_and_the_job_ends_with_its_own_documents(speedy: Pipeline) -> None:
    category, renamed_category = 7001, 7002
    first, second, hostile, sentinel = asin(), asin(), asin(), asin()
    post(speedy, "/categories", {"id": category, "category_name": "Luggage"})
    post(speedy, "/products", product(first, 10.0, category))
    post(speedy, "/products", product(second, 20.0, renamed_category))

    # Served with no streaming job running at all, and read through the API as users read it.
    early = wait_served(speedy, first, 10.0)
    assert early["category_name"] is None, "the speed layer never serves categories: the job does"
    read = httpx.get(f"{speedy.settings.api_url}/products/{first}", timeout=30)
    assert read.status_code == 200 and read.json()["price"] == 10.0
    wait_served(speedy, second, 20.0)

    # Straight to Kafka: NaN, a newer version with an unknown field (the job rescues it), not JSON.
    produce_raw(
        speedy,
        [
            b'{"asin": "%s", "title": "t", "stars": 1, "reviews": 1, "price": NaN, "category_id": 1}'
            % hostile.encode(),
            b'{"asin": "%s", "title": "t", "stars": 1, "reviews": 1, "price": 11.0, "category_id": %d, "colour": "red"}'
            % (first.encode(), category),
            b"not json",
        ],
    )
    post(speedy, "/products", product(sentinel, 1.0, category))
    wait_served(speedy, sentinel, 1.0)  # read after the raw records: the speed layer has judged them
    assert served(speedy, hostile) is None
    assert served(speedy, first)["price"] == 10.0, "a record the job rescues is the job's to serve"  # type: ignore[index]
    before_job = served(speedy, second)

    post(speedy, "/categories", {"id": renamed_category, "category_name": "Old name"})
    speedy.stack.start_job()
    speedy.wait_until_idle()
    post(speedy, "/categories", {"id": renamed_category, "category_name": "New name"})
    newest, batched = asin(), asin()
    post(speedy, "/products", product(newest, 5.0, renamed_category))
    # A transaction (a batch with its key): its commit marker is an offset the speed layer's lag steps over.
    post(speedy, "/products/batch", [product(batched, 6.0, renamed_category)], key=f"speed-{batched}")
    wait_served(speedy, newest, 5.0)
    wait_served(speedy, batched, 6.0)
    speedy.wait_until_idle()

    after = served(speedy, second)
    assert after is not None and before_job is not None
    assert after["_v"] == before_job["_v"], "the same version, rewritten by the job"
    assert {k: v for k, v in after.items() if k != "category_name"} == {
        k: v for k, v in before_job.items() if k != "category_name"
    }, "the speed layer's document is the job's, but for the category name"
    assert after["category_name"] == "New name", "the job's rename reached a product the speed layer served"
    assert served(speedy, newest)["category_name"] == "New name"  # type: ignore[index]
    rescued = served(speedy, first)
    assert rescued["price"] == 11.0 and rescued["_rescued_data"] is not None  # type: ignore[index]
    assert served(speedy, hostile) is None
    assert speedy.db.quarantine.count_documents({}) == 2, "NaN and not JSON, quarantined by the job"

    # Offsets are committed every 5 s (librdkafka's auto.commit.interval.ms); `make status` prints this lag.
    assert wait_until(lambda: speed_layer_lag(speedy.settings) == 0, 30), speed_layer_lag(speedy.settings)

    check = run_check(speedy.stack)
    assert check.returncode == 0 and all_agree(check.stdout), failure(check)


def test_a_newer_version_is_never_overwritten_by_an_older_one(speedy: Pipeline) -> None:
    """Many versions of one key, posted one after the other while the speed layer and the job both write:
    the served price only moves forward, and ends at the last one."""
    if not speedy.stack.process("job").is_running():  # run alone
        speedy.stack.start_job()
    key = asin()
    seen: list[float] = []
    for price in range(1, 31):
        post(speedy, "/products", product(key, float(price), 7001))
        document = served(speedy, key)
        if document is not None:
            seen.append(document["price"])
    wait_served(speedy, key, 30.0)
    speedy.wait_until_idle()
    seen.append(served(speedy, key)["price"])  # type: ignore[index]
    assert seen == sorted(seen) and seen[-1] == 30.0


def test_make_check_names_a_served_version_the_job_never_read(speedy: Pipeline, spark: SparkSession) -> None:
    """A record deleted from Kafka before the job read it stays served as the speed layer wrote it (README,
    Guarantees): `make check` names its key and both versions. The deletion is stood in for by writing the
    newer version with the speed layer's own guarded write, once the job is idle."""
    if not speedy.stack.process("job").is_running():  # run alone
        speedy.stack.start_job()
    key = asin()
    post(speedy, "/products", product(key, 3.0, 7001))
    wait_served(speedy, key, 3.0)
    speedy.wait_until_idle()
    by_the_job = served(speedy, key)
    assert by_the_job is not None
    silver_version = by_the_job["_v"]
    never_read = {**by_the_job, "price": 4.0, "_v": version_text(int(silver_version[:13]) + 1, 0, 0)}
    stats = MongoSink.connect(speedy.settings).upsert_products_ahead([never_read])
    assert not stats.rejected and served(speedy, key)["price"] == 4.0  # type: ignore[index]

    checks = layer_checks(Layers.read(spark, lake.LakeTables(speedy.settings.lakehouse_dir)), speedy.settings)
    diverged = [check for check in checks if not check.ok]
    assert [check.name for check in diverged] == [
        "silver product versions = MongoDB's, on keys both hold but those the sink refused"
    ], [check.line() for check in checks]
    assert diverged[0].differing == [f"{key}: silver {silver_version}, MongoDB {never_read['_v']}"]
