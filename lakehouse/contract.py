"""The record contract as data, read off the pydantic models in `lakehouse.schemas`.

Every layer that judges or converts a record derives its rules from `field_specs(model)`: the Spark job's
validation rules and defaults (spark_jobs/transforms.py), the client's CSV converters (client/transformer.py),
the CSV backfill's casts (spark_jobs/backfill.py) and README.md's validation table (`validation_table()`,
checked by a test). Adding a field or a bound to a model is one edit; every layer follows.

Each rule has a name, the quarantine reason the job writes when a record breaks it (`"price: below 0"`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lakehouse.schemas import ASIN_PATTERN, URL_PATTERN, Category, Product

Kind = Literal["string", "float", "int", "bool"]
_KINDS: dict[type, Kind] = {str: "string", float: "float", int: "int", bool: "bool"}
TYPE_NAMES: dict[Kind, str] = {
    "string": "a string",
    "float": "a number",
    "int": "a whole number within 64 bits",
    "bool": "true or false",
}
PATTERN_NAMES = {ASIN_PATTERN: "10 upper-case letters or digits", URL_PATTERN: "an http(s) URL or empty"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record: its JSON kind, default and bounds (None = no such bound)."""

    name: str
    kind: Kind
    required: bool
    default: Any = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    strip: bool = False


def _constraints(field: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "min_length", "max_length", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
        if getattr(item, "strip_whitespace", None):
            found["strip"] = True
        if isinstance(item, annotated_types.Lt):
            raise ValueError(f"{field}: exclusive maxima are not part of the contract yet")
    return found


@functools.cache
def field_specs(model: type[BaseModel]) -> tuple[FieldSpec, ...]:
    """The model's fields in declaration order. Raises ValueError for a type the layers cannot carry."""
    specs = []
    for name, field in model.model_fields.items():
        if field.annotation not in _KINDS:
            raise ValueError(f"{model.__name__}.{name}: {field.annotation!r} is not str, float, int or bool")
        default = None if field.is_required() else field.default
        specs.append(FieldSpec(name, _KINDS[field.annotation], field.is_required(), default, **_constraints(field)))
    return tuple(specs)


PRODUCT_SPECS = field_specs(Product)
CATEGORY_SPECS = field_specs(Category)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def java_regex(pattern: str) -> str:
    """A contract or CSV pattern for Java's regex (Spark's rlike): Unicode classes like Rust's and Python's,
    and `$` only at the very end (Java's `$` also matches before a final line break: "10\\r")."""
    return "(?U)" + (pattern[:-1] + r"\z" if pattern.endswith("$") else pattern)


def rule_names(spec: FieldSpec) -> Iterator[tuple[str, str]]:
    """(rule, reason) pairs for one field, in the order the job checks them. Rules: missing, type, finite,
    ge, gt, le, min_length, max_length, pattern."""
    if spec.required:
        yield "missing", f"{spec.name}: missing"
    yield "type", f"{spec.name}: not {TYPE_NAMES[spec.kind]}"
    if spec.kind == "float":
        yield "finite", f"{spec.name}: not a finite number"
    if spec.ge is not None:
        yield "ge", f"{spec.name}: below {_number(spec.ge)}"
    if spec.gt is not None:
        yield "gt", f"{spec.name}: not above {_number(spec.gt)}"
    if spec.le is not None and spec.le < 2**63 - 1:
        yield "le", f"{spec.name}: above {_number(spec.le)}"
    if spec.min_length is not None:
        yield "min_length", f"{spec.name}: shorter than {spec.min_length} character(s)"
    if spec.max_length is not None:
        yield "max_length", f"{spec.name}: longer than {spec.max_length} characters"
    if spec.pattern is not None:
        yield "pattern", f"{spec.name}: not {PATTERN_NAMES.get(spec.pattern, spec.pattern)}"


# CSV cells are text; these say which texts are numbers and booleans. The client (Python re) and the CSV
# backfill (Java regex) use the same patterns, written in the syntax both engines read alike.
CSV_BLANKS = " \t"
CSV_INT = r"^[+-]?[0-9]+(?:\.0*)?$"  # "100.0" is a spreadsheet's round trip of 100
CSV_FLOAT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
CSV_TRUE = ("true", "1")
CSV_FALSE = ("false", "0")
ABSENT: Any = object()


def check_header(path: object, header: list[str], model: type[BaseModel]) -> None:
    """Raises ValueError when a CSV header lacks a contract field (names are case-sensitive) or repeats a
    name (ignoring case, as Spark resolves columns): the client and the backfill refuse the same files."""
    missing = sorted(set(model.model_fields) - set(header))
    if missing:
        raise ValueError(f"{path}: header lacks {', '.join(missing)}")
    lowered = [name.lower() for name in header]
    repeated = sorted({name for name in header if lowered.count(name.lower()) > 1})
    if repeated:
        raise ValueError(f"{path}: header repeats {', '.join(repeated)} (names are compared ignoring case)")


def csv_cell(spec: FieldSpec, cell: str) -> Any:
    """One CSV cell -> its JSON value. Returns `ABSENT` for an empty number or boolean cell (the field's
    default applies, or it is missing); raises ValueError naming the field for a text of the wrong kind."""
    if spec.kind == "string":
        return cell
    text = cell.strip(CSV_BLANKS)
    if not text:
        return ABSENT
    if spec.kind == "bool" and text.lower() in CSV_TRUE + CSV_FALSE:
        return text.lower() in CSV_TRUE
    # fullmatch: `$` alone would also match before a final line break ("10\n"), which the backfill refuses.
    if spec.kind == "int" and re.fullmatch(CSV_INT, text):
        return int(text.split(".")[0])
    if spec.kind == "float" and re.fullmatch(CSV_FLOAT, text):
        return float(text)
    raise ValueError(f"{spec.name}: not {TYPE_NAMES[spec.kind]}: {cell!r}")


def error_message(error: Mapping[str, Any]) -> str:
    """A pydantic error's message, with a contract pattern named in words ("not an http(s) URL or empty")
    instead of the regex. Never echoes the input (it may be NaN or a lone surrogate)."""
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in PATTERN_NAMES:
        return f"not {PATTERN_NAMES[pattern]}"
    return str(error.get("msg", "invalid"))


def describe_error(error: Mapping[str, Any]) -> str:
    """One pydantic error as `field: message` (see `error_message`)."""
    return f"{'.'.join(map(str, error.get('loc', ()))) or 'record'}: {error_message(error)}"


def validation_table(model: type[BaseModel]) -> str:
    """README.md's table of the rules for `model`: field, type, default, rules (quarantine reasons)."""
    lines = ["| field | type | if absent | rejected when (quarantine reason) |", "|---|---|---|---|"]
    for spec in field_specs(model):
        absent = "required" if spec.required else f"`{spec.default!r}`"
        reasons = "; ".join(f"`{reason}`" for _, reason in rule_names(spec))
        lines.append(f"| `{spec.name}` | {spec.kind}{' (stripped)' if spec.strip else ''} | {absent} | {reasons} |")
    return "\n".join(lines)
