"""The MongoDB sink's check before sending (`sink_problem`): what BSON and MongoDB cannot hold, and the exact
reason each gets; the reduced form of a quarantine record the sink refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.regex import Regex

from spark_jobs.bson_limits import MAX_DOCUMENT_BYTES, sink_problem
from spark_jobs.mongo_sink import Rejected, WriteStats, checked, reduced_quarantine


def document(**fields: Any) -> dict[str, Any]:
    return {"_id": "B000000001", "title": "Suitcase", "price": 10.5, **fields}


def nested(levels: int) -> dict[str, Any]:
    """A value that is `levels` documents deep ({"s": {"s": ... {"s": 1}}})."""
    value: dict[str, Any] = {"s": 1}
    for _ in range(levels - 1):
        value = {"s": value}
    return value


def test_a_document_bson_and_mongodb_hold_has_no_problem() -> None:
    assert (
        sink_problem(
            document(
                stars=4.5,
                reviews=2**63 - 1,
                debt=-(2**63),
                isBestSeller=True,
                category_name=None,
                title="Valise légère ✈",
                images=["a", "b"],
                _kafka_ts=datetime(2024, 5, 1, 12, 30),
                at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
                first=datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
                raw=b"\x00\xff",
                pattern=Regex("^B0"),
                amount=Decimal128("1.25"),
                key_with_dot={"a.b": 1},
            )
        )
        is None
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"price": float("nan")}, "sink: price is NaN (MongoDB serves finite numbers only)"),
        ({"listPrice": float("inf")}, "sink: listPrice is Infinity (MongoDB serves finite numbers only)"),
        ({"listPrice": float("-inf")}, "sink: listPrice is -Infinity (MongoDB serves finite numbers only)"),
        ({"dims": {"w": [1.0, float("nan")]}}, "sink: dims.w.1 is NaN (MongoDB serves finite numbers only)"),
        ({"amount": Decimal128("NaN")}, "sink: amount is NaN (MongoDB serves finite numbers only)"),
        ({"amount": Decimal128("-Infinity")}, "sink: amount is -Infinity (MongoDB serves finite numbers only)"),
    ],
)
def test_non_finite_numbers_anywhere_are_refused(fields: dict[str, Any], reason: str) -> None:
    assert sink_problem(document(**fields)) == reason


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_signed_64_bits_are_refused(value: int) -> None:
    assert sink_problem(document(reviews=value)) == (
        "sink: reviews is an integer beyond 64 bits (BSON integers are at most 64-bit)"
    )


DATE_REASON = "sink: {} is a date outside years 1 to 9999 in UTC (what a BSON date reads back as)"


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=5))),  # 0000-12-31T22:00Z
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),  # 10000-01-01T04:00Z
        DatetimeMS(2**62),
        DatetimeMS(-(2**62)),
    ],
)
def test_dates_pymongo_cannot_read_back_are_refused(value: datetime | DatetimeMS) -> None:
    assert sink_problem(document(_kafka_ts=value)) == DATE_REASON.format("_kafka_ts")


def test_the_last_and_first_dates_a_bson_date_reads_back_are_kept() -> None:
    last = DatetimeMS(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    first = DatetimeMS(datetime(1, 1, 1, tzinfo=UTC))
    assert sink_problem(document(last=last, first=first)) is None
    assert sink_problem(document(past=DatetimeMS(int(last) + 1))) == DATE_REASON.format("past")
    assert sink_problem(document(before=DatetimeMS(int(first) - 1))) == DATE_REASON.format("before")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"details": {"$where": "1"}},
            "sink: field details.$where starts with $ (MongoDB reads $-prefixed names as operators)",
        ),
        ({"$set": 1}, "sink: field $set starts with $ (MongoDB reads $-prefixed names as operators)"),
        ({"details": {"a\x00b": 1}}, "sink: field details.a\\x00b contains NUL (BSON field names end at NUL)"),
        ({"details": {1: "x"}}, "sink: a field name in details is int 1 (BSON field names are strings)"),
        (
            {"details": [{"ok": 1}, {("a", "b"): 1}]},
            "sink: a field name in details.1 is tuple ('a', 'b') (BSON field names are strings)",
        ),
        (
            {"ti\ud800tle": "x"},
            "sink: field name ti\\ud800tle is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)",
        ),
    ],
)
def test_field_names_a_document_cannot_carry_are_refused(fields: dict[Any, Any], reason: str) -> None:
    assert sink_problem({"_id": "B000000001", "title": "Suitcase", **fields}) == reason


def test_a_top_level_key_that_is_not_a_string_is_named_in_the_document() -> None:
    assert sink_problem({"_id": 1, 2: "x"}) == (
        "sink: a field name in the document is int 2 (BSON field names are strings)"
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ([1, 2], "sink: _id is an array (MongoDB refuses arrays as _id)"),
        ((1, 2), "sink: _id is an array (MongoDB refuses arrays as _id)"),
        (Regex("^B"), "sink: _id is a regular expression (MongoDB refuses regexes as _id)"),
        (re.compile("^B"), "sink: _id is a regular expression (MongoDB refuses regexes as _id)"),
    ],
)
def test_an_id_mongodb_refuses_is_refused(key: Any, reason: str) -> None:
    assert sink_problem(document(_id=key)) == reason


def test_a_document_without_id_is_refused() -> None:
    assert sink_problem({"title": "x"}) == "sink: the document has no _id (MongoDB keys every document by it)"


def test_a_regex_or_a_document_is_a_valid_id_elsewhere() -> None:
    assert sink_problem(document(_id={"asin": "B0", "n": 1}, pattern=re.compile("x"))) is None


def test_nesting_counts_the_document_as_the_first_of_100_levels() -> None:
    # The document, then 99 levels below it: MongoDB's 100. One more is refused, arrays counting too.
    assert sink_problem(document(deep=nested(99))) is None
    path = "deep" + ".s" * 99  # 202 characters: a reason shows 199 of them
    assert sink_problem(document(deep=nested(100))) == (
        f"sink: {path[:199]}… nests deeper than 100 levels (MongoDB's limit)"
    )
    assert sink_problem(document(deep=[[{"s": 1}]] * 2)) is None
    assert "nests deeper than 100 levels" in (sink_problem(document(deep=[nested(99)])) or "")


def test_a_very_deep_document_is_refused_without_recursing_through_it() -> None:
    assert (sink_problem(document(deep=nested(50_000))) or "").endswith(
        "nests deeper than 100 levels (MongoDB's limit)"
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": "ab\ud800"}, "sink: title is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"),
        ({"images": ["ok", "\udfff"]}, "sink: images.1 is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"),
    ],
)
def test_strings_that_are_not_utf8_are_refused(fields: dict[str, Any], reason: str) -> None:
    assert sink_problem(document(**fields)) == reason


def test_a_document_over_16_mib_of_bson_names_its_largest_field() -> None:
    big = document(title="x" * (17 * 1024 * 1024))
    assert sink_problem(big) == (
        "sink: the document is 17.0 MiB of BSON, over MongoDB's 16.0 MiB (largest field: title)"
    )


def test_the_size_limit_is_the_servers_when_given() -> None:
    doc = document(title="x" * 1000)
    size = len(bson.encode(doc))
    assert sink_problem(doc, max_bytes=size) is None
    assert sink_problem(doc, max_bytes=size - 1) == (
        "sink: the document is 0.0 MiB of BSON, over MongoDB's 0.0 MiB (largest field: title)"
    )
    assert MAX_DOCUMENT_BYTES == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("value", "kind"), [(Decimal("1.5"), "Decimal"), ({1, 2}, "set"), (datetime(2024, 1, 1).date(), "date")]
)
def test_values_bson_has_no_encoding_for_are_refused_by_name(value: Any, kind: str) -> None:
    assert sink_problem(document(extra={"v": value})) == f"sink: extra.v is a {kind}, which BSON cannot encode"


def test_reasons_stay_printable_and_short_whatever_the_field_name() -> None:
    reason = sink_problem(document(**{"n\nam\x07e" + "x" * 500: float("nan")})) or ""
    assert reason.startswith("sink: n\\nam\\x07exxx")
    assert reason.encode("utf-8") and len(reason) < 300
    assert reason.endswith("… is NaN (MongoDB serves finite numbers only)")


def test_checked_splits_the_storable_from_the_rejected_in_order() -> None:
    good, nan, deep = document(_id="a"), document(_id="b", price=float("nan")), document(_id="c", d=nested(101))
    storable, rejected = checked([good, nan, deep], MAX_DOCUMENT_BYTES)
    assert storable == [good]
    assert rejected == [
        Rejected("b", "sink: price is NaN (MongoDB serves finite numbers only)"),
        Rejected("c", "sink: d" + ".s" * 99 + " nests deeper than 100 levels (MongoDB's limit)"),
    ]
    assert rejected[0].document is nan


def test_write_stats_add_keeps_every_rejected_document() -> None:
    stats = WriteStats(written=2, rejected=[Rejected("a", "sink: x")])
    stats.add(WriteStats(written=1, stale=1, stale_keys=["s"], rejected=[Rejected("b", "sink: y")]))
    assert stats == WriteStats(written=3, stale=1, rejected=[Rejected("a", "sink: x"), Rejected("b", "sink: y")])
    assert stats.stale_keys == ["s"]


def test_a_refused_quarantine_record_is_reduced_to_its_coordinates_and_reason() -> None:
    coordinates = {
        "_id": "ingest-product:2:17",
        "_topic": "ingest-product",
        "_partition": 2,
        "_offset": 17,
        "_kafka_ts": datetime(2024, 5, 1, 12, 30),
        "key": "B000000001",
        "reason": "value: not one JSON object",
    }
    record = {**coordinates, "raw_value": "x\ud800" * 10, "raw_length": 20}
    sink_reason = "sink: raw_value is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"
    reduced = reduced_quarantine(record, sink_reason)
    assert reduced == {**coordinates, "raw_value": f"(not stored: {sink_reason})", "raw_length": 20}
    assert sink_problem(reduced) is None


def test_a_reduced_quarantine_record_drops_what_it_cannot_store_and_measures_the_raw_value() -> None:
    record = {"_id": "t:0:1", "key": "B\ud800", "reason": "price: is NaN", "raw_value": "abc"}
    assert reduced_quarantine(record, "sink: key is not valid UTF-8") == {
        "_id": "t:0:1",
        "reason": "price: is NaN",
        "raw_value": "(not stored: sink: key is not valid UTF-8)",
        "raw_length": 3,
    }
