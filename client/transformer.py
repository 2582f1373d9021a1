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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lakehouse.contract import ABSENT, check_header, csv_cell, describe_error, field_specs
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


def _describe(error: ValidationError) -> str:
    return "; ".join(describe_error(e) for e in error.errors(include_input=False))


def convert_row(row: dict[str | None, Any], model: type[BaseModel]) -> dict[str, Any]:
    """One CSV row -> a validated JSON-ready dict, by the contract's cell rules (`lakehouse.contract.csv_cell`:
    an empty number cell is an absent field, not 0). Raises ValueError naming the field and value."""
    if any(row.get(None) or ()):  # empty cells past the header (a trailing comma) are no data
        raise ValueError(f"more fields than the header has: {row[None]!r}")
    # A short row's missing cells are empty (csv.DictReader gives None), as Spark's CSV reader reads them.
    converted = {spec.name: csv_cell(spec, row.get(spec.name) or "") for spec in field_specs(model)}
    try:
        return model.model_validate({k: v for k, v in converted.items() if v is not ABSENT}).model_dump()
    except ValidationError as error:
        raise ValueError(_describe(error)) from None


def _line_breaks_as_lf(row: dict[str | None, Any]) -> dict[str | None, Any]:
    """In a CRLF file, a line break inside a quoted cell reads as "\\n": what Spark's CSV reader (univocity,
    which normalises the file's line separator) gives the backfill."""
    return {name: cell.replace("\r\n", "\n") if isinstance(cell, str) else cell for name, cell in row.items()}


def _read(path: Path, model: type[BaseModel]) -> Iterator[Record | BadRow]:
    # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark before the header. A byte that is not
    # UTF-8 reads as U+FFFD, as Spark's CSV reader reads it for the backfill.
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        crlf_file = handle.readline().endswith("\r\n")
        handle.seek(0)
        reader = csv.DictReader(handle)
        check_header(path, list(reader.fieldnames or ()), model)
        line = reader.line_num
        for row in reader:
            try:
                yield Record(line + 1, convert_row(_line_breaks_as_lf(row) if crlf_file else row, model))
            except ValueError as error:
                yield BadRow(line + 1, str(error))
            line = reader.line_num


def read_products(path: Path) -> Iterator[Record | BadRow]:
    return _read(path, Product)


def read_categories(path: Path) -> Iterator[Record | BadRow]:
    return _read(path, Category)


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
