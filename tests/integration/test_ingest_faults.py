"""Ingest and the job under faults and load, on a broker of its own that the tests stop and start.

Kafka down: the API answers 503 with Retry-After, the client retries and finishes once Kafka is back, and
no retried batch reaches a read_committed reader twice. Stress: 1,000 concurrent single-record POSTs and
20k records in batches are exactly that many records in Kafka, and end to end one document per asin in
MongoDB. Then Kafka and MongoDB restart under the running job, which recovers with every layer consistent.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from client import api_client
from client.transformer import Record, read_products
from dataset.generate import write_dataset
from lakehouse.settings import PROJECT_ROOT, load_settings
from spark_jobs.consistency import run_checks
from stack.kafka import KafkaBroker
from stack.processes import wait_until
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, committed_keys, running_pipeline
from tests.unit.test_schemas import GOOD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_broker(infrastructure: LocalStack) -> Iterator[KafkaBroker]:
    config = load_settings(
        kafka_bootstrap_servers="127.0.0.1:19192", runtime_dir=infrastructure.settings.runtime_dir / "kafka-faults"
    )
    broker = KafkaBroker(config)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def faulty(
    infrastructure: LocalStack, own_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """The API on the test's own broker, with a short delivery timeout; the job starts in the last test."""
    with running_pipeline(
        infrastructure,
        tmp_path_factory.mktemp("faults"),
        start_job=False,
        kafka_bootstrap_servers=own_broker.settings.kafka_bootstrap_servers,
        kafka_delivery_timeout_seconds=3,
        stream_max_offsets_per_trigger=250_000,  # fewer, larger batches: the stress test's records in one
    ) as pipeline:
        yield pipeline


SENT_ASINS: set[str] = set()


def generated(folder: Path, products: int, seed: int, asin_prefix: str) -> tuple[Path, Path]:
    """Generated files whose asins start with `asin_prefix` instead of the generator's "B0": each test sends
    its own products, so the stress test's 20k are all new keys rather than updates of earlier tests'."""
    products_csv, categories_csv = write_dataset(folder, products=products, categories=248, seed=seed)
    with products_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        row[0] = asin_prefix + row[0][2:]
    with products_csv.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return products_csv, categories_csv


def product_asins(path: Path) -> set[str]:
    return {row.data["asin"] for row in read_products(path) if isinstance(row, Record)}


def delivery_errors(api_url: str) -> float:
    """503s answered so far, over both topics."""
    lines = httpx.get(f"{api_url}/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith("ingest_delivery_errors_total{"))


def test_kafka_down_means_503_then_the_client_retries_and_nothing_is_committed_twice(
    faulty: Pipeline, own_broker: KafkaBroker, tmp_path: Path
) -> None:
    config = faulty.settings
    products, categories = generated(tmp_path, products=3000, seed=11, asin_prefix="B7")
    own_broker.stop()

    lost = {**GOOD, "asin": "B0LOST0001"}
    refused = httpx.post(f"{config.api_url}/products/batch", json=[lost], timeout=60)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert httpx.get(f"{config.api_url}/ready", timeout=60).status_code == 503

    outcome: list[api_client.Summary] = []
    client = threading.Thread(
        target=lambda: outcome.append(api_client.run(products, categories, config.api_url, batch_size=500)),
    )
    client.start()
    assert wait_until(lambda: delivery_errors(config.api_url) >= 3, 120), "the client never hit the outage"
    own_broker.start()
    client.join(timeout=300)

    [summary] = outcome
    assert summary.ok and summary.accepted == summary.sent == 3000 + 248
    keys = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products)
    asins = product_asins(products)
    assert {key.decode() for key in keys} == asins and set(keys.values()) == {1}
    assert sum(committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_categories).values()) == 248
    SENT_ASINS.update(asins)


def test_a_killed_client_resumes_without_counting_or_producing_anything_twice(faulty: Pipeline, tmp_path: Path) -> None:
    config = faulty.settings
    products, categories = generated(tmp_path, products=10_000, seed=13, asin_prefix="B8")
    before = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products)
    command = [sys.executable, "client/api_client.py", "--products", str(products), "--categories", str(categories)]
    command += ["--api-url", config.api_url, "--batch-size", "200", "--no-progress"]
    environment = {**os.environ, "RUNTIME_DIR": str(tmp_path / "client-state")}

    def products_done() -> int:
        states = list((tmp_path / "client-state" / "client").glob("*.json"))
        return json.loads(states[0].read_text())["done"]["products"] if states else 0

    first = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL)
    assert wait_until(lambda: products_done() >= 2000, 120, interval=0.01)
    first.kill()
    first.wait()
    assert products_done() < 10_000

    second = subprocess.run(command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "resuming an interrupted run" in second.stderr
    assert "sent 10248, accepted 10248, rejected 0, undelivered 0" in second.stdout
    added = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products) - before
    assert added.total() == 10_000 and {key.decode() for key in added} == product_asins(products)
    SENT_ASINS.update(product_asins(products))


