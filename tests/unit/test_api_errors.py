"""The API's HTTP layer without services: every refused request gets the one error shape, a 4xx and a body
that is readable UTF-8 JSON; read responses survive what MongoDB may hold. Kafka and MongoDB are replaced
by dependency overrides (a producer that must not be called, a database stub)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api_ingest.deps import get_db, get_producer, get_settings
from api_ingest.errors import ErrorBody, error_item, pydantic_items, readable
from api_ingest.main import app
from api_ingest.views import ProductView
from lakehouse.settings import load_settings
from tests.unit.test_schemas import GOOD

WRITE_PATHS = ["/products", "/AmazonProduct", "/products/batch", "/categories", "/Category", "/categories/batch"]
SINGLE_PATHS = ["/products", "/AmazonProduct", "/categories", "/Category"]


class NoProducer:
    """Refused requests never reach Kafka."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the producer was used ({name}) for a refused request")


class StoredCollection:
    """The few pymongo calls lakehouse.serving makes for products and categories, over fixed documents."""

    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents

    def find_one(self, query: dict[str, Any], _projection: Any = None) -> dict[str, Any] | None:
        return next((d for d in self.documents if d.get("asin") == query["_id"]), None)

    def find(self, _query: Any = None, _projection: Any = None) -> StoredCollection:
        return self

    def sort(self, *_args: Any) -> StoredCollection:
        return self

    def limit(self, count: int) -> list[dict[str, Any]]:
        return self.documents[:count]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.documents)


class StoredDatabase:
    def __init__(self, products: list[dict[str, Any]], categories: list[dict[str, Any]]) -> None:
        self.products = StoredCollection(products)
        self.categories = StoredCollection(categories)

    def __getitem__(self, name: str) -> StoredCollection:
        return getattr(self, name)


@pytest.fixture
def settings_for_tests() -> dict[str, Any]:
    return {}


@pytest.fixture
def client(settings_for_tests: dict[str, Any]) -> Iterator[TestClient]:
    """The real app without its lifespan: no producer pool, no MongoDB client."""
    app.dependency_overrides[get_settings] = lambda: load_settings(**settings_for_tests)
    app.dependency_overrides[get_producer] = NoProducer
    app.dependency_overrides[get_db] = lambda: StoredDatabase([], [])
    yield TestClient(app, raise_server_exceptions=False)
    app.dependency_overrides.clear()


def shaped(response: httpx.Response) -> list[dict[str, Any]]:
    """The error items of a response, checking the one error shape and that the body is UTF-8 JSON."""
    assert 400 <= response.status_code < 500 or response.status_code == 503, response.text
    body = json.loads(response.content.decode("utf-8"))
    return [item.model_dump() for item in ErrorBody.model_validate(body).detail]


