"""Property-based: any CSV row either round-trips through the transformer and the schemas, or is rejected
with a reason and its line number. Never an exception, never a silently altered record."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from client.transformer import BadRow, Record, read_categories, read_products
from lakehouse.schemas import ASIN_PATTERN, CATEGORY_FIELDS, PRODUCT_FIELDS, Category, Product
from tests.strategies import valid_record

# Any unicode a CSV file can hold (no surrogates); quotes, commas and line breaks included on purpose.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
STRIPPED = TEXT.map(str.strip)
CSV_PUNCTUATION = st.sampled_from(['"', ",", "\n", "\r\n", "'", ";", "\t"])
TITLE = st.lists(st.one_of(TEXT, CSV_PUNCTUATION), min_size=1, max_size=6).map("".join).filter(bool)
PRICE = st.floats(min_value=0, max_value=1e7, allow_nan=False)

VALID_PRODUCT = valid_record(Product)
# Each cell: a plausible value of any column, or arbitrary text.
ANY_CELL = st.one_of(
    TEXT,
    CSV_PUNCTUATION,
    st.from_regex(ASIN_PATTERN, fullmatch=True),
    st.sampled_from(["", "True", "False", "0", "-1", "nan", "inf", "1e309", "4.5", "100.0", "2.5e3"]),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats().map(repr),
)


def csv_file(tmp_path: Path, header: tuple[str, ...], cells: list[Any]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerow(cells)
    path = tmp_path / "rows.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(product=VALID_PRODUCT)
def test_every_valid_product_round_trips_exactly(tmp_path: Path, product: dict[str, Any]) -> None:
    path = csv_file(tmp_path, PRODUCT_FIELDS, [product[name] for name in PRODUCT_FIELDS])
    assert list(read_products(path)) == [Record(2, product)]


@PROPERTY_SETTINGS
@given(cells=st.lists(ANY_CELL, min_size=len(PRODUCT_FIELDS), max_size=len(PRODUCT_FIELDS)))
# Found by this test: "inf" used to pass as a price.
@example(cells=["B0000000A1", "t", "", "", "4", "1", "inf", "0", "1", "False", "0"])
@example(cells=["B0000000A1", "t", "", "", "4", "1", "1e309", "0", "1", "False", "0"])
def test_any_product_row_is_either_a_valid_record_or_rejected_with_a_reason(tmp_path: Path, cells: list[str]) -> None:
    [item] = list(read_products(csv_file(tmp_path, PRODUCT_FIELDS, cells)))
    assert item.line == 2
    if isinstance(item, BadRow):
        assert item.reason.strip()
    else:
        assert Product.model_validate(item.data).model_dump() == item.data
        assert all(math.isfinite(item.data[name]) for name in ("stars", "price", "listPrice"))


@PROPERTY_SETTINGS
@given(cells=st.lists(ANY_CELL, min_size=len(CATEGORY_FIELDS), max_size=len(CATEGORY_FIELDS)))
def test_any_category_row_is_either_a_valid_record_or_rejected_with_a_reason(tmp_path: Path, cells: list[str]) -> None:
    [item] = list(read_categories(csv_file(tmp_path, CATEGORY_FIELDS, cells)))
    if isinstance(item, BadRow):
        assert item.reason.strip()
    else:
        assert Category.model_validate(item.data).model_dump() == item.data
