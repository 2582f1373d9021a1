"""Strict JSON decoding (RFC 8259) for request bodies: what the API accepts must reach Kafka as UTF-8 JSON,
be read back by the streaming job, and an error about it must be sendable.

    decode_json(raw: bytes) -> Any          raises InvalidJson(problems), each problem with its path

Refused, each with its own problem `code`:
- `json_invalid_utf8`: bytes that are not UTF-8 (a byte-order mark is not JSON either: `json_invalid`);
- `json_invalid`: an empty body or a syntax error (with line and column);
- `json_non_finite_number`: `NaN`, `Infinity`, `-Infinity`, or a number too large for a double (`1e400`);
- `json_lone_surrogate`: a `\\uD800`-style escape that is not half of a surrogate pair, in a value or a key;
- `json_duplicate_key`: a key twice in one object (parsers disagree on which value wins);
- `json_too_many_keys`: an object of more than MAX_OBJECT_KEYS keys (no record has that many fields);
- `json_too_deep`, `json_number_too_long`: nesting past Python's recursion limit, an integer of more than
  4,300 digits.
Problems inside the value are all reported (up to `limit`), each with the path to where it is.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_OBJECT_KEYS = 1_000
# The streaming job's JSON parser (Jackson's StreamReadConstraints) refuses a number of more digits.
MAX_NUMBER_DIGITS = 1_000
MAX_PROBLEMS = 1_000

# A decoded string can hold a surrogate only from a \u escape (the UTF-8 decoding refuses encoded ones).
_MAYBE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAYBE_OVERFLOW = re.compile(r"[eE][+-]?[0-9]{3}|[0-9]{300}")
LONE_SURROGATE = "a \\u escape is half of a surrogate pair, not a character"


@dataclass(frozen=True)
class JsonProblem:
    """Why a body is not acceptable JSON: `code`, `message`, and `path` (keys and indexes) to where."""

    code: str
    message: str
    path: Sequence[str | int] = field(default=())


class InvalidJson(ValueError):
    """The body is not acceptable JSON; `problems` says why and where (at least one)."""

    def __init__(self, problems: Sequence[JsonProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class _Refused:
    """Left in the decoded value where a number or an object is refused, so the walk can say where."""

    code: str
    message: str
    key: str | None = None


_NON_FINITE = {
    name: _Refused("json_non_finite_number", f"{name} is not a JSON number")
    for name in ("NaN", "Infinity", "-Infinity")
}
_TOO_LARGE = _Refused("json_non_finite_number", "the number is too large for a double")
_TOO_LONG = _Refused("json_number_too_long", f"a number is written with more than {MAX_NUMBER_DIGITS} digits")
_TOO_MANY_KEYS = _Refused("json_too_many_keys", f"an object has more than {MAX_OBJECT_KEYS} keys")


def _too_long(text: str) -> bool:
    return sum(char.isdigit() for char in text) > MAX_NUMBER_DIGITS


def _finite_float(text: str) -> float | _Refused:
    if _too_long(text):
        return _TOO_LONG
    value = float(text)
    return value if math.isfinite(value) else _TOO_LARGE


def _short_int(text: str) -> int | _Refused:
    return _TOO_LONG if _too_long(text) else int(text)


def _first_repeated(keys: list[str]) -> str:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    raise ValueError("no key is repeated")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Refused:
    if len(pairs) > MAX_OBJECT_KEYS:
        return _TOO_MANY_KEYS
    record = dict(pairs)
    if len(record) == len(pairs):
        return record
    twice = _first_repeated([key for key, _ in pairs])
    return _Refused("json_duplicate_key", "the key appears more than once in this object", twice)


def _has_lone_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _children(path: list[str | int], item: Any) -> list[tuple[list[str | int], Any]]:
    if isinstance(item, dict):
        return [([*path, key], child) for key, child in item.items()]
    if isinstance(item, list):
        return [([*path, index], child) for index, child in enumerate(item)]
    return []


def _problem_here(path: list[str | int], item: Any) -> JsonProblem | None:
    if isinstance(item, _Refused):
        return JsonProblem(item.code, item.message, path if item.key is None else [*path, item.key])
    if isinstance(item, str) and _has_lone_surrogate(item):
        return JsonProblem("json_lone_surrogate", LONE_SURROGATE, path)
    if isinstance(item, dict):
        key = next((k for k in item if _has_lone_surrogate(k)), None)
        return None if key is None else JsonProblem("json_lone_surrogate", LONE_SURROGATE + " (in a key)", [*path, key])
    return None


def problems_in(value: Any, limit: int = MAX_PROBLEMS) -> list[JsonProblem]:
    """The refused parts of a decoded value, in document order, at most `limit` (iterative: any depth)."""
    found: list[JsonProblem] = []
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack and len(found) < limit:
        path, item = stack.pop()
        problem = _problem_here(path, item)
        if problem is not None:
            found.append(problem)
        stack.extend(reversed(_children(path, item)))
    return found


def _loads(text: str) -> tuple[Any, bool]:
    """The decoded value, and whether a part of it was refused while decoding."""
    refused = False

    def constant(name: str) -> _Refused:
        nonlocal refused
        refused = True
        return _NON_FINITE[name]

    def number(text: str) -> float | _Refused:
        nonlocal refused
        value = _finite_float(text)
        refused = refused or isinstance(value, _Refused)
        return value

    def whole(text: str) -> int | _Refused:
        nonlocal refused
        value = _short_int(text)
        refused = refused or isinstance(value, _Refused)
        return value

    def obj(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Refused:
        nonlocal refused
        value = _object(pairs)
        refused = refused or isinstance(value, _Refused)
        return value

    # Only a number with a 3-digit exponent or 300+ digits can overflow a double or pass MAX_NUMBER_CHARS:
    # skip the per-number hooks (a Python call per number) on the bodies that hold none.
    if _MAYBE_OVERFLOW.search(text) is None:
        return json.loads(text, parse_constant=constant, object_pairs_hook=obj), refused
    value = json.loads(text, parse_constant=constant, parse_float=number, parse_int=whole, object_pairs_hook=obj)
    return value, refused


def _text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = raw[error.start : error.start + 1].hex()
        raise InvalidJson(
            [JsonProblem("json_invalid_utf8", f"not valid UTF-8: byte 0x{byte} at position {error.start}")]
        ) from None
    if not text.strip():
        raise InvalidJson([JsonProblem("json_invalid", "the body is empty; a JSON value is expected")])
    return text


def decode_json(raw: bytes, limit: int = MAX_PROBLEMS) -> Any:
    """`raw` as JSON under the rules of the module docstring; raises InvalidJson with up to `limit` problems."""
    text = _text(raw)
    try:
        value, refused = _loads(text)
    except json.JSONDecodeError as error:
        where = f"column {error.colno}" if error.lineno == 1 else f"line {error.lineno} column {error.colno}"
        message = f"not valid JSON: {error.msg} at {where}"
        raise InvalidJson([JsonProblem("json_invalid", message)]) from None
    except RecursionError:
        raise InvalidJson([JsonProblem("json_too_deep", "the JSON is nested too deeply")]) from None
    except ValueError:  # an integer of more digits than Python converts
        message = f"an integer has more than {sys.get_int_max_str_digits()} digits"
        raise InvalidJson([JsonProblem("json_number_too_long", message)]) from None
    if refused or _MAYBE_SURROGATE_ESCAPE.search(text):
        problems = problems_in(value, limit)
        if problems:
            raise InvalidJson(problems)
    return value