def post(client: TestClient, path: str, body: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json", **headers})


def raw_product(field: str, raw_json: str) -> bytes:
    return json.dumps({**GOOD, field: "__RAW__"}).replace('"__RAW__"', raw_json).encode()


HOSTILE_PRODUCT_BODIES = {
    "NaN": raw_product("price", "NaN"),
    "Infinity": raw_product("price", "Infinity"),
    "-Infinity": raw_product("stars", "-Infinity"),
    "1e400": raw_product("price", "1e400"),
    "-1e400": raw_product("listPrice", "-1e400"),
    "lone high surrogate": raw_product("title", '"x\\ud800y"'),
    "lone low surrogate": raw_product("asin", '"\\udc00"'),
    "surrogate key": json.dumps(GOOD).replace('"asin"', '"\\ud800"', 1).encode(),
    "not UTF-8": b'{"title": "\xff\xfe"}',
    "not an object": b"[1, 2]",
    "duplicate key": json.dumps(GOOD)[:-1].encode() + b', "price": -1}',
    "deep": b"[" * 50_000 + b"]" * 50_000,
    "huge int": json.dumps({**GOOD, "reviews": 10**30}).encode(),
    "5000 digits": raw_product("reviews", "9" * 5_000),
    "empty": b"",
}


@pytest.mark.parametrize("path", SINGLE_PATHS)
@pytest.mark.parametrize("name", HOSTILE_PRODUCT_BODIES)
def test_hostile_single_bodies_are_422_with_a_readable_error(client: TestClient, path: str, name: str) -> None:
    response = post(client, path, HOSTILE_PRODUCT_BODIES[name])
    assert response.status_code == 422
    assert shaped(response)


@pytest.mark.parametrize("path", ["/products/batch", "/categories/batch"])
@pytest.mark.parametrize("name", [name for name in HOSTILE_PRODUCT_BODIES if name != "empty"])  # [] is a batch
def test_hostile_batch_records_are_422_with_a_readable_error(client: TestClient, path: str, name: str) -> None:
    record = HOSTILE_PRODUCT_BODIES[name]
    as_array = post(client, path, b"[" + record + b"]")
    as_ndjson = post(client, path, b"\n" + record, **{"content-type": "application/x-ndjson"})
    assert (as_array.status_code, as_ndjson.status_code) == (422, 422)
    assert shaped(as_array) and shaped(as_ndjson)


def test_the_issue_examples_name_the_field(client: TestClient) -> None:
    for body, field in [(raw_product("price", "NaN"), "price"), (raw_product("title", '"x\\ud800y"'), "title")]:
        [item] = shaped(post(client, "/products", body))
        assert (item["loc"], item["field"], item["index"]) == (["body", field], field, None)
    items = shaped(post(client, "/products/batch", b"[" + json.dumps(GOOD).encode() + b"," + body + b"]"))
    assert [(i["index"], i["field"]) for i in items] == [(1, "title")]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_a_form_or_text_body_is_415(client: TestClient, path: str) -> None:
    response = post(client, path, b"asin=B014TMV5YE", **{"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert shaped(response)[0]["type"] == "unsupported_media_type"


@pytest.mark.parametrize(
    "key",
    [
        "é".encode(),
        b"\xff\xfe",
        b"tab\there",
        b"x" * 201,
        b"k" * 100_000,
        b"",
    ],
)
def test_a_bad_idempotency_key_is_422(client: TestClient, key: bytes) -> None:
    response = post(client, "/products", json.dumps(GOOD).encode(), **{"Idempotency-Key": key})  # type: ignore[arg-type]
    assert response.status_code == 422
    [item] = shaped(response)
    assert (item["loc"], item["field"]) == (["header", "idempotency-key"], "idempotency-key")


@pytest.mark.parametrize("settings_for_tests", [{"api_key": "s3cret"}])
def test_a_missing_or_wrong_api_key_is_401_before_the_body_is_looked_at(client: TestClient) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": b"\xffs3cret"}):
        response = post(client, "/products", b"NaN", **headers)  # type: ignore[arg-type]
        assert response.status_code == 401
        assert (
            shaped(response)[0]
            == error_item("unauthorized", "missing or wrong X-API-Key header", ["header", "x-api-key"]).model_dump()
        )


@pytest.mark.parametrize(
    "query",
    [
        {"category_id": "9223372036854775808"},
        {"category_id": "99999999999999999999"},
        {"category_id": "-9223372036854775809"},
        {"category_id": "0"},
        {"category_id": "1e400"},
        {"category_id": "NaN"},
        {"category_id": "abc"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "99999999999999999999"},
        {"q": "word " * 50},
        {"after": "B" * 201},
    ],
)
def test_read_queries_out_of_range_are_422_before_mongodb_is_asked(client: TestClient, query: dict[str, str]) -> None:
    response = client.get("/products", params=query)
    assert response.status_code == 422
    [item] = shaped(response)
    assert item["loc"] == ["query", next(iter(query))]


def test_the_largest_category_id_is_an_empty_page(client: TestClient) -> None:
    response = client.get("/products", params={"category_id": str(2**63 - 1)})
    assert response.json() == {"items": [], "next": None}


def test_unknown_paths_methods_and_records_are_shaped(client: TestClient) -> None:
    assert shaped(client.get("/nothing"))[0]["type"] == "not_found"
    assert shaped(client.put("/products"))[0]["type"] == "method_not_allowed"
    missing = client.get("/products/" + "%ED%A0%80" + "x" * 10_000)
    assert missing.status_code == 404 and len(shaped(missing)[0]["message"]) <= 500


@pytest.mark.parametrize("asin", ["B000000404", "A" * 500, "x' OR '1'='1"])
def test_an_unknown_product_is_a_404_that_does_not_echo_the_asin(client: TestClient, asin: str) -> None:
    response = client.get(f"/products/{asin}")
    assert response.status_code == 404
    assert shaped(response) == [
        {
            "type": "not_found",
            "loc": ["path", "asin"],
            "message": "no product with this asin",
            "index": None,
            "field": "asin",
        }
    ]


HOSTILE_STORED = {
    "asin": "B000000BAD",
    "title": 12,
    "imgUrl": "javascript:alert(1)",
    "productURL": " https://example.com/ x",
    "stars": float("nan"),
    "reviews": 2**63 - 1,
    "price": float("inf"),
    "listPrice": "12",
    "category_id": 1.5,
    "isBestSeller": 1,
    "boughtInLastMonth": True,
    "category_name": None,
    "colour": {"nested": [1]},
}


def test_a_stored_product_the_write_contract_refuses_is_still_served_without_its_bad_values(
    client: TestClient,
) -> None:
    app.dependency_overrides[get_db] = lambda: StoredDatabase([HOSTILE_STORED], [])
    served = client.get("/products/B000000BAD")
    assert served.status_code == 200
    assert served.json() == {
        "asin": "B000000BAD",
        "title": None,
        "imgUrl": "",
        "productURL": "",
        "stars": None,
        "reviews": 2**63 - 1,
        "price": None,
        "listPrice": None,
        "category_id": None,
        "isBestSeller": None,
        "boughtInLastMonth": None,
        "category_name": None,
    }
    page = client.get("/products", params={"limit": 1})
    assert page.status_code == 200 and page.json()["items"][0]["imgUrl"] == ""


def test_stored_categories_with_odd_values_are_served(client: TestClient) -> None:
    stored = [{"id": 3, "category_name": "Toys"}, {"id": "x", "category_name": None}, {}]
    app.dependency_overrides[get_db] = lambda: StoredDatabase([], stored)
    response = client.get("/categories")
    assert response.json() == [
        {"id": 3, "category_name": "Toys"},
        {"id": None, "category_name": None},
        {"id": None, "category_name": None},
    ]


@pytest.mark.parametrize(
    ("url", "served"),
    [
        ("https://m.media-amazon.com/images/I/1.jpg", "https://m.media-amazon.com/images/I/1.jpg"),
        ("HTTP://EXAMPLE.COM/A", "HTTP://EXAMPLE.COM/A"),
        ("javascript:alert(1)", ""),
        ("JaVaScRiPt:alert(1)", ""),
        ("data:image/png;base64,AAAA", ""),
        ("/relative/path", ""),
        ("http://", ""),
        ("https://example.com/\nx", ""),
        (42, ""),
        (None, ""),
    ],
)
def test_only_http_urls_are_served_as_urls(url: object, served: str) -> None:
    assert ProductView.model_validate({"imgUrl": url, "productURL": url}).imgUrl == served


def test_readable_escapes_lone_surrogates_and_shortens() -> None:
    assert readable("x\ud800y") == "x\\ud800y"
    assert len(readable("y" * 10_000)) == 500
    assert readable("plain é") == "plain é"


def test_pydantic_errors_lose_their_input_and_keep_where_and_why() -> None:
    errors = [
        {"type": "finite_number", "loc": (3, "price"), "msg": "Input should be a finite number", "input": math.nan}
    ]
    [item] = pydantic_items(errors, ["body"])
    assert item.model_dump() == {
        "type": "finite_number",
        "loc": ["body", 3, "price"],
        "message": "Input should be a finite number",
        "index": 3,
        "field": "price",
    }


def test_openapi_keeps_the_record_request_bodies() -> None:
    schema = app.openapi()
    for path, model in [("/products", "Product"), ("/AmazonProduct", "Product"), ("/Category", "Category")]:
        body = schema["paths"][path]["post"]["requestBody"]
        assert body == {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    batch = schema["paths"]["/products/batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/Product"}
    assert {"Product", "Category", "ErrorBody"} <= set(schema["components"]["schemas"])


@pytest.mark.parametrize("value", [10**400, float("nan"), float("-inf"), "1", True, None, [1], {"$numberDecimal": "1"}])
def test_a_stored_number_that_cannot_be_served_is_null(value: object) -> None:
    view = ProductView.model_validate({"price": value, "stars": value, "reviews": value})
    assert (view.price, view.stars, view.reviews) == (None, None, value if type(value) is int else None)
