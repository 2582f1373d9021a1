"""FastAPI ingest service: validates products and categories and produces them to Kafka.

    uvicorn api_ingest.main:app --host 127.0.0.1 --port 8000      (docs at /docs)

A 2xx answer means every record of the request is committed to Kafka in one transaction (acks=all).
Batches are all-or-nothing: one invalid record rejects the whole batch with 422, listing the index and
field of every invalid record, and nothing of it is produced. Send an `Idempotency-Key` header to make a
retry safe: a key seen before gets the first answer again (header `Idempotent-Replayed: true`) and
produces nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api_ingest import metrics
from api_ingest.producer import DeliveryError, IdempotencyConflict, KeyedValue, RecordProducer
from api_ingest.reads import router as read_router
from lakehouse.mongo import mongo_client
from lakehouse.net import any_bootstrap_reachable
from lakehouse.schemas import Category, Product
from lakehouse.settings import settings

log = logging.getLogger("api_ingest")

MAX_BATCH_RECORDS = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024
RETRY_AFTER_SECONDS = 5
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


class Accepted(BaseModel):
    accepted: int
    topic: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.producer = RecordProducer(settings)
    mongo = mongo_client(settings.mongo_uri, server_selection_timeout_ms=3000, app_name="amazon-lakehouse-api")
    app.state.db = mongo[settings.mongo_db]
    log.info("producing to %s, reading from %s", settings.kafka_bootstrap_servers, settings.mongo_uri)
    try:
        yield
    finally:
        app.state.producer.close()
        mongo.close()


app = FastAPI(
    title="Amazon products ingest API",
    version="0.2.0",
    description=__doc__,
    lifespan=lifespan,
)
app.include_router(read_router)
app.include_router(metrics.router)
app.middleware("http")(metrics.count_requests)


def require_api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
    if settings.api_key and x_api_key != settings.api_key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key header")


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="Any unique string per request (the client uses a hash of the batch); a retry with the "
        "same key and body gets the first answer and produces nothing.",
    ),
]


async def _produce(
    request: Request,
    response: Response,
    topic: str,
    keyed: Sequence[KeyedValue],
    idempotency_key: str | None,
    fingerprint: str,
) -> Accepted:
    producer: RecordProducer = request.app.state.producer
    try:
        with metrics.PRODUCE_SECONDS.labels(topic=metrics.topic_kind(topic)).time():
            if idempotency_key is None and len(keyed) == 1:
                receipt, replayed = await producer.send_one(topic, keyed[0]), False
            else:
                receipt, replayed = await run_in_threadpool(
                    producer.send_records, topic, keyed, idempotency_key, fingerprint
                )
    except IdempotencyConflict as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None
    except DeliveryError as error:
        log.warning("%s", error)
        metrics.DELIVERY_ERRORS.labels(topic=metrics.topic_kind(topic)).inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Kafka is unavailable; nothing of this request was accepted",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from error
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.RECORDS.labels(topic=metrics.topic_kind(topic)).inc(receipt.accepted)
    return Accepted(accepted=receipt.accepted, topic=receipt.topic)


def _batch_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "index": e["loc"][0] if e["loc"] else None,
            "field": ".".join(map(str, e["loc"][1:])) or None,
            "message": e["msg"],
            "input": e.get("input") if not isinstance(e.get("input"), dict) else None,
        }
        for e in error.errors(include_url=False)
    ]


async def _read_body(request: Request) -> bytes:
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes")
    return body


def _parse_batch(request: Request, body: bytes) -> list[Any]:
    is_ndjson = request.headers.get("content-type", "").split(";")[0].strip() in NDJSON_TYPES
    try:
        items = [orjson.loads(line) for line in body.splitlines() if line.strip()] if is_ndjson else orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"body is not valid JSON: {error}") from None
    if not isinstance(items, list):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a batch is a JSON array (or NDJSON lines)")
    if len(items) > MAX_BATCH_RECORDS:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"a batch holds at most {MAX_BATCH_RECORDS} records, got {len(items)}"
        )
    return items


def _validate_batch(items: list[Any], model: type[BaseModel]) -> list[BaseModel]:
    try:
        return TypeAdapter(list[model]).validate_python(items)  # type: ignore[valid-type]
    except ValidationError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, _batch_errors(error)) from None


def product_key(product: Product) -> str:
    return product.asin


def category_key(category: Category) -> str:
    return str(category.id)


def _keyed(records: Sequence[BaseModel], key: Callable[[Any], str]) -> list[KeyedValue]:
    return [(key(record).encode(), record.model_dump_json().encode()) for record in records]


def _fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


AUTH = [Depends(require_api_key)]


def batch_request_body(schema: str) -> dict[str, Any]:
    """OpenAPI for a batch body read by hand (to report every bad record): a JSON array or NDJSON."""
    array = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": array}, "application/x-ndjson": {"schema": {"type": "string"}}},
        }
    }


async def _post_batch(
    request: Request,
    response: Response,
    model: type[BaseModel],
    topic: str,
    key: Callable[[Any], str],
    idempotency_key: str | None,
) -> Accepted:
    body = await _read_body(request)
    records = _validate_batch(_parse_batch(request, body), model)
    keyed = _keyed(records, key)
    return await _produce(request, response, topic, keyed, idempotency_key, _fingerprint(body))


async def _post_one(
    request: Request,
    response: Response,
    record: BaseModel,
    topic: str,
    key: Callable[[Any], str],
    idempotency_key: str | None,
) -> Accepted:
    keyed = _keyed([record], key)
    return await _produce(request, response, topic, keyed, idempotency_key, _fingerprint(keyed[0][1]))


@app.post("/products", status_code=201, response_model=Accepted, dependencies=AUTH, tags=["products"])
@app.post("/AmazonProduct", status_code=201, response_model=Accepted, dependencies=AUTH, tags=["aliases"])
async def post_product(
    product: Product, request: Request, response: Response, idempotency_key: IdempotencyKey = None
) -> Accepted:
    """One product; the original project's `POST /AmazonProduct` is an alias."""
    return await _post_one(request, response, product, settings.kafka_topic_products, product_key, idempotency_key)


