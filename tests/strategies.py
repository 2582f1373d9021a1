"""Hypothesis strategies derived from the record contract (lakehouse.contract), shared by the property tests:
valid records, records with one field broken in each way, and arbitrary JSON."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from lakehouse.contract import FieldSpec, field_specs
from lakehouse.schemas import ASIN_PATTERN, URL_PATTERN

INT64_MAX = 2**63 - 1
# Any unicode a file or a JSON body can carry (no lone surrogates).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
URL = st.one_of(st.just(""), st.from_regex(r"https?://[A-Za-z0-9./?=&%_-]{1,30}", fullmatch=True))


def _text(spec: FieldSpec) -> st.SearchStrategy[str]:
    if spec.pattern == ASIN_PATTERN:
        return st.from_regex(ASIN_PATTERN, fullmatch=True)
    if spec.pattern == URL_PATTERN:
        return URL
    text = TEXT.map(str.strip) if spec.strip else TEXT
    return text.filter(lambda t: (spec.min_length or 0) <= len(t) <= (spec.max_length or 10**6))


def valid_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A value the contract accepts for `spec`, as the model would return it (already stripped)."""
    if spec.kind == "string":
        return _text(spec)
    if spec.kind == "bool":
        return st.booleans()
    low = spec.ge if spec.ge is not None else (spec.gt + 1 if spec.gt is not None else -(10**9))
    if spec.kind == "int":
        return st.integers(min_value=int(low), max_value=int(min(spec.le or INT64_MAX, INT64_MAX)))
    return st.floats(min_value=low, max_value=spec.le if spec.le is not None else 1e12, allow_nan=False)


def valid_record(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({spec.name: valid_value(spec) for spec in field_specs(model)})


# JSON texts that break a field: wrong types, non-finite numbers, out of 64 bits, bounds, padding, schemes.
BROKEN_JSON = st.sampled_from(
    [
        "null",
        '""',
        '" "',
        '"x"',
        '"12"',
        '"1.5"',
        "0",
        "-1",
        "1.0",
        "1.5",
        "-0.0",
        "1e3",
        "5.0001",
        "4000",
        "true",
        "false",
        "[]",
        "{}",
        '{"a": 1}',
        "[1]",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "100000000000000000000000000000",
        '"javascript:alert(1)"',
        '"ftp://x"',
        '"https://"',
        '"http://a b"',
        '" https://a.b "',
        '"HTTPS://A.B"',
        '"b014tmv5ye"',
        '" B014TMV5YE "',
        '"B014TMV5YE\\n"',
        '"x\\ud800y"',
        '"\\u0000"',
        '"\\t"',
        '"\\u00a0"',
        '"\\u2003Toys\\u2003"',
        '"\\u001c"',
    ]
)


def _json_member(name: str, json_text: str) -> str:
    return f"{json.dumps(name)}: {json_text}"


def broken_record(model: type[BaseModel]) -> st.SearchStrategy[str]:
    """A valid record's JSON text with one field replaced by a breaking value, or left out."""
    names = [spec.name for spec in field_specs(model)]

    @st.composite
    def build(draw: st.DrawFn) -> str:
        record = draw(valid_record(model))
        target = draw(st.sampled_from(names))
        members = [_json_member(n, json.dumps(v)) for n, v in record.items() if n != target]
        replacement = draw(st.one_of(st.none(), BROKEN_JSON))
        if replacement is not None:
            members.insert(draw(st.integers(0, len(members))), _json_member(target, replacement))
        return "{" + ", ".join(members) + "}"

    return build()


def duplicated_key(model: type[BaseModel]) -> st.SearchStrategy[str]:
    """A valid record with one of its keys written a second time, with a valid or a breaking value."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        record = draw(valid_record(model))
        other = draw(valid_record(model))
        name = draw(st.sampled_from(list(record)))
        second = draw(st.one_of(st.just(json.dumps(other[name])), BROKEN_JSON))
        members = [_json_member(n, json.dumps(v)) for n, v in record.items()]
        return "{" + ", ".join([*members, _json_member(name, second)]) + "}"

    return build()


ARBITRARY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
).map(json.dumps)


def any_json_value(model: type[BaseModel]) -> st.SearchStrategy[str]:
    """JSON texts without unknown fields (those the API refuses and the job rescues, by design) or anything."""
    valid = valid_record(model).map(json.dumps)
    return st.one_of(valid, broken_record(model), broken_record(model), duplicated_key(model), ARBITRARY_JSON)
