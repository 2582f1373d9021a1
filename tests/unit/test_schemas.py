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
        # Issue #11: each was accepted by the API and then quarantined, or crashed it.
        ("reviews", 10**30),
        ("category_id", 2**63),
        ("boughtInLastMonth", 2**64),
        ("productURL", "javascript:alert(1)"),
        ("imgUrl", "data:image/png;base64,AAAA"),
        ("title", "x\ud800y"),
        ("price", float("nan")),
        ("listPrice", float("inf")),
        ("price", 10**400),
        ("price", "12"),
        ("reviews", 1.0),
        ("isBestSeller", 1),
        ("title", 123),
    ],
)
def test_each_rule_rejects_its_bad_value(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as error:
        Product.model_validate({**GOOD, field: value})
    assert error.value.errors()[0]["loc"] == (field,)


def test_unknown_fields_are_rejected_by_the_api_schema() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Product.model_validate({**GOOD, "colour": "red"})


def test_null_means_absent_for_a_field_with_a_default() -> None:
    product = Product.model_validate({**GOOD, "listPrice": None, "isBestSeller": None, "imgUrl": None})
    assert (product.listPrice, product.isBestSeller, product.imgUrl) == (0.0, False, "")
    with pytest.raises(ValidationError):
        Product.model_validate({**GOOD, "price": None})


def test_a_category_id_beyond_64_bits_is_refused() -> None:
    with pytest.raises(ValidationError):
        Category(id=2**63, category_name="x")


def test_category_name_is_trimmed_and_required() -> None:
    assert Category(id=3, category_name="  Toys ").category_name == "Toys"
    with pytest.raises(ValidationError):
        Category(id=3, category_name="   ")


def test_readme_validation_tables_are_the_contract() -> None:
    """README.md's tables are generated from the models; regenerate them with lakehouse.contract."""
    from lakehouse.contract import validation_table
    from tests.conftest import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    assert validation_table(Product) in readme
    assert validation_table(Category) in readme
