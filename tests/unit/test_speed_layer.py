"""The speed layer's pure part (speed_layer/documents.py): which records it serves, and the document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

from lakehouse import catalog
from lakehouse.versions import MAX_VERSION_MILLIS, version_text
from speed_layer.documents import (
    SKIP_INVALID,
    SKIP_NO_VALUE,
    SKIP_PRODUCER_TIME,
    SKIP_TIME_RANGE,
    Servable,
    latest_per_key,
    product_document,
    servable,
)

JAN_2024_MS = 1_704_067_200_000
GOOD = {"asin": "B000000001", "title": " t ", "stars": 4, "reviews": 1, "price": 10, "category_id": 7}


@dataclass
class KafkaRecord:
    """What the speed layer reads of a confluent_kafka.Message (which cannot be built outside the client)."""

    _value: bytes | None
    _millis: int = JAN_2024_MS
    _kind: int = TIMESTAMP_LOG_APPEND_TIME
    _offset: int = 42
    _partition: int = 2
    _topic: str = "ingest-product"

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return self._kind, self._millis

    def offset(self) -> int:
        return self._offset

    def partition(self) -> int:
        return self._partition

    def topic(self) -> str:
        return self._topic


def record(value: dict | bytes | None, **kafka: int) -> KafkaRecord:
    return KafkaRecord(json.dumps(value).encode() if isinstance(value, dict) else value, **kafka)


def test_a_valid_product_becomes_the_jobs_document() -> None:
    found = servable(record(GOOD))
    assert isinstance(found, Servable)
    document = product_document(found, "Suitcases")
    assert tuple(document) == ("_id", *catalog.PRODUCTS.fields)
    assert document["_id"] == document["asin"] == "B000000001"
    assert document["title"] == " t "  # only the contract's stripped fields are stripped
    assert document["imgUrl"] == "" and document["isBestSeller"] is False  # the contract's defaults
    assert document["category_name"] == "Suitcases" and document["_rescued_data"] is None
    assert (document["_topic"], document["_partition"], document["_offset"]) == ("ingest-product", 2, 42)
    assert document["_kafka_ts"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert document["_v"] == f"{JAN_2024_MS}.{42:019d}.{2:010d}"


def test_numbers_have_silvers_types() -> None:
    document = product_document(servable(record(GOOD)), None)  # type: ignore[arg-type]
    assert type(document["stars"]) is float and type(document["price"]) is float
    assert type(document["listPrice"]) is float and type(document["reviews"]) is int


def test_what_the_job_would_quarantine_or_rescue_is_left_to_it() -> None:
    assert servable(record({**GOOD, "price": -1})) == SKIP_INVALID
    assert servable(record(b'{"asin": "B000000001", "price": NaN}')) == SKIP_INVALID
    assert servable(record({**GOOD, "colour": "red"})) == SKIP_INVALID  # the job rescues it: not reproduced
    assert servable(record(b"\xff")) == SKIP_INVALID
    assert servable(record(None)) == SKIP_NO_VALUE
    assert servable(record(GOOD, _kind=TIMESTAMP_CREATE_TIME)) == SKIP_PRODUCER_TIME
    assert servable(record(GOOD, _millis=-1)) == SKIP_TIME_RANGE
    assert servable(record(GOOD, _millis=MAX_VERSION_MILLIS + 1)) == SKIP_TIME_RANGE


def test_one_bulk_keeps_the_highest_version_of_a_key() -> None:
    old, new, other = ({"_id": k, "_v": version_text(JAN_2024_MS, o, 0)} for k, o in (("A", 9), ("A", 10), ("B", 1)))
    assert latest_per_key([new, other, old]) == [new, other]
    assert latest_per_key([old, new]) == [new]
