"""One error shape for every answer that is not a 2xx (401, 404, 405, 413, 415, 422, 503):

    {"detail": [{"type": "greater_than_equal", "loc": ["body", 1, "price"],
                 "message": "Input should be greater than or equal to 0", "index": 1, "field": "price"}]}

- `detail` is always a list, with one item per problem (a batch lists every invalid field of every record).
- `type`: a stable machine-readable code (pydantic's error types, or the API's own: `json_invalid`,
  `unauthorized`, `not_found`, `body_too_large`, `unsupported_media_type`, `kafka_unavailable`, ...).
- `loc`: where, FastAPI's convention: `["body", <record index in a batch>, <field>]`, `["header", name]`,
  `["query", name]`, `["path", name]`, or `[]` when the problem is not in the request (Kafka is down).
- `message`: for people. It never echoes a whole input value, and every string in `message` and `loc` is
  made encodable (a lone surrogate becomes the text `\\ud800`) and shortened, so an error about a hostile
  input can always be sent: JSON cannot carry NaN, and UTF-8 cannot carry a lone surrogate.
- `index`: the record's position in a batch (0-based), else null; `field`: the record field or the
  parameter name (dotted for nested fields), else null.

`ApiError` carries the status, the items and any headers (`Retry-After`); the handlers below turn it, and
FastAPI's and Starlette's own errors, into that shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lakehouse.contract import error_message

MAX_MESSAGE_CHARS = 500
MAX_LOC_CHARS = 200


class ErrorItem(BaseModel):
    """One problem with a request."""

    type: str
    loc: list[str | int]
    message: str
    index: int | None = None
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every 4xx and 503 answer."""

    detail: list[ErrorItem]


class ApiError(Exception):
    """An answer other than 2xx: `status_code`, the `errors` to list, and extra `headers` (Retry-After)."""

    def __init__(self, status_code: int, errors: Sequence[ErrorItem], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status_code}: {'; '.join(e.message for e in errors)}")
        self.status_code = status_code
        self.errors = list(errors)
        self.headers = dict(headers or {})

    @classmethod
    def single(
        cls,
        status_code: int,
        code: str,
        message: str,
        loc: Sequence[str | int] = (),
        headers: Mapping[str, str] | None = None,
    ) -> ApiError:
        """An error with one item at `loc` (its `index` and `field` are read from `loc`)."""
        return cls(status_code, [error_item(code, message, loc)], headers)


def readable(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` as something JSON in UTF-8 can carry: lone surrogates escaped, at most `limit` characters."""
    encodable = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return encodable if len(encodable) <= limit else encodable[: limit - 1] + "…"


def _readable_loc(loc: Iterable[Any]) -> list[str | int]:
    return [part if isinstance(part, int) else readable(str(part), MAX_LOC_CHARS) for part in loc]


def error_item(code: str, message: str, loc: Sequence[Any] = ()) -> ErrorItem:
    """An item of type `code` for a problem at `loc` (FastAPI's convention, see the module docstring)."""
    safe_loc = _readable_loc(loc)
    index, field = _index_and_field(safe_loc)
    return ErrorItem(type=code, loc=safe_loc, message=readable(message), index=index, field=field)


def _index_and_field(loc: list[str | int]) -> tuple[int | None, str | None]:
    if not loc:
        return None, None
    where, rest = loc[0], loc[1:]
    index = None
    if where == "body" and rest and isinstance(rest[0], int):
        index, rest = rest[0], rest[1:]
    return index, ".".join(map(str, rest)) or None


def pydantic_items(errors: Iterable[Mapping[str, Any]], prefix: Sequence[str | int] = ()) -> list[ErrorItem]:
    """Items for pydantic's (or FastAPI's) error dicts, each `loc` behind `prefix`; the `input` and `ctx`
    (which may hold NaN, a lone surrogate or megabytes) are dropped."""
    return [error_item(e["type"], error_message(e), [*prefix, *e["loc"]]) for e in errors]


def error_response(
    status_code: int, errors: Sequence[ErrorItem], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        ErrorBody(detail=list(errors)).model_dump(mode="json"), status_code=status_code, headers=dict(headers or {})
    )


async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
    return error_response(error.status_code, error.errors, error.headers)


async def _request_validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation of headers, query and path parameters, without echoing the input."""
    return error_response(422, pydantic_items(error.errors()))


def _status_type(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def _http_exception(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Starlette's errors (404 for an unknown path, 405 for a wrong method) in the same shape."""
    message = error.detail if isinstance(error.detail, str) else str(error.detail)
    item = error_item(_status_type(error.status_code), message)
    return error_response(error.status_code, [item], error.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every 4xx and 503 of `app` in the one shape above."""
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _request_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_exception)  # type: ignore[arg-type]


# The OpenAPI `responses` of the write endpoints.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        401: "Missing or wrong X-API-Key",
        413: "Body or batch too large",
        415: "Content-Type is neither JSON nor, for batches, NDJSON",
        422: "Invalid request: every problem, with where it is",
        503: "Kafka did not commit in time (Retry-After)",
    }.items()
}
