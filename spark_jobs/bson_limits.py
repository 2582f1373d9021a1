"""What one MongoDB document can hold, checked in Python before it is sent (pure functions, no I/O).

`sink_problem(document)` gives the first reason the server would refuse or mangle a document, or None.
The limits are MongoDB's documented ones (BSON field names and sizes, 100 levels of nesting, 64-bit integers,
dates pymongo decodes as datetime) plus what the serving layer promises its readers (finite numbers).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.errors import BSONError
from bson.regex import Regex

# MongoDB's limits for one document: its BSON size (setup() reads the server's own maxBsonObjectSize) and
# its levels of nesting, the document itself being the first (secantusd-rs allows 180; MongoDB 100).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_NESTING = 100
_INT64 = range(-(2**63), 2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What pymongo can decode back into a datetime (years 1 to 9999), in milliseconds since the epoch.
_DATE_MS = range(
    (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1),
    (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1) + 1,
)
_SHOWN_CHARACTERS = 200


def sink_problem(document: Mapping[str, Any], max_bytes: int = MAX_DOCUMENT_BYTES) -> str | None:
    """Why MongoDB cannot store `document` as it is, or None when it can.

    The reason reads like the contract's, `sink: <field path> ... (<the limit>)`, a dotted path (`a.b.3`).
    Checked, first failure wins: an `_id` that is present and neither an array nor a regex; field names that
    are strings, without NUL, not starting with `$`, valid UTF-8; at most MAX_NESTING levels of documents and
    arrays; floats (and Decimal128) finite; integers within signed 64 bits; dates pymongo reads back (years 1
    to 9999 in UTC); strings valid UTF-8 (no lone surrogates); any other value BSON encodes; and the whole
    document at most `max_bytes` bytes of BSON (default codec options, as the serving client uses). Pure.
    """
    return _id_problem(document) or _container_problem(document, "", 1) or _size_problem(document, max_bytes)


def _id_problem(document: Mapping[str, Any]) -> str | None:
    if "_id" not in document:
        return "sink: the document has no _id (MongoDB keys every document by it)"
    key = document["_id"]
    if isinstance(key, list | tuple):
        return "sink: _id is an array (MongoDB refuses arrays as _id)"
    if isinstance(key, Regex | re.Pattern):
        return "sink: _id is a regular expression (MongoDB refuses regexes as _id)"
    return None


def _container_problem(container: Mapping[Any, Any] | Sequence[Any], path: str, level: int) -> str | None:
    """The first problem of a document or array at nesting `level` (the top document is level 1)."""
    if level > MAX_NESTING:
        return f"sink: {shown(path)} nests deeper than {MAX_NESTING} levels (MongoDB's limit)"
    is_document = isinstance(container, Mapping)
    items = container.items() if is_document else enumerate(container)
    for key, value in items:
        field_path = f"{path}.{key}" if path else str(key)
        problem = (_key_problem(key, path, field_path) if is_document else None) or value_problem(
            value, field_path, level
        )
        if problem:
            return problem
    return None


def _key_problem(key: Any, parent: str, field_path: str) -> str | None:
    if not isinstance(key, str):
        where = shown(parent) if parent else "the document"
        kind = type(key).__name__
        return f"sink: a field name in {where} is {kind} {shown(repr(key))} (BSON field names are strings)"
    if key.startswith("$"):
        return f"sink: field {shown(field_path)} starts with $ (MongoDB reads $-prefixed names as operators)"
    if "\x00" in key:
        return f"sink: field {shown(field_path)} contains NUL (BSON field names end at NUL)"
    if not _is_utf8(key):
        return f"sink: field name {shown(field_path)} is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"
    return None


def value_problem(value: Any, path: str, level: int = 1) -> str | None:
    """The first problem of one value at `path` (a dotted field path), nested at `level`."""
    if isinstance(value, Mapping | list | tuple):
        return _container_problem(value, path, level + 1)
    if value is None or isinstance(value, bool | Regex | re.Pattern | bytes):
        return None
    checks: list[tuple[type, Callable[[Any, str], str | None]]] = [
        (float, _float_problem),
        (int, _integer_problem),
        (str, _string_problem),
        (datetime, _datetime_problem),
        (DatetimeMS, _datetime_ms_problem),
        (Decimal128, _decimal_problem),
    ]
    for kind, check in checks:
        if isinstance(value, kind):
            return check(value, path)
    return _encoding_problem(value, path)


def _float_problem(value: float, path: str) -> str | None:
    if math.isfinite(value):
        return None
    written = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"sink: {shown(path)} is {written} (MongoDB serves finite numbers only)"


def _decimal_problem(value: Decimal128, path: str) -> str | None:
    return None if value.to_decimal().is_finite() else _float_problem(float(value.to_decimal()), path)


def _integer_problem(value: int, path: str) -> str | None:
    if value in _INT64:
        return None
    return f"sink: {shown(path)} is an integer beyond 64 bits (BSON integers are at most 64-bit)"


def _string_problem(value: str, path: str) -> str | None:
    if _is_utf8(value):
        return None
    return f"sink: {shown(path)} is not valid UTF-8 (a lone surrogate; BSON text is UTF-8)"


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _datetime_problem(value: datetime, path: str) -> str | None:
    # A naive datetime is UTC to BSON and always in range; an aware one is shifted to UTC first.
    try:
        if value.utcoffset() is not None:
            value.astimezone(UTC)  # raises OverflowError past years 1 to 9999
        return None
    except (OverflowError, ValueError, TypeError):
        return f"sink: {shown(path)} is a date outside years 1 to 9999 in UTC (what a BSON date reads back as)"


def _datetime_ms_problem(value: DatetimeMS, path: str) -> str | None:
    if int(value) in _DATE_MS:
        return None
    return f"sink: {shown(path)} is a date outside years 1 to 9999 in UTC (what a BSON date reads back as)"


def _encoding_problem(value: Any, path: str) -> str | None:
    try:
        bson.encode({"v": value})
        return None
    except (BSONError, OverflowError, ValueError, TypeError):
        return f"sink: {shown(path)} is a {type(value).__name__}, which BSON cannot encode"


def _size_problem(document: Mapping[str, Any], max_bytes: int) -> str | None:
    try:
        size = len(bson.encode(document))
    except (BSONError, OverflowError, ValueError, TypeError, RecursionError) as error:
        return f"sink: BSON cannot encode the document ({shown(str(error))})"
    if size <= max_bytes:
        return None
    largest = max(document, key=lambda name: len(bson.encode({name: document[name]})))
    return (
        f"sink: the document is {_mib(size)} of BSON, over MongoDB's {_mib(max_bytes)} "
        f"(largest field: {shown(str(largest))})"
    )


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def shown(text: str) -> str:
    """`text` as a reason can carry it: printable (escaped like repr), at most 200 characters."""
    printable = text if text.isprintable() else repr(text)[1:-1]
    return printable if len(printable) <= _SHOWN_CHARACTERS else printable[: _SHOWN_CHARACTERS - 1] + "…"
