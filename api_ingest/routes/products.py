"""Products: POST one or a batch (into Kafka), GET one or a page (from the serving layer).

POST /products            one product (alias POST /AmazonProduct)      201 Accepted | 401 413 415 422 503
POST /products/batch      JSON array or NDJSON, all or nothing         201 Accepted | 401 413 415 422 503
GET  /products/{asin}     one product with its category name          200 ProductView | 404 503
GET  /products?category_id=&q=&limit=&after=   a page in asin order    200 ProductPage | 422 503
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api_ingest.deps import BodyDep, ContentTypeDep, DatabaseDep, IdempotencyKeyDep, ProducerDep, SettingsDep
from api_ingest.errors import ApiError
from api_ingest.ingest import Accepted, commit_batch, commit_one, product_key
from api_ingest.routes.common import INT64_MAX, MAX_QUERY_CHARS, READ_ERRORS, mongo_or_503, write_route
from api_ingest.validation import body_format, validate_batch, validate_one
from api_ingest.views import ProductPage, ProductView
from lakehouse import serving
from lakehouse.schemas import Product

router = APIRouter(prefix="/products", tags=["products"])


@router.post("", **write_route("Product"))
async def post_product(
    body: BodyDep,
    content_type: ContentTypeDep,
    producer: ProducerDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep,
) -> Accepted:
    """One product; the original project's `POST /AmazonProduct` is an alias."""
    body_format(content_type, ndjson_allowed=False)
    product = validate_one(body, Product)
    return await commit_one(producer, response, settings.kafka_topic_products, product, product_key, idempotency_key)


@router.post("/batch", **write_route("Product", batch=True))
async def post_products(
    body: BodyDep,
    content_type: ContentTypeDep,
    producer: ProducerDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep,
) -> Accepted:
    """Many products as a JSON array or NDJSON, all-or-nothing, committed in one transaction."""
    products = validate_batch(body, content_type, Product)
    topic = settings.kafka_topic_products
    return await commit_batch(producer, response, topic, products, product_key, idempotency_key, body)


@router.get("/{asin}", response_model=ProductView, responses=READ_ERRORS)
def get_product(asin: str, db: DatabaseDep) -> dict[str, Any]:
    """One product by ASIN, with its category name."""
    with mongo_or_503():
        product = serving.find_product(db, asin)
    if product is None:
        raise ApiError.single(404, "not_found", "no product with this asin", ["path", "asin"])
    return product


@router.get("", response_model=ProductPage, responses={s: READ_ERRORS[s] for s in (422, 503)})
def list_products(
    db: DatabaseDep,
    category_id: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="a category's id")] = None,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="words that must all appear in the title")] = "",
    limit: Annotated[int, Query(ge=1, le=serving.MAX_PAGE)] = 50,
    after: Annotated[
        str | None, Query(max_length=MAX_QUERY_CHARS, description="the `next` cursor of the previous page")
    ] = None,
) -> ProductPage:
    """Products in ASIN order, a page at a time: pass the answer's `next` as `after` for the next page."""
    with mongo_or_503():
        items, next_cursor = serving.search_products(db, category_id, q, limit, after)
    return ProductPage(items=[ProductView.model_validate(item) for item in items], next=next_cursor)
