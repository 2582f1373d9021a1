"""What the read endpoints answer: lenient views of the serving layer, not the write contract.

MongoDB may hold rows the write contract (lakehouse/schemas.py) would now refuse: rows written before a rule
was tightened, or by another writer. A read must still answer, so each field keeps a value only when it can
be served as its type and is null otherwise: a string that is not a string, a non-finite or non-numeric
number, a boolean that is not a boolean. A URL is served only when it is http(s); any other (a
`javascript:` link, a bare path) is served as "" (no URL), never as a link.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from lakehouse.schemas import URL_PATTERN

_WEB_URL = re.compile(URL_PATTERN)  # the contract's: what the API accepts is what it serves


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any double
        return None
    return number if math.isfinite(number) else None


def _whole_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _datetime_or_none(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _web_url_or_blank(value: Any) -> str:
    return value if isinstance(value, str) and value and _WEB_URL.fullmatch(value) else ""


Text = Annotated[str | None, BeforeValidator(_text_or_none)]
Number = Annotated[float | None, BeforeValidator(_number_or_none)]
Whole = Annotated[int | None, BeforeValidator(_whole_or_none)]
Flag = Annotated[bool | None, BeforeValidator(_bool_or_none)]
WebUrl = Annotated[str, BeforeValidator(_web_url_or_blank)]
Moment = Annotated[datetime | None, BeforeValidator(_datetime_or_none)]


class ProductView(BaseModel):
    """A served product, with its category's name (null until the category has arrived)."""

    model_config = ConfigDict(extra="ignore")

    asin: Text = None
    title: Text = None
    imgUrl: WebUrl = ""
    productURL: WebUrl = ""
    stars: Number = None
    reviews: Whole = None
    price: Number = None
    listPrice: Number = None
    category_id: Whole = None
    isBestSeller: Flag = None
    boughtInLastMonth: Whole = None
    category_name: Text = None


class ProductPage(BaseModel):
    """A page of products in asin order; `next` is the `after` of the next page, null on the last."""

    items: list[ProductView]
    next: Text = None


class CategoryView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Whole = None
    category_name: Text = None


class Insights(BaseModel):
    """The gold aggregates, with the time of the micro-batch that computed them (null if unknown)."""

    as_of: Moment = None
    summary: dict[str, Any]
    categories: list[dict[str, Any]]
    price_buckets: list[dict[str, Any]]
    rating_distribution: list[dict[str, Any]]