@app.post(
    "/products/batch",
    status_code=201,
    response_model=Accepted,
    dependencies=AUTH,
    tags=["products"],
    openapi_extra=batch_request_body("Product"),
)
async def post_products(request: Request, response: Response, idempotency_key: IdempotencyKey = None) -> Accepted:
    """Many products as a JSON array or NDJSON, all-or-nothing, committed in one transaction."""
    return await _post_batch(request, response, Product, settings.kafka_topic_products, product_key, idempotency_key)


@app.post("/categories", status_code=201, response_model=Accepted, dependencies=AUTH, tags=["categories"])
@app.post("/Category", status_code=201, response_model=Accepted, dependencies=AUTH, tags=["aliases"])
async def post_category(
    category: Category, request: Request, response: Response, idempotency_key: IdempotencyKey = None
) -> Accepted:
    """One category; the original project's `POST /Category` is an alias."""
    return await _post_one(request, response, category, settings.kafka_topic_categories, category_key, idempotency_key)


@app.post(
    "/categories/batch",
    status_code=201,
    response_model=Accepted,
    dependencies=AUTH,
    tags=["categories"],
    openapi_extra=batch_request_body("Category"),
)
async def post_categories(request: Request, response: Response, idempotency_key: IdempotencyKey = None) -> Accepted:
    """Many categories as a JSON array or NDJSON, all-or-nothing, committed in one transaction."""
    return await _post_batch(
        request, response, Category, settings.kafka_topic_categories, category_key, idempotency_key
    )


@app.get("/health", tags=["operations"])
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@app.get("/ready", tags=["operations"])
def ready() -> JSONResponse:
    """The Kafka broker is reachable, so records can be accepted."""
    if any_bootstrap_reachable(settings.kafka_bootstrap_servers):
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "kafka unreachable"}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )
