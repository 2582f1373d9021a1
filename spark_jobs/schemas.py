"""Spark schemas derived from the shared pydantic models, so the two can never disagree."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from lakehouse.schemas import Category, Product

_SPARK_TYPES: dict[type, DataType] = {str: StringType(), float: DoubleType(), int: LongType(), bool: BooleanType()}


def _base_type(annotation: object) -> type:
    """str for Annotated[str, ...] and for `str | None`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return _base_type(next(a for a in typing.get_args(annotation) if a is not type(None)))
    assert isinstance(annotation, type), f"unsupported annotation {annotation!r}"
    return annotation


def spark_schema(model: type[BaseModel]) -> StructType:
    return StructType(
        [
            StructField(name, _SPARK_TYPES[_base_type(field.annotation)], nullable=True)
            for name, field in model.model_fields.items()
        ]
    )


PRODUCT_SCHEMA = spark_schema(Product)
CATEGORY_SCHEMA = spark_schema(Category)
