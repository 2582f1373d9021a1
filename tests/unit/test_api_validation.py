"""The API's verdict on request bodies (api_ingest/validation.py), without Kafka or MongoDB: every hostile
body is a 4xx whose errors say where and why and can be sent as UTF-8 JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from api_ingest.errors import ApiError
from api_ingest.strict_json import MAX_OBJECT_KEYS, InvalidJson, decode_json
from api_ingest.validation import (
    MAX_BATCH_RECORDS,
    MAX_BODY_BYTES,
    MAX_REPORTED_ERRORS,
    validate_batch,
    validate_one,
)
from lakehouse.schemas import Category, Product
from tests.unit.test_schemas import GOOD

GOOD_CATEGORY = {"id": 104, "category_name": "Suitcases"}
PRODUCT_STRINGS = ("asin", "title", "imgUrl", "productURL")
PRODUCT_NUMBERS = ("price", "stars", "listPrice")
INT64_FIELDS = [(Product, GOOD, "reviews"), (Product, GOOD, "category_id"), (Product, GOOD, "boughtInLastMonth")]
INT64_FIELDS += [(Category, GOOD_CATEGORY, "id")]


def with_raw(record: dict[str, Any], field: str, raw_json: str) -> str:
    """`record` as JSON text with `field`'s value written as `raw_json` verbatim (NaN, 1e400, "\\ud800")."""
    text = json.dumps({**record, field: "__RAW__"})
    return text.replace('"__RAW__"', raw_json)


def rejection(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call(*args)
    return raised.value


def sendable(error: ApiError) -> list[dict[str, Any]]:
    """The error list as the API sends it; fails if it could not be encoded."""
    items = [item.model_dump() for item in error.errors]
    json.dumps(items, allow_nan=False, ensure_ascii=False).encode("utf-8")
    return items


def first(error: ApiError) -> tuple[str, list[str | int]]:
    item = sendable(error)[0]
    return item["type"], item["loc"]


NON_FINITE = [("NaN", "json_non_finite_number"), ("Infinity", "json_non_finite_number")]
NON_FINITE += [("-Infinity", "json_non_finite_number"), ("1e400", "json_non_finite_number")]
NON_FINITE += [("-1e400", "json_non_finite_number"), ("1E+309", "json_non_finite_number")]
LONE_SURROGATES = ['"x\\ud800y"', '"\\udfff"', '"\\uDBFF"', '"a\\ud800\\ud800b"', '"\\udc00\\ud800"']


@pytest.mark.parametrize(("literal", "code"), NON_FINITE)
@pytest.mark.parametrize("field", PRODUCT_NUMBERS)
def test_a_non_finite_number_is_422_at_its_field(field: str, literal: str, code: str) -> None:
    error = rejection(validate_one, with_raw(GOOD, field, literal).encode(), Product)
    assert error.status_code == 422
    assert first(error) == (code, ["body", field])


@pytest.mark.parametrize("escape", LONE_SURROGATES)
@pytest.mark.parametrize("field", PRODUCT_STRINGS)
def test_a_lone_surrogate_in_any_string_is_422_at_its_field(field: str, escape: str) -> None:
    error = rejection(validate_one, with_raw(GOOD, field, escape).encode(), Product)
    assert first(error) == ("json_lone_surrogate", ["body", field])


def test_a_lone_surrogate_in_a_category_name_or_in_a_key_is_422() -> None:
    name = rejection(validate_one, with_raw(GOOD_CATEGORY, "category_name", '"\\ud800"').encode(), Category)
    assert first(name) == ("json_lone_surrogate", ["body", "category_name"])
    key = rejection(validate_one, b'{"id": 1, "category_name": "x", "\\ud800": 1}', Category)
    assert first(key) == ("json_lone_surrogate", ["body", "\\ud800"])  # escaped as text, so it can be sent


def test_surrogate_pairs_and_an_escaped_backslash_are_text() -> None:
    pair = validate_one(with_raw(GOOD, "title", '"Suitcase \\ud83e\\uddf3"').encode(), Product)
    assert pair.title == "Suitcase \U0001f9f3"
    backslash = validate_one(with_raw(GOOD, "title", '"C:\\\\ud800"').encode(), Product)
    assert backslash.title == "C:\\ud800"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "json_invalid"),
        (b"  \n ", "json_invalid"),
        (b"{not json", "json_invalid"),
        (b'{"asin": "B014TMV5YE",}', "json_invalid"),
        (b"\xff{}", "json_invalid_utf8"),
        (b'{"title": "\xc3\x28"}', "json_invalid_utf8"),
        (b'{"title": "\xed\xa0\x80"}', "json_invalid_utf8"),  # an encoded surrogate is not UTF-8
        (b'{"title": "\xc0\xaf"}', "json_invalid_utf8"),  # overlong
        ("{}".encode("utf-16"), "json_invalid_utf8"),
        (b"\xef\xbb\xbf{}", "json_invalid"),  # a byte-order mark
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
        (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "json_too_deep"),
        (b"1" * 5_000, "json_number_too_long"),
    ],
)
def test_bodies_that_are_not_acceptable_json_are_422(body: bytes, code: str) -> None:
    error = rejection(validate_one, body, Product)
    assert error.status_code == 422
    assert first(error) == (code, ["body"])


