"""The API's verdict on a request body, as pure functions (no Kafka, no MongoDB, no request object).

    validate_one(body: bytes, model: type[M]) -> M
    validate_batch(body: bytes, content_type: str, model: type[M]) -> list[M]

Both return the validated record(s) or raise `ApiError` (api_ingest/errors.py) with the status and the
problems found: 413 (body over MAX_BODY_BYTES, batch over MAX_BATCH_RECORDS), 415 (a batch body that is
neither JSON nor NDJSON), 422 (anything else; at most MAX_REPORTED_ERRORS problems are listed). The POST
endpoints call exactly these, so what they answer for a body is what these return for it.

A body is first decoded as strict JSON (api_ingest/strict_json.py: UTF-8, no NaN or Infinity, no lone
surrogate, no duplicate key, ...), then validated as Python data by the model (`model.model_validate`), so
every field rule (bounds, patterns, strict types, null for absent) is the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from api_ingest.errors import ApiError, ErrorItem, error_item, pydantic_items
from api_ingest.strict_json import InvalidJson, decode_json

M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_BATCH_RECORDS = 10_000
MAX_REPORTED_ERRORS = 1_000
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines")
BodyFormat = Literal["json", "ndjson"]


def body_too_large() -> ApiError:
    return ApiError.single(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", ["body"])


def check_size(body: bytes) -> None:
    """413 for a body over MAX_BODY_BYTES."""
    if len(body) > MAX_BODY_BYTES:
        raise body_too_large()


def body_format(content_type: str, ndjson_allowed: bool) -> BodyFormat:
    """The body's format from its Content-Type: "json" for none, application/json or application/*+json;
    "ndjson" for the NDJSON types where allowed; else 415."""
    media_type = content_type.split(";")[0].strip().lower()
    is_json = media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
    if is_json:
        return "json"
    if ndjson_allowed and media_type in NDJSON_TYPES:
        return "ndjson"
    wanted = "application/json" + (" or NDJSON (application/x-ndjson)" if ndjson_allowed else "")
    message = f"Content-Type {media_type!r} is not accepted; send {wanted}"
    raise ApiError.single(415, "unsupported_media_type", message, ["header", "content-type"])


def _decoded(raw: bytes, loc: Sequence[str | int], line: int | None = None) -> Any:
    """The JSON value of `raw`, or ApiError 422 with each problem at `loc` + its path."""
    try:
        return decode_json(raw, MAX_REPORTED_ERRORS)
    except InvalidJson as invalid:
        where = "" if line is None else f"line {line}: "
        items = [error_item(p.code, where + p.message, [*loc, *p.path]) for p in invalid.problems]
        raise ApiError(422, items) from None


def _validated(value: Any, model: type[M], loc: Sequence[str | int]) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise ApiError(422, pydantic_items(error.errors(include_url=False), loc)) from None


def validate_one(body: bytes, model: type[M]) -> M:
    """The API's verdict on a single-record body: the record, or ApiError (413 or 422) with its problems."""
    check_size(body)
    return _validated(_decoded(body, ["body"]), model, ["body"])


def _check_count(count: int) -> None:
    if count > MAX_BATCH_RECORDS:
        message = f"a batch holds at most {MAX_BATCH_RECORDS} records, got {count}"
        raise ApiError.single(413, "batch_too_large", message, ["body"])


def _too_many(errors: list[ErrorItem]) -> list[ErrorItem]:
    if len(errors) <= MAX_REPORTED_ERRORS:
        return errors
    more = error_item("too_many_errors", f"more problems, not listed: only the first {MAX_REPORTED_ERRORS} are")
    return [*errors[:MAX_REPORTED_ERRORS], more]


def _all_valid(values: Sequence[tuple[int, Any]], model: type[M], errors: list[ErrorItem]) -> list[M]:
    """Validates each (index, value); the records if `errors` (carrying any earlier ones) stays empty, else
    422 with every problem (stops validating once MAX_REPORTED_ERRORS are found)."""
    records: list[M] = []
    for index, value in values:
        if len(errors) > MAX_REPORTED_ERRORS:
            break
        try:
            records.append(_validated(value, model, ["body", index]))
        except ApiError as error:
            errors += error.errors
    if errors:
        errors.sort(key=lambda error: error.index or 0)
        raise ApiError(422, _too_many(errors))
    return records


def _json_batch(body: bytes, model: type[M]) -> list[M]:
    items = _decoded(body, ["body"])
    if not isinstance(items, list):
        raise ApiError.single(422, "batch_not_array", "a batch is a JSON array of records (or NDJSON lines)", ["body"])
    _check_count(len(items))
    return _all_valid(list(enumerate(items)), model, [])


def _ndjson_batch(body: bytes, model: type[M]) -> list[M]:
    """One record per non-blank line; every line is decoded and validated, so one answer lists them all."""
    lines = [(number, line) for number, line in enumerate(body.splitlines(), start=1) if line.strip()]
    _check_count(len(lines))
    values: list[tuple[int, Any]] = []
    errors: list[ErrorItem] = []
    for index, (number, line) in enumerate(lines):
        if len(errors) > MAX_REPORTED_ERRORS:
            break
        try:
            values.append((index, _decoded(line, ["body", index], number)))
        except ApiError as error:
            errors += error.errors
    return _all_valid(values, model, errors)


def validate_batch(body: bytes, content_type: str, model: type[M]) -> list[M]:
    """The API's verdict on a batch body (a JSON array, or NDJSON when `content_type` says so): every
    record, or ApiError (413, 415 or 422) listing the problems, each with its record's index."""
    check_size(body)
    if body_format(content_type, ndjson_allowed=True) == "ndjson":
        return _ndjson_batch(body, model)
    return _json_batch(body, model)
