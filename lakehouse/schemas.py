"""The record contract shared by the client, the API, the Spark job and the tests.

Field names are the Kaggle CSV's own (camelCase), so a CSV row, a JSON body, a Kafka value and a MongoDB
document all speak the same names. These two models are the only definition of a record: the Spark job's
rules and defaults, the client's CSV converters, the CSV backfill and README.md's validation table are
derived from them by `lakehouse.contract`.

Rules beyond the field types:
- Types are strict JSON types: a number is not a string, a whole number is not 1.0, a boolean is not 0/1.
- `null` for a field with a default means the field is absent (the default applies); for a required field
  it means missing.
- Whole numbers fit a signed 64-bit integer (Spark's LongType, BSON's int64); floats are finite (JSON,
  BSON and the dashboard's charts cannot carry NaN or Infinity); prices are at most MAX_PRICE.
- Strings are valid Unicode (no lone surrogates: they cannot be encoded as UTF-8 for Kafka).
- URLs are http(s) or empty: the dashboard renders them as links and images.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# Amazon Standard Identification Numbers are 10 upper-case letters or digits (books use ISBN-10 digits).
ASIN_PATTERN = r"^[A-Z0-9]{10}$"
# Spelled out rather than (?i): the API (Rust regex) and the job (Java regex) fold case differently.
# No white space and no control characters (the dashboard and the read API serve nothing else as a URL).
URL_PATTERN = r"^(?:[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1F\x7F]+)?$"
MAX_TITLE_LENGTH = 4_000
MAX_URL_LENGTH = 2_048
MAX_CATEGORY_NAME_LENGTH = 200
INT64_MAX = 2**63 - 1
# No product costs a billion dollars; the bound keeps gold's sums and averages over any number of products
# finite in a double (at 1e308 two prices already overflow a sum: found by a review of issue #11).
MAX_PRICE = 1_000_000_000.0
Price = Annotated[float, Field(ge=0, le=MAX_PRICE)]

Asin = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ASIN_PATTERN)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_URL_LENGTH, pattern=URL_PATTERN)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Id = Annotated[int, Field(gt=0, le=INT64_MAX)]


class Record(BaseModel):
    """What every record model shares: strict JSON types, no unknown fields, null = absent."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def null_means_absent(cls, data: Any) -> Any:
        if not isinstance(data, dict) or None not in data.values():
            return data
        defaulted = _defaulted_fields(cls)
        return {key: value for key, value in data.items() if not (value is None and key in defaulted)}


@functools.cache
def _defaulted_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, field in model.model_fields.items() if not field.is_required())


class Product(Record):
    """One row of amazon_products.csv."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "asin": "B014TMV5YE",
                    "title": "Sion Softside Expandable Roller Luggage, Black, Checked-Large 29-Inch",
                    "imgUrl": "https://m.media-amazon.com/images/I/815dLQKYIYL._AC_UL320_.jpg",
                    "productURL": "https://www.amazon.com/dp/B014TMV5YE",
                    "stars": 4.5,
                    "reviews": 0,
                    "price": 139.99,
                    "listPrice": 0.0,
                    "category_id": 104,
                    "isBestSeller": False,
                    "boughtInLastMonth": 2000,
                }
            ]
        },
    )

    asin: Asin
    title: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TITLE_LENGTH)]
    imgUrl: Url = ""
    productURL: Url = ""
    stars: float = Field(ge=0, le=5)
    reviews: Count
    price: Price
    # The Kaggle file writes 0.0 when a product has no list price.
    listPrice: Price = 0.0
    category_id: Id
    isBestSeller: bool = False
    boughtInLastMonth: Count = 0


class Category(Record):
    """One row of amazon_categories.csv."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 104, "category_name": "Suitcases"}]})

    id: Id
    category_name: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_CATEGORY_NAME_LENGTH, strip_whitespace=True)
    ]


PRODUCT_FIELDS: tuple[str, ...] = tuple(Product.model_fields)
CATEGORY_FIELDS: tuple[str, ...] = tuple(Category.model_fields)
