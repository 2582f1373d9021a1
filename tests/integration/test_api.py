"""The ingest API against the real broker: what it accepts is in Kafka, keyed; what it refuses is not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson import Decimal128
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from api_ingest import main as api
from api_ingest.deps import get_settings
from api_ingest.errors import ErrorBody
from api_ingest.validation import MAX_BATCH_RECORDS
from lakehouse.settings import settings
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, running_pipeline
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
    too_many = [GOOD] * (MAX_BATCH_RECORDS + 1)
    assert client.post("/products/batch", json=too_many).status_code == 413


def test_malformed_bodies_answer_422(client: TestClient) -> None:
    assert client.post("/products/batch", content=b"{not json").status_code == 422
    assert client.post("/products/batch", json={"asin": "B000000001"}).status_code == 422
    assert client.post("/products", json={"asin": "B000000001"}).status_code == 422


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_api_key_when_configured(client: TestClient) -> None:
    api.app.dependency_overrides[get_settings] = lambda: settings.model_copy(update={"api_key": "s3cret"})
    product = {**GOOD, "asin": unique_asin()}
    try:
        assert client.post("/products", json=product).status_code == 401
        assert client.post("/products", json=product, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/products", json=product, headers={"X-API-Key": "s3cret"}).status_code == 201
    finally:
        api.app.dependency_overrides.clear()


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
    assert reused.status_code == 422
    assert reused.json()["detail"][0]["type"] == "idempotency_key_reused"
    assert "another body" in reused.json()["detail"][0]["message"]


def test_idempotency_keys_survive_an_api_restart(client: TestClient) -> None:
    batch = [{**GOOD, "asin": unique_asin()}]
    key = {"Idempotency-Key": uuid.uuid4().hex}
    assert client.post("/products/batch", json=batch, headers=key).status_code == 201
    with TestClient(api.app) as restarted:  # a new producer pool and an empty memory: keys come from Kafka
        again = restarted.post("/products/batch", json=batch, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [k for k, _ in records_in(settings.kafka_topic_products)].count(batch[0]["asin"]) == 1


def test_metrics_count_requests_records_and_produce_latency(client: TestClient) -> None:
    client.post("/products/batch", json=[{**GOOD, "asin": unique_asin()} for _ in range(2)])
    client.post("/products", json={"asin": "nope"})
    text = client.get("/metrics").text
    assert 'ingest_records_total{topic="products"}' in text
    assert 'ingest_http_requests_total{method="POST",route="/products",status="422"}' in text
    assert 'ingest_produce_seconds_count{topic="products"}' in text


# Hostile input against the real API process (uvicorn, as deployed), its own topics and database


@pytest.fixture(scope="module")
def served_api(infrastructure: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The API as a real uvicorn process on its own topics and database; no streaming job."""
    with running_pipeline(infrastructure, tmp_path_factory.mktemp("api"), start_job=False) as running:
        yield running


@pytest.fixture(scope="module")
def http(served_api: Pipeline) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served_api.settings.api_url, timeout=30) as client:
        yield client


def error_items(response: httpx.Response) -> list[dict[str, Any]]:
    """The response's errors, after checking it is a 4xx whose body is UTF-8 JSON in the one error shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = json.loads(response.content.decode("utf-8"))
    items = [item.model_dump() for item in ErrorBody.model_validate(body).detail]
    assert items and all(item["message"] for item in items)
    return items


def with_raw(record: dict[str, Any], field: str, raw_json: str) -> bytes:
    """`record` as JSON with `field` written as `raw_json` verbatim: NaN, 1e400, "\\ud800" cannot be dumped."""
    return json.dumps({**record, field: "__RAW__"}).replace('"__RAW__"', raw_json).encode()


CATEGORY = {"id": 104, "category_name": "Suitcases"}
HOSTILE_RECORDS = [
    pytest.param(GOOD, "price", "NaN", id="NaN"),
    pytest.param(GOOD, "price", "Infinity", id="Infinity"),
    pytest.param(GOOD, "stars", "-Infinity", id="-Infinity"),
    pytest.param(GOOD, "price", "1e400", id="1e400"),
    pytest.param(GOOD, "listPrice", "-1e400", id="-1e400"),
    pytest.param(GOOD, "title", '"x\\ud800y"', id="title-high-surrogate"),
    pytest.param(GOOD, "imgUrl", '"\\udc00"', id="url-low-surrogate"),
    pytest.param(GOOD, "reviews", "9223372036854775808", id="reviews-2**63"),
    pytest.param(GOOD, "category_id", "99999999999999999999", id="category_id-1e20"),
    pytest.param(GOOD, "productURL", '"javascript:alert(1)"', id="javascript-url"),
    pytest.param(CATEGORY, "category_name", '"\\ud800"', id="category-surrogate"),
    pytest.param(CATEGORY, "id", "9223372036854775808", id="category-id-2**63"),
]


def paths_for(record: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(single paths, batch paths) of the resource `record` belongs to, aliases included."""
    if record is CATEGORY:
        return ["/categories", "/Category"], ["/categories/batch"]
    return ["/products", "/AmazonProduct"], ["/products/batch"]


