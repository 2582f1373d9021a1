"""The ingest API against the real broker: what it accepts is in Kafka, keyed; what it refuses is not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from api_ingest import main as api
from lakehouse.settings import settings
from tests.unit.test_schemas import GOOD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(infrastructure) -> Iterator[TestClient]:
    with TestClient(api.app) as test_client:
        yield test_client


def records_in(topic: str, bootstrap_servers: str = settings.kafka_bootstrap_servers) -> list[tuple[str, dict]]:
    """What the streaming job can read: committed records only."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        consumer_timeout_ms=3000,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    records = [(m.key.decode(), json.loads(m.value)) for m in consumer]
    consumer.close()
    return records


def unique_asin() -> str:
    return "B" + uuid.uuid4().hex[:9].upper()


@pytest.mark.parametrize("path", ["/products", "/AmazonProduct"])
def test_a_product_is_in_kafka_keyed_by_asin_when_the_api_says_201(client: TestClient, path: str) -> None:
    product = {**GOOD, "asin": unique_asin()}
    response = client.post(path, json=product)
    assert response.status_code == 201, response.text
    assert response.json() == {"accepted": 1, "topic": settings.kafka_topic_products}
    assert (product["asin"], product) in records_in(settings.kafka_topic_products)


def test_a_batch_as_json_or_ndjson(client: TestClient) -> None:
    batch = [{**GOOD, "asin": unique_asin()} for _ in range(3)]
    assert client.post("/products/batch", json=batch[:2]).json()["accepted"] == 2
    ndjson = json.dumps(batch[2])
    response = client.post("/products/batch", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201
    stored = dict(records_in(settings.kafka_topic_products))
    assert all(stored[p["asin"]] == p for p in batch)


def test_a_batch_with_bad_records_is_refused_whole_with_every_index_and_field(client: TestClient) -> None:
    good = {**GOOD, "asin": unique_asin()}
    response = client.post("/products/batch", json=[good, {**GOOD, "price": -1}, {**GOOD, "asin": "x"}])
    assert response.status_code == 422
    problems = [(e["index"], e["field"]) for e in response.json()["detail"]]
    assert problems == [(1, "price"), (2, "asin")]
    assert good["asin"] not in dict(records_in(settings.kafka_topic_products))


def test_categories_and_their_alias(client: TestClient) -> None:
    category_id = int(uuid.uuid4().int % 10**9) + 1
    assert client.post("/Category", json={"id": category_id, "category_name": "Toys"}).status_code == 201
    assert client.post("/categories/batch", json=[{"id": category_id, "category_name": "Games"}]).status_code == 201
    mine = [v for k, v in records_in(settings.kafka_topic_categories) if k == str(category_id)]
    assert mine == [{"id": category_id, "category_name": "Toys"}, {"id": category_id, "category_name": "Games"}]


def test_limits_answer_413(client: TestClient) -> None:
    too_many = [GOOD] * (api.MAX_BATCH_RECORDS + 1)
    assert client.post("/products/batch", json=too_many).status_code == 413


def test_malformed_bodies_answer_422(client: TestClient) -> None:
    assert client.post("/products/batch", content=b"{not json").status_code == 422
    assert client.post("/products/batch", json={"asin": "B000000001"}).status_code == 422
    assert client.post("/products", json={"asin": "B000000001"}).status_code == 422


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_api_key_when_configured(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "settings", settings.model_copy(update={"api_key": "s3cret"}))
    product = {**GOOD, "asin": unique_asin()}
    assert client.post("/products", json=product).status_code == 401
    assert client.post("/products", json=product, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/products", json=product, headers={"X-API-Key": "s3cret"}).status_code == 201


def test_a_retried_batch_with_its_idempotency_key_is_committed_once(client: TestClient) -> None:
    batch = [{**GOOD, "asin": unique_asin()} for _ in range(3)]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/products/batch", json=batch, headers=key)
    again = client.post("/products/batch", json=batch, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"accepted": 3, "topic": settings.kafka_topic_products}
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    asins = [k for k, _ in records_in(settings.kafka_topic_products)]
    assert [asins.count(p["asin"]) for p in batch] == [1, 1, 1]

    reused = client.post("/products/batch", json=batch[:1], headers=key)
    assert reused.status_code == 422 and "another body" in reused.json()["detail"]


def test_idempotency_keys_survive_an_api_restart(client: TestClient) -> None:
    batch = [{**GOOD, "asin": unique_asin()}]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert client.post("/products/batch", json=batch, headers=key).status_code == 201
    running = api.app.state.producer
    with TestClient(api.app) as restarted:  # a new producer pool and an empty memory: keys come from Kafka
        again = restarted.post("/products/batch", json=batch, headers=key)
    api.app.state.producer = running
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [k for k, _ in records_in(settings.kafka_topic_products)].count(batch[0]["asin"]) == 1


def test_metrics_count_requests_records_and_produce_latency(client: TestClient) -> None:
    client.post("/products/batch", json=[{**GOOD, "asin": unique_asin()} for _ in range(2)])
    client.post("/products", json={"asin": "nope"})
    text = client.get("/metrics").text
    assert 'ingest_records_total{topic="products"}' in text
    assert 'ingest_http_requests_total{method="POST",route="/products",status="422"}' in text
    assert 'ingest_produce_seconds_count{topic="products"}' in text
