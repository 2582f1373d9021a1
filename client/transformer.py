"""CSV -> JSON records, streaming.

Reads the Kaggle CSVs (or the generator's) one row at a time, converts each field to its JSON type and
validates it against the shared schema. A row that cannot be converted is reported with its line number
and reason instead of stopping the run.

    python client/transformer.py dataset/sample/amazon_products.csv > products.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lakehouse.schemas import Category, Product

# Real titles can be far longer than csv's default 128 KiB field limit allows for a broken quote run.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Record:
    line: int
    data: dict[str, Any]


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_float(text: str) -> float:
    # The Kaggle file leaves listPrice empty or 0.0 when there is none.
    return float(text) if text.strip() else 0.0


def parse_int(text: str) -> int:
    # Counts sometimes arrive as "100.0" from spreadsheet round trips; anything fractional is an error.
    value = float(text) if text.strip() else 0.0
    if not value.is_integer():
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


PRODUCT_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "asin": str.strip,
    "title": str,
    "imgUrl": str.strip,
    "productURL": str.strip,
    "stars": parse_float,
    "reviews": parse_int,
    "price": parse_float,
    "listPrice": parse_float,
    "category_id": parse_int,
    "isBestSeller": parse_bool,
    "boughtInLastMonth": parse_int,
}
CATEGORY_CONVERTERS: dict[str, Callable[[str], Any]] = {"id": parse_int, "category_name": str.strip}


def _describe(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in error.errors())


def convert_row(
    row: dict[str | None, Any], converters: dict[str, Callable[[str], Any]], model: type[BaseModel]
) -> dict[str, Any]:
    """One CSV row -> a validated JSON-ready dict. Raises ValueError naming the field and value."""
    if None in row:
        raise ValueError(f"more fields than the header has: {row[None]!r}")
    missing = [name for name in converters if row.get(name) is None]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    converted: dict[str, Any] = {}
    for name, convert in converters.items():
        try:
            converted[name] = convert(row[name])
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    try:
        return model.model_validate(converted).model_dump()
    except ValidationError as error:
        raise ValueError(_describe(error)) from None


def _read(path: Path, converters: dict[str, Callable[[str], Any]], model: type[BaseModel]) -> Iterator[Record | BadRow]:
    with path.open(newline="", encoding="utf-8", errors="strict") as handle:
        reader = csv.DictReader(handle)
        missing = set(converters) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: header lacks {', '.join(sorted(missing))}")
        line = reader.line_num
        for row in reader:
            try:
                yield Record(line + 1, convert_row(row, converters, model))
            except ValueError as error:
                yield BadRow(line + 1, str(error))
            line = reader.line_num


def read_products(path: Path) -> Iterator[Record | BadRow]:
    return _read(path, PRODUCT_CONVERTERS, Product)


def read_categories(path: Path) -> Iterator[Record | BadRow]:
    return _read(path, CATEGORY_CONVERTERS, Category)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Convert an Amazon products or categories CSV to JSON lines.")
    parser.add_argument("csv", type=Path)
    parser.add_argument(
        "--kind", choices=("products", "categories"), default=None, help="default: guessed from the file name"
    )
    args = parser.parse_args(argv)
    kind = args.kind or ("categories" if "categor" in args.csv.name else "products")
    rows = read_categories(args.csv) if kind == "categories" else read_products(args.csv)
    bad = 0
    for item in rows:
        if isinstance(item, BadRow):
            bad += 1
            print(f"{args.csv}:{item.line}: {item.reason}", file=sys.stderr)
        else:
            sys.stdout.write(json.dumps(item.data, ensure_ascii=False) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
