"""Categories: POST one or a batch (into Kafka), GET them all (from the serving layer).

POST /categories          one category (alias POST /Category)          201 Accepted | 401 413 415 422 503
POST /categories/batch    JSON array or NDJSON, all or nothing         201 Accepted | 401 413 415 422 503
GET  /categories          every category, by id                       200 list[CategoryView] | 503
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api_ingest.deps import BodyDep, ContentTypeDep, DatabaseDep, IdempotencyKeyDep, ProducerDep, SettingsDep
from api_ingest.ingest import Accepted, category_key, commit_batch, commit_one
from api_ingest.routes.common import READ_ERRORS, mongo_or_503, write_route
from api_ingest.validation import body_format, validate_batch, validate_one
from api_ingest.views import CategoryView
from lakehouse import serving
from lakehouse.schemas import Category

router = APIRouter(prefix="/categories", tags=["categories"])


@router.post("", **write_route("Category"))
async def post_category(
    body: BodyDep,
    content_type: ContentTypeDep,
    producer: ProducerDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep,
) -> Accepted:
    """One category; the original project's `POST /Category` is an alias."""
    body_format(content_type, ndjson_allowed=False)
    category = validate_one(body, Category)
    topic = settings.kafka_topic_categories
    return await commit_one(producer, response, topic, category, category_key, idempotency_key)


@router.post("/batch", **write_route("Category", batch=True))
async def post_categories(
    body: BodyDep,
    content_type: ContentTypeDep,
    producer: ProducerDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep,
) -> Accepted:
    """Many categories as a JSON array or NDJSON, all-or-nothing, committed in one transaction."""
    categories = validate_batch(body, content_type, Category)
    topic = settings.kafka_topic_categories
    return await commit_batch(producer, response, topic, categories, category_key, idempotency_key, body)


@router.get("", response_model=list[CategoryView], responses={503: READ_ERRORS[503]})
def get_categories(db: DatabaseDep) -> list[dict[str, Any]]:
    """Every category, by id."""
    with mongo_or_503():
        return serving.list_categories(db)