@pytest.mark.parametrize("digits", [1_001, 5_000])
def test_a_number_longer_than_the_job_reads_is_422_where_it_is(digits: int) -> None:
    """The job's JSON parser (Jackson) refuses numbers of over 1,000 digits (found by review)."""
    for token in (b"9" * digits, b"1." + b"0" * digits):
        error = rejection(validate_one, b'{"reviews": ' + token + b"}", Product)
        assert first(error) == ("json_number_too_long", ["body", "reviews"])


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b'"B014TMV5YE"', b"42", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_422(body: bytes) -> None:
    error = rejection(validate_one, body, Product)
    assert first(error) == ("model_type", ["body"])


def test_a_duplicate_key_is_422_whichever_value_comes_last() -> None:
    for prices in ((-1, 5), (5, -1)):
        text = json.dumps(GOOD)[:-1] + f', "price": {prices[0]}, "price": {prices[1]}}}'
        error = rejection(validate_one, text.encode(), Product)
        assert first(error) == ("json_duplicate_key", ["body", "price"])


def test_an_object_with_too_many_keys_is_422_before_the_model_sees_it() -> None:
    keys = {f"k{i}": i for i in range(MAX_OBJECT_KEYS + 1)}
    error = rejection(validate_one, json.dumps(keys).encode(), Product)
    assert first(error) == ("json_too_many_keys", ["body"])


@pytest.mark.parametrize(("model", "record", "field"), INT64_FIELDS)
@pytest.mark.parametrize("value", [2**63, 10**20, 10**400, -(2**63) - 1])
def test_whole_numbers_beyond_64_bits_are_422(model: type[BaseModel], record: dict, field: str, value: int) -> None:
    """Needs the int64 bounds of lakehouse/schemas.py (Spark's LongType, BSON's int64)."""
    error = rejection(validate_one, json.dumps({**record, field: value}).encode(), model)
    assert first(error)[1] == ["body", field]


@pytest.mark.parametrize(("model", "record", "field"), INT64_FIELDS)
def test_the_largest_64_bit_integer_is_accepted(model: type[BaseModel], record: dict, field: str) -> None:
    assert getattr(validate_one(json.dumps({**record, field: 2**63 - 1}).encode(), model), field) == 2**63 - 1


