"""A Kafka product record -> the MongoDB document the streaming job will serve for it, or why the speed
layer leaves it to the job. Pure functions: no Kafka client, no MongoDB.

The speed layer serves a subset of what the job serves, never more: a record the job would quarantine, or
serve with anything the speed layer cannot reproduce exactly, is skipped (`Skip`), and the job serves or
quarantines it in its own micro-batch. What it serves is the job's document for that version (the same
fields, values and `_v`) but for `category_name`, which comes from the served categories and which the
job's later write of the same version sets (mongo_sink's guard lets an equal `_v` of the job replace it).

- Validity is the API's verdict (`api_ingest.validation.validate_one`): tests/unit/test_contract_parity.py
  proves it equals the job's for every value, and that the values the API accepts are silver's.
- Unknown fields: the API refuses them, the job rescues them into `_rescued_data` as Spark's JSON text;
  such a record is skipped.
- Broker time: a record stamped by its producer (a topic not on LogAppendTime), or at a time a version
  cannot hold, is skipped; the job refuses such a topic, or quarantines such a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Message

from api_ingest.errors import ApiError
from api_ingest.validation import validate_one
from lakehouse.contract import PRODUCT_SPECS
from lakehouse.schemas import Product
from lakehouse.versions import version_text

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FLOAT_FIELDS = frozenset(spec.name for spec in PRODUCT_SPECS if spec.kind == "float")


@dataclass(frozen=True)
class Skip:
    """A record the speed layer leaves to the job, and why (one of the `SKIP_*` reasons, for the counts)."""

    reason: str


SKIP_NO_VALUE = Skip("no value")
SKIP_PRODUCER_TIME = Skip("stamped by its producer, not the broker")
SKIP_TIME_RANGE = Skip("broker time a version cannot hold")
SKIP_INVALID = Skip("invalid or with unknown fields (the API's verdict)")


@dataclass(frozen=True)
class Servable:
    """A record the speed layer serves: the validated product, its Kafka record, broker time (epoch ms) and
    version."""

    product: Product
    message: Message
    millis: int
    version: str


def servable(message: Message) -> Servable | Skip:
    """A committed record of the product topic, validated as the API and the job validate it, or the `Skip`
    saying why the speed layer leaves it to the job."""
    value = message.value()
    if value is None:
        return SKIP_NO_VALUE
    kind, millis = message.timestamp()
    if kind != TIMESTAMP_LOG_APPEND_TIME:
        return SKIP_PRODUCER_TIME
    try:
        version = version_text(millis, message.offset(), message.partition())
    except ValueError:
        return SKIP_TIME_RANGE
    try:
        return Servable(validate_one(value, Product), message, millis, version)
    except ApiError:
        return SKIP_INVALID


def product_document(record: Servable, category_name: str | None) -> dict[str, Any]:
    """The products document (`_id` the asin, then catalog.PRODUCTS' fields in order): the contract's fields
    (floats as floats: the API keeps a JSON `4` as an int, silver holds a double), `category_name` (the
    served name of the category, None when it is not served yet), `_rescued_data` None, the Kafka coordinates
    (the broker time as a UTC datetime of millisecond precision, as BSON keeps it) and `_v`."""
    fields = {name: float(v) if name in FLOAT_FIELDS else v for name, v in record.product.model_dump().items()}
    message = record.message
    return {
        "_id": record.product.asin,
        **fields,
        "category_name": category_name,
        "_rescued_data": None,
        "_topic": message.topic(),
        "_partition": message.partition(),
        "_offset": message.offset(),
        "_kafka_ts": EPOCH + timedelta(milliseconds=record.millis),
        "_v": record.version,
    }


def latest_per_key(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One document per `_id`, the highest `_v`: two writes of one key in one unordered bulk would race."""
    latest: dict[Any, dict[str, Any]] = {}
    for document in documents:
        kept = latest.get(document["_id"])
        if kept is None or kept["_v"] < document["_v"]:
            latest[document["_id"]] = document
    return list(latest.values())
