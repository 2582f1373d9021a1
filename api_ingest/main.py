"""FastAPI ingest service: validates products and categories and produces them to Kafka.

    uvicorn api_ingest.main:app --host 127.0.0.1 --port 8000      (docs at /docs)

A 2xx answer means every record of the request is committed to Kafka in one transaction (acks=all).
Batches are all-or-nothing: one invalid record rejects the whole batch with 422, listing the index and
field of every invalid record, and nothing of it is produced. Send an `Idempotency-Key` header to make a
retry safe: a key seen before gets the first answer again (header `Idempotent-Replayed: true`) and
produces nothing.

Every 4xx and 503 has one shape, `{"detail": [{"type", "loc", "message", "index", "field"}, ...]}`:
see api_ingest/errors.py.

This module only builds the app: the lifespan (producer, database), the routers (api_ingest/routes/), the
metrics middleware, the error handlers and the OpenAPI components of the record models.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api_ingest import metrics
from api_ingest.errors import install_error_handlers
from api_ingest.producer import RecordProducer
from api_ingest.routes import api_router
from lakehouse.mongo import mongo_client, redacted_uri
from lakehouse.schemas import Category, Product
from lakehouse.settings import settings

log = logging.getLogger("api_ingest")


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """One producer pool and one MongoDB client per run, handed to every request as lifespan state
    (api_ingest/deps.py). Reads the module's `settings` when it starts, so a test can swap them first."""
    config = settings
    producer = RecordProducer(config)
    mongo = mongo_client(config.mongo_uri, server_selection_timeout_ms=3000, app_name="amazon-lakehouse-api")
    db = mongo[config.mongo_db]
    # A string another writer stored as invalid UTF-8 is served with U+FFFD instead of failing the read.
    db = db.with_options(codec_options=db.codec_options.with_options(unicode_decode_error_handler="replace"))
    log.info("producing to %s, reading from %s", config.kafka_bootstrap_servers, redacted_uri(config.mongo_uri))
    try:
        yield {"settings": config, "producer": producer, "db": db}
    finally:
        producer.close()
        mongo.close()


app = FastAPI(
    title="Amazon products ingest API",
    version="0.2.0",
    description=__doc__,
    lifespan=lifespan,
)
app.include_router(api_router)
app.middleware("http")(metrics.count_requests)
install_error_handlers(app)


def openapi_with_record_models() -> dict[str, Any]:
    """FastAPI's OpenAPI plus the record models in its components: the POST routes read their bodies by
    hand, so FastAPI does not see the models their request bodies refer to."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, definitions = models_json_schema(
            [(Product, "validation"), (Category, "validation")], ref_template="#/components/schemas/{model}"
        )
        schema.setdefault("components", {}).setdefault("schemas", {}).update(definitions["$defs"])
        app.openapi_schema = schema
    return app.openapi_schema


app.openapi = openapi_with_record_models  # type: ignore[method-assign]