def test_a_huge_number_for_a_float_field_is_422_not_an_overflow() -> None:
    error = rejection(validate_one, json.dumps({**GOOD, "price": 10**400}).encode(), Product)
    assert first(error) == ("float_type", ["body", "price"])


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://example.com/a", "//example.com"])
@pytest.mark.parametrize("field", ["imgUrl", "productURL"])
def test_a_url_that_is_not_http_is_422(field: str, url: str) -> None:
    """Needs the http(s)-only URLs of lakehouse/schemas.py."""
    error = rejection(validate_one, json.dumps({**GOOD, field: url}).encode(), Product)
    assert first(error)[1] == ["body", field]


@pytest.mark.parametrize(("field", "value"), [("price", "12"), ("reviews", 1.0), ("isBestSeller", 1), ("asin", 7)])
def test_types_are_strict_json_types(field: str, value: object) -> None:
    """Needs the strict types of lakehouse/schemas.py."""
    error = rejection(validate_one, json.dumps({**GOOD, field: value}).encode(), Product)
    assert first(error)[1] == ["body", field]


def test_null_for_a_field_with_a_default_means_absent() -> None:
    """Needs null-as-absent in lakehouse/schemas.py."""
    product = validate_one(json.dumps({**GOOD, "listPrice": None, "imgUrl": None}).encode(), Product)
    assert (product.listPrice, product.imgUrl) == (0.0, "")


def test_a_valid_body_is_its_record() -> None:
    assert validate_one(json.dumps(GOOD).encode(), Product).model_dump() == GOOD
    assert validate_one(json.dumps(GOOD_CATEGORY).encode(), Category).model_dump() == GOOD_CATEGORY


def test_every_field_problem_is_listed_without_echoing_the_input() -> None:
    bad = {**GOOD, "price": -1, "asin": "x" * 100_000, "colour": "red"}
    items = sendable(rejection(validate_one, json.dumps(bad).encode(), Product))
    assert [(i["loc"], i["field"], i["index"]) for i in items] == [
        (["body", "asin"], "asin", None),
        (["body", "price"], "price", None),
        (["body", "colour"], "colour", None),
    ]
    assert all("x" * 100 not in i["message"] and "input" not in i for i in items)


def test_a_body_over_the_limit_is_413() -> None:
    error = rejection(validate_one, b" " * (MAX_BODY_BYTES + 1), Product)
    assert (error.status_code, first(error)[0]) == (413, "body_too_large")


# Batches: a JSON array, or NDJSON


def array(*records: str) -> bytes:
    return ("[" + ",".join(records) + "]").encode()


def ndjson(*lines: str | bytes) -> bytes:
    return b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)


GOOD_TEXT = json.dumps(GOOD)
HOSTILE_VALUES = [
    ("price", "NaN", "json_non_finite_number"),
    ("stars", "-Infinity", "json_non_finite_number"),
    ("listPrice", "1e400", "json_non_finite_number"),
    ("title", '"x\\ud800y"', "json_lone_surrogate"),
    ("asin", '"\\udc00"', "json_lone_surrogate"),
]


@pytest.mark.parametrize(("field", "literal", "code"), HOSTILE_VALUES)
def test_a_hostile_value_in_a_json_array_is_422_at_its_record_and_field(field: str, literal: str, code: str) -> None:
    body = array(GOOD_TEXT, with_raw(GOOD, field, literal), GOOD_TEXT)
    items = sendable(rejection(validate_batch, body, "application/json", Product))
    assert [(i["type"], i["index"], i["field"]) for i in items] == [(code, 1, field)]


@pytest.mark.parametrize(("field", "literal", "code"), HOSTILE_VALUES)
def test_a_hostile_value_on_an_ndjson_line_is_422_at_its_record_and_field(field: str, literal: str, code: str) -> None:
    body = ndjson(GOOD_TEXT, "", with_raw(GOOD, field, literal))
    items = sendable(rejection(validate_batch, body, "application/x-ndjson", Product))
    assert [(i["type"], i["index"], i["field"]) for i in items] == [(code, 1, field)]
    assert items[0]["message"].startswith("line 3: ")