@pytest.mark.parametrize(("record", "field", "raw"), HOSTILE_RECORDS)
def test_hostile_values_are_422_naming_the_field_on_every_write_path(
    http: httpx.Client, record: dict[str, Any], field: str, raw: str
) -> None:
    body = with_raw(record, field, raw)
    singles, batches = paths_for(record)
    for path in singles:
        response = http.post(path, content=body, headers={"content-type": "application/json"})
        assert [(e["loc"], e["field"]) for e in error_items(response)] == [(["body", field], field)], path
    for path in batches:
        good = json.dumps(record).encode()
        as_array = http.post(path, content=b"[" + good + b"," + body + b"]")
        ndjson = http.post(path, content=good + b"\n" + body, headers={"content-type": "application/x-ndjson"})
        for response in (as_array, ndjson):
            assert [(e["index"], e["field"]) for e in error_items(response)] == [(1, field)], path


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b'{"title": "\xed\xa0\x80"}', id="encoded-surrogate"),
        pytest.param(b"[1, 2]", id="not-an-object"),
        pytest.param(json.dumps(GOOD)[:-1].encode() + b', "price": 5}', id="duplicate-key"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep"),
        pytest.param(b'{"reviews": ' + b"9" * 10_000 + b"}", id="10000-digits"),
    ],
)
def test_bodies_that_are_not_acceptable_json_are_422(http: httpx.Client, body: bytes) -> None:
    for path in ("/products", "/products/batch", "/categories", "/Category"):
        assert error_items(http.post(path, content=body, headers={"content-type": "application/json"})), path


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("é".encode(), id="utf8"),
        pytest.param(b"\xff\xfe", id="latin1"),
        pytest.param(b"k" * 201, id="201-chars"),
        pytest.param(b"k" * 8_000, id="8000-chars"),
    ],
)
def test_a_bad_idempotency_key_is_422(http: httpx.Client, key: bytes) -> None:
    response = http.post("/products/batch", json=[{**GOOD, "asin": unique_asin()}], headers={"Idempotency-Key": key})
    assert [e["loc"] for e in error_items(response)] == [["header", "idempotency-key"]]


def test_a_huge_header_is_refused_with_a_4xx(http: httpx.Client) -> None:
    response = http.post("/products", json=GOOD, headers={"Idempotency-Key": b"k" * 200_000})
    assert 400 <= response.status_code < 500


def test_a_form_body_is_415(http: httpx.Client) -> None:
    response = http.post("/products", content=b"asin=B014TMV5YE", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and error_items(response)[0]["type"] == "unsupported_media_type"


def test_nothing_refused_reached_kafka(served_api: Pipeline, http: httpx.Client) -> None:
    """Runs after the tests above in this module: none of their bodies was produced."""
    config = served_api.settings
    for topic in (config.kafka_topic_products, config.kafka_topic_categories):
        assert records_in(topic, config.kafka_bootstrap_servers) == []
    accepted = http.post("/products", json={**GOOD, "asin": unique_asin()})
    assert accepted.status_code == 201  # the same process still serves


@pytest.mark.parametrize(
    "query",
    [
        {"category_id": "9223372036854775808"},
        {"category_id": "99999999999999999999"},
        {"category_id": "-9223372036854775809"},
        {"category_id": "1e400"},
        {"limit": "99999999999999999999"},
        {"after": "B" * 1_000},
        {"q": "w " * 1_000},
    ],
)
def test_read_values_mongodb_cannot_take_are_422(http: httpx.Client, query: dict[str, str]) -> None:
    assert [e["loc"] for e in error_items(http.get("/products", params=query))] == [["query", next(iter(query))]]


@pytest.mark.parametrize(
    "query",
    [
        {"category_id": str(2**63 - 1)},
        {"q": "\x00"},
        {"q": ".*+?()[]{}|^$\\ &~#-"},
        {"q": "\\"},
        {"q": "(?i) \\Q \\E"},
        {"q": "é 日本 😀"},
        {"q": "\x01\x1f\x7f"},
        {"after": "\x00"},
        {"after": "\uffff"},
    ],
)
def test_reads_at_the_edges_of_what_mongodb_takes_are_answered(http: httpx.Client, query: dict[str, str]) -> None:
    response = http.get("/products", params=query)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["items"], list)


@pytest.mark.parametrize("asin", ["%00", "%ED%A0%80", "x" * 5_000, "%FF"])
def test_odd_asins_are_404(http: httpx.Client, asin: str) -> None:
    response = http.get(f"/products/{asin}")
    assert response.status_code == 404 and error_items(response)[0]["type"] == "not_found"


def test_rows_the_write_contract_refuses_are_served_without_their_bad_values(
    served_api: Pipeline, http: httpx.Client
) -> None:
    """Rows written before a rule was tightened, or by another writer."""
    stored = {
        "_id": "B0000000JS",
        "asin": "B0000000JS",
        "title": "Old row",
        "imgUrl": "javascript:alert(document.cookie)",
        "productURL": "http://www.amazon.com/dp/B0000000JS",
        "stars": float("nan"),
        "reviews": 2**63 - 1,
        "price": Decimal128("12.50"),
        "listPrice": float("inf"),
        "category_id": -(2**63),
        "isBestSeller": "yes",
        "boughtInLastMonth": None,
        "category_name": 7,
    }
    served_api.db.products.insert_one(stored)
    served_api.db.categories.insert_many([{"id": 5, "category_name": "Toys"}, {"id": "five"}])
    one = http.get("/products/B0000000JS")
    assert one.status_code == 200, one.text
    assert one.json() == {
        "asin": "B0000000JS",
        "title": "Old row",
        "imgUrl": "",
        "productURL": "http://www.amazon.com/dp/B0000000JS",
        "stars": None,
        "reviews": 2**63 - 1,
        "price": None,
        "listPrice": None,
        "category_id": -(2**63),
        "isBestSeller": None,
        "boughtInLastMonth": None,
        "category_name": None,
    }
    page = http.get("/products", params={"limit": 5})
    assert page.status_code == 200 and [p["imgUrl"] for p in page.json()["items"]] == [""]
    categories = http.get("/categories")
    assert categories.status_code == 200
    assert {"id": 5, "category_name": "Toys"} in categories.json()
