from __future__ import annotations

import re
from pathlib import Path

from client.transformer import Record, read_categories, read_products
from dataset.generate import asin_for, write_dataset
from lakehouse.schemas import ASIN_PATTERN


def test_same_seed_same_bytes_and_every_row_valid(tmp_path: Path) -> None:
    first = write_dataset(tmp_path / "a", products=500, categories=30, seed=7)
    second = write_dataset(tmp_path / "b", products=500, categories=30, seed=7)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    products = list(read_products(first[0]))
    categories = list(read_categories(first[1]))
    assert len(products) == 500 and all(isinstance(p, Record) for p in products)
    assert {c.data["id"] for c in categories if isinstance(c, Record)} == set(range(1, 31))
    assert {p.data["category_id"] for p in products} <= set(range(1, 31))


def test_a_different_seed_gives_different_data(tmp_path: Path) -> None:
    first = write_dataset(tmp_path / "a", products=50, categories=10, seed=1)
    second = write_dataset(tmp_path / "b", products=50, categories=10, seed=2)
    assert first[0].read_bytes() != second[0].read_bytes()


def test_asins_are_unique_and_well_formed() -> None:
    asins = [asin_for(i) for i in range(1, 200_001)]
    assert len(set(asins)) == len(asins)
    assert all(re.fullmatch(ASIN_PATTERN, a) for a in asins[:1000])


def test_committed_sample_is_what_the_generator_makes(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "dataset" / "sample"
    made = write_dataset(tmp_path, products=2000, categories=60, seed=42)
    assert [p.read_bytes() for p in made] == [
        (sample / "amazon_products.csv").read_bytes(),
        (sample / "amazon_categories.csv").read_bytes(),
    ]
