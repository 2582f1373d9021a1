"""Read endpoints over the MongoDB serving layer, for programs that should not talk to MongoDB directly."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict
from pymongo.database import Database
from pymongo.errors import PyMongoError

from lakehouse import serving
from lakehouse.schemas import Product

router = APIRouter(tags=["reads"])


class ProductView(Product):
    model_config = ConfigDict(extra="ignore")
    category_name: str | None = None


class ProductPage(BaseModel):
    items: list[ProductView]
    next: str | None = None


class CategoryView(BaseModel):
    id: int
    category_name: str


class Insights(BaseModel):
    as_of: datetime | None
    summary: dict[str, Any]
    categories: list[dict[str, Any]]
    price_buckets: list[dict[str, Any]]
    rating_distribution: list[dict[str, Any]]


def _db(request: Request) -> Database:
    return request.app.state.db


def _serving_unavailable(error: PyMongoError) -> HTTPException:
    return HTTPException(
        503, f"the serving database is unavailable: {error.__class__.__name__}", headers={"Retry-After": "5"}
    )


@router.get("/products/{asin}", response_model=ProductView)
def get_product(asin: str, request: Request) -> dict[str, Any]:
    """One product by ASIN, with its category name."""
    try:
        product = serving.find_product(_db(request), asin)
    except PyMongoError as error:
        raise _serving_unavailable(error) from error
    if product is None:
        raise HTTPException(404, f"no product with asin {asin!r}")
    return product


@router.get("/products", response_model=ProductPage)
def list_products(
    request: Request,
    category_id: int | None = None,
    q: Annotated[str, Query(description="words that must all appear in the title")] = "",
    limit: Annotated[int, Query(ge=1, le=serving.MAX_PAGE)] = 50,
    after: Annotated[str | None, Query(description="the `next` cursor of the previous page")] = None,
) -> ProductPage:
    """Products in ASIN order, a page at a time: pass the answer's `next` as `after` for the next page."""
    try:
        items, next_cursor = serving.search_products(_db(request), category_id, q, limit, after)
    except PyMongoError as error:
        raise _serving_unavailable(error) from error
    return ProductPage(items=[ProductView.model_validate(i) for i in items], next=next_cursor)


@router.get("/categories", response_model=list[CategoryView])
def get_categories(request: Request) -> list[dict[str, Any]]:
    try:
        return serving.list_categories(_db(request))
    except PyMongoError as error:
        raise _serving_unavailable(error) from error


@router.get("/insights", response_model=Insights)
def get_insights(request: Request) -> dict[str, Any]:
    """The gold aggregates the dashboard shows, with the time of the micro-batch that computed them."""
    try:
        return serving.insights(_db(request))
    except PyMongoError as error:
        raise _serving_unavailable(error) from error
