"""Shared dependencies of the routes, as `Annotated` aliases.

The settings, the producer and the database are made once per application run by the lifespan
(api_ingest/main.py), which hands them to every request as lifespan state; handlers receive them from
here and never look them up themselves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from pymongo.database import Database

from api_ingest.errors import ApiError
from api_ingest.producer import RecordProducer
from api_ingest.validation import MAX_BODY_BYTES, body_too_large
from lakehouse.settings import Settings

MAX_IDEMPOTENCY_KEY_CHARS = 200


def get_settings(request: Request) -> Settings:
    return request.state.settings


def get_producer(request: Request) -> RecordProducer:
    return request.state.producer


def get_db(request: Request) -> Database:
    return request.state.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
ProducerDep = Annotated[RecordProducer, Depends(get_producer)]
DatabaseDep = Annotated[Database, Depends(get_db)]


def require_api_key(settings: SettingsDep, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """401 unless the X-API-Key header is the configured API_KEY (no check when API_KEY is empty)."""
    if settings.api_key and x_api_key != settings.api_key:
        raise ApiError.single(401, "unauthorized", "missing or wrong X-API-Key header", ["header", "x-api-key"])


def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            description="Any unique string per request (the client uses a hash of the batch); a retry with the "
            "same key and body gets the first answer and produces nothing.",
        ),
    ] = None,
) -> str | None:
    """The Idempotency-Key header, or None; 422 unless printable ASCII (HTTP carries header values as bytes,
    so any other character arrives in no agreed encoding)."""
    if idempotency_key is not None and not (idempotency_key.isascii() and idempotency_key.isprintable()):
        raise ApiError.single(
            422,
            "idempotency_key_invalid",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
            ["header", "idempotency-key"],
        )
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]


async def read_body(request: Request) -> bytes:
    """The request body; 413 as soon as it passes MAX_BODY_BYTES, before the rest is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise body_too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def content_type(request: Request) -> str:
    """The Content-Type header, "" when absent."""
    return request.headers.get("content-type", "")


BodyDep = Annotated[bytes, Depends(read_body)]
ContentTypeDep = Annotated[str, Depends(content_type)]
