"""mongo_sink.renames_products: which category writes rename the products MongoDB serves."""

from __future__ import annotations

from typing import Any

import pytest

from spark_jobs.mongo_sink import renames_products

NEW = {"_id": 7, "category_name": "New", "_v": "0002"}


@pytest.mark.parametrize(
    ("stored", "renames"),
    [
        (None, True),  # a new category: products waiting for its name get it
        ({"_id": 7, "category_name": "Old", "_v": "0001"}, True),  # renamed by a newer version
        ({"_id": 7, "category_name": "New", "_v": "0001"}, False),  # a newer version, the same name
        ({"_id": 7, "category_name": "Newest", "_v": "0003"}, False),  # an older version read later
        ({"_id": 7, "category_name": "Other", "_v": "0002"}, True),  # the same version again (a replay)
        ({"_id": 7, "category_name": "Old"}, False),  # no version: the guard's `$lte` cannot match it
        ({"_id": 7, "category_name": "Old", "_v": 1}, False),  # a number (an earlier release's offset): neither
    ],
)
def test_only_a_version_the_guard_lets_in_renames_products(stored: dict[str, Any] | None, renames: bool) -> None:
    assert renames_products(stored, NEW) is renames
