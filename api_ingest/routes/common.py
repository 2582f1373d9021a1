"""What the routes of every resource share.

POST routes read their body by hand (api_ingest/validation.py decides on it), so their OpenAPI request
bodies are declared here; the record models are added to the OpenAPI components by api_ingest/main.py.
GET routes bound their query values and answer 503 when the serving database does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Depends
from pymongo.errors import PyMongoError

from api_ingest.deps import require_api_key
from api_ingest.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api_ingest.ingest import RETRY_AFTER_SECONDS, Accepted

# MongoDB stores integers in at most 8 bytes; a larger one cannot even be put in a query (OverflowError).
INT64_MAX = 2**63 - 1
MAX_QUERY_CHARS = 200
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such record"},
    422: {"model": ErrorBody, "description": "Invalid query or path value"},
    503: {"model": ErrorBody, "description": "The serving database did not answer (Retry-After)"},
}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def one_record_body(schema: str) -> dict[str, Any]:
    """OpenAPI for a body holding one record of `schema`."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}}


def batch_body(schema: str) -> dict[str, Any]:
    """OpenAPI for a batch body: a JSON array of `schema`, or NDJSON (one record per line)."""
    array = {"type": "array", "items": _ref(schema)}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": array}, "application/x-ndjson": {"schema": {"type": "string"}}},
        }
    }


def write_route(schema: str, batch: bool = False) -> dict[str, Any]:
    """The options of a POST route: 201 Accepted, the API key check, the error answers, the request body."""
    return {
        "status_code": 201,
        "response_model": Accepted,
        "dependencies": [Depends(require_api_key)],
        "responses": ERROR_RESPONSES,
        "openapi_extra": batch_body(schema) if batch else one_record_body(schema),
    }


@contextmanager
def mongo_or_503() -> Iterator[None]:
    """Turns a failing serving database into 503 with Retry-After."""
    try:
        yield
    except PyMongoError as error:
        raise ApiError.single(
            503,
            "serving_unavailable",
            f"the serving database is unavailable: {error.__class__.__name__}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from error
