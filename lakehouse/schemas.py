"""The record contract shared by the client, the API, the Spark job and the tests.

Field names are the Kaggle CSV's own (camelCase), so a CSV row, a JSON body, a Kafka value and a MongoDB
document all speak the same names.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Amazon Standard Identification Numbers are 10 upper-case letters or digits (books use ISBN-10 digits).
ASIN_PATTERN = r"^[A-Z0-9]{10}$"
MAX_TITLE_LENGTH = 4_000
MAX_URL_LENGTH = 2_048
MAX_CATEGORY_NAME_LENGTH = 200

Asin = Annotated[str, StringConstraints(pattern=ASIN_PATTERN)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH)]


class Product(BaseModel):
    """One row of amazon_products.csv."""

    model_config = ConfigDict(
        extra="forbid",
        # "inf" parses as a float but is no price, and JSON cannot carry it to Kafka.
        allow_inf_nan=False,
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
    reviews: int = Field(ge=0)
    price: float = Field(ge=0)
    # The Kaggle file writes 0.0 when a product has no list price.
    listPrice: float = Field(0.0, ge=0)
    category_id: int = Field(gt=0)
    isBestSeller: bool = False
    boughtInLastMonth: int = Field(0, ge=0)


class Category(BaseModel):
    """One row of amazon_categories.csv."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id": 104, "category_name": "Suitcases"}]},
    )

    id: int = Field(gt=0)
    category_name: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_CATEGORY_NAME_LENGTH, strip_whitespace=True)
    ]


PRODUCT_FIELDS: tuple[str, ...] = tuple(Product.model_fields)
CATEGORY_FIELDS: tuple[str, ...] = tuple(Category.model_fields)