def test_an_ndjson_batch_lists_the_problems_of_every_line() -> None:
    body = ndjson(
        with_raw(GOOD, "price", "Infinity"),
        GOOD_TEXT,
        "{broken",
        b'{"title": "\xff"}',
        json.dumps({**GOOD, "price": -1}),
        "[1]",
        GOOD_TEXT[:-1] + ', "asin": "B000000001"}',
    )
    items = sendable(rejection(validate_batch, body, "application/x-ndjson; charset=utf-8", Product))
    assert [(i["index"], i["type"]) for i in items] == [
        (0, "json_non_finite_number"),
        (2, "json_invalid"),
        (3, "json_invalid_utf8"),
        (4, "greater_than_equal"),
        (5, "model_type"),
        (6, "json_duplicate_key"),
    ]


@pytest.mark.parametrize("body", [b"", b"{}", b'"x"', b"NaN", b"[NaN]", b"[1, 2"])
def test_a_json_batch_that_is_not_an_array_of_acceptable_json_is_422(body: bytes) -> None:
    error = rejection(validate_batch, body, "application/json", Product)
    assert error.status_code == 422 and sendable(error)


def test_batch_records_that_are_not_objects_are_422_at_their_index() -> None:
    items = sendable(rejection(validate_batch, array(GOOD_TEXT, "1", "null", '"x"'), "", Product))
    assert [(i["index"], i["type"]) for i in items] == [(1, "model_type"), (2, "model_type"), (3, "model_type")]


def test_valid_batches_as_json_or_ndjson() -> None:
    assert validate_batch(array(GOOD_TEXT, GOOD_TEXT), "application/json", Product)[1].model_dump() == GOOD
    assert len(validate_batch(ndjson(GOOD_TEXT, "  ", GOOD_TEXT, ""), "application/jsonl", Product)) == 2
    assert validate_batch(b"[]", "application/vnd.example+json", Product) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_batch_that_is_neither_json_nor_ndjson_is_415(content_type: str) -> None:
    error = rejection(validate_batch, array(GOOD_TEXT), content_type, Product)
    assert (error.status_code, first(error)) == (415, ("unsupported_media_type", ["header", "content-type"]))


def test_too_many_records_or_bytes_is_413() -> None:
    too_many = array(*["{}"] * (MAX_BATCH_RECORDS + 1))
    assert rejection(validate_batch, too_many, "application/json", Product).status_code == 413
    lines = ndjson(*["{}"] * (MAX_BATCH_RECORDS + 1))
    assert rejection(validate_batch, lines, "application/x-ndjson", Product).status_code == 413
    huge = b" " * (MAX_BODY_BYTES + 1)
    assert rejection(validate_batch, huge, "application/json", Product).status_code == 413


def test_at_most_so_many_problems_are_listed() -> None:
    body = array(*[json.dumps({**GOOD, "price": -1})] * (MAX_REPORTED_ERRORS + 500))
    items = sendable(rejection(validate_batch, body, "application/json", Product))
    assert len(items) == MAX_REPORTED_ERRORS + 1
    assert items[-1]["type"] == "too_many_errors"
    nans = array(*[with_raw(GOOD, "price", "NaN")] * (MAX_REPORTED_ERRORS + 500))
    assert len(rejection(validate_batch, nans, "application/json", Product).errors) == MAX_REPORTED_ERRORS


def test_the_decoder_alone() -> None:
    assert decode_json(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    with pytest.raises(InvalidJson) as invalid:
        decode_json(b'[{"a": NaN}, {"b": "\\ud800"}, {"c": 1, "c": 2}]')
    assert [(p.code, list(p.path)) for p in invalid.value.problems] == [
        ("json_non_finite_number", [0, "a"]),
        ("json_lone_surrogate", [1, "b"]),
        ("json_duplicate_key", [2, "c"]),
    ]