async def post_each(api_url: str, products: list[dict]) -> list[int]:
    limits = httpx.Limits(max_connections=len(products))
    async with httpx.AsyncClient(base_url=api_url, timeout=120, limits=limits) as http:
        responses = await asyncio.gather(*(http.post("/products", json=product) for product in products))
    return [response.status_code for response in responses]


def test_stress_1000_concurrent_posts_and_20k_in_batches_are_exactly_that_many_records(
    faulty: Pipeline, tmp_path: Path
) -> None:
    config = faulty.settings
    before = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products)
    singles = [{**GOOD, "asin": "B1" + uuid.uuid4().hex[:8].upper()} for _ in range(1000)]
    assert asyncio.run(post_each(config.api_url, singles)) == [201] * 1000

    products, categories = write_dataset(tmp_path, products=20_000, categories=248, seed=5)
    summary = api_client.run(products, categories, config.api_url, batch_size=2000, show_progress=False)
    assert summary.ok and summary.accepted == 20_000 + 248

    after = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products)
    assert (after - before).total() == 1000 + 20_000
    assert all(after[p["asin"].encode()] == 1 for p in singles)
    SENT_ASINS.update(p["asin"] for p in singles)
    SENT_ASINS.update(product_asins(products))


def test_end_to_end_mongodb_holds_exactly_one_document_per_asin_sent(faulty: Pipeline) -> None:
    faulty.stack.start_job()
    faulty.wait_for_products(len(SENT_ASINS), timeout=900)
    faulty.wait_until_idle(timeout=300)
    assert faulty.db.products.count_documents({}) == len(SENT_ASINS)
    assert {d["_id"] for d in faulty.db.products.find({}, {"_id": 1})} == SENT_ASINS
    assert faulty.db.products.count_documents({"asin": "B0LOST0001"}) == 0


def test_kafka_then_mongodb_restart_while_data_flows_and_the_job_recovers_exactly(
    faulty: Pipeline, own_broker: KafkaBroker, infrastructure: LocalStack, spark, tmp_path: Path
) -> None:
    config = faulty.settings
    job = faulty.stack.process("job")
    if not job.is_running():
        faulty.stack.start_job()
    products, _ = generated(tmp_path, products=500, seed=17, asin_prefix="B6")
    no_categories = tmp_path / "no_categories.csv"
    no_categories.write_text("id,category_name\n")
    arriving = {r.data["asin"]: r.data for r in read_products(products) if isinstance(r, Record)}

    own_broker.stop()
    errors_before = delivery_errors(config.api_url)
    outcome: list[api_client.Summary] = []
    client = threading.Thread(
        target=lambda: outcome.append(api_client.run(products, no_categories, config.api_url, batch_size=50))
    )
    client.start()
    assert wait_until(lambda: delivery_errors(config.api_url) > errors_before, 120)
    own_broker.start()
    client.join(timeout=300)
    assert outcome and outcome[0].ok and outcome[0].accepted == 500

    infrastructure.mongo.stop()
    assert wait_until(lambda: "query failed" in job.log_tail(400), 180), "the job did not notice MongoDB was gone"
    infrastructure.mongo.start()

    SENT_ASINS.update(arriving)
    assert wait_until(lambda: faulty.db.products.count_documents({}) >= len(SENT_ASINS), 600, interval=2), job.log_tail(
        80
    )
    faulty.wait_until_idle()
    assert faulty.db.products.count_documents({}) == len(SENT_ASINS)
    names = {d["_id"]: d["category_name"] for d in faulty.db.categories.find()}
    for document in faulty.db.products.find({"_id": {"$in": list(arriving)}}):
        want = arriving[document["_id"]]
        assert {k: document[k] for k in want} == want
        assert document["category_name"] == names[want["category_id"]]
    diverged = [check.line() for check in run_checks(spark, config) if not check.ok]
    assert not diverged, diverged
