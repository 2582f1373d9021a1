from __future__ import annotations

import pytest
from pydantic import ValidationError

from lakehouse.schemas import Category, Product

# The schema's own OpenAPI example: a real row of the Kaggle file.
GOOD = dict(Product.model_config["json_schema_extra"]["examples"][0])


def test_a_kaggle_row_is_a_valid_product() -> None:
    assert Product.model_validate(GOOD).model_dump() == GOOD


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("asin", "b014tmv5ye"),
        ("asin", "B014TMV5Y"),
        ("asin", ""),
        ("title", ""),
        ("title", "x" * 4001),
        ("stars", 5.1),
        ("stars", -0.1),
        ("reviews", -1),
        ("price", -0.01),
        ("listPrice", -1),
        ("category_id", 0),
        ("boughtInLastMonth", -5),
        ("price", "cheap"),
    ],
)
def test_each_rule_rejects_its_bad_value(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        Product.model_validate({**GOOD, field: value})
    assert error.value.errors()[0]["loc"] == (field,)


def test_unknown_fields_are_rejected_by_the_api_schema() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Product.model_validate({**GOOD, "colour": "red"})


def test_category_name_is_trimmed_and_required() -> None:
    assert Category(id=3, category_name="  Toys ").category_name == "Toys"
    with pytest.raises(ValidationError):
        Category(id=3, category_name="   ")
