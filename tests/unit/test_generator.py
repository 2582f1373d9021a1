from __future__ import annotations

import re
from pathlib import Path

import pytest

from client.transformer import Record, read_categories, read_products
from dataset.generate import asin_for, main, write_dataset, write_updates
from lakehouse.schemas import ASIN_PATTERN

SAMPLE = Path(__file__).resolve().parents[2] / "dataset" / "sample"


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
    main(["--products", "2000", "--categories", "60", "--updates", "600", "--days", "5", "--out", str(tmp_path)])
    made = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*.csv"))
    assert made == sorted(path.relative_to(SAMPLE) for path in SAMPLE.rglob("*.csv"))
    assert [(tmp_path / path).read_bytes() for path in made] == [(SAMPLE / path).read_bytes() for path in made]


def products_by_asin(path: Path) -> dict[str, dict]:
    records = list(read_products(path))
    assert all(isinstance(record, Record) for record in records), [r for r in records if not isinstance(r, Record)]
    return {record.data["asin"]: record.data for record in records}  # type: ignore[union-attr]


def test_price_history_is_deterministic_and_every_row_passes_the_contract(tmp_path: Path) -> None:
    base, _ = write_dataset(tmp_path / "a", products=400, categories=20, seed=3)
    first = write_updates(tmp_path / "a", products=400, categories=20, seed=3, updates=150, days=4)
    second = write_updates(tmp_path / "b", products=400, categories=20, seed=3, updates=150, days=4)
    assert [path.name for path in first] == ["day_01.csv", "day_02.csv", "day_03.csv", "day_04.csv"]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]
    assert all(path.read_text().splitlines()[0] == base.read_text().splitlines()[0] for path in first)
    days = [products_by_asin(path) for path in first]
    assert sum(len(day) for day in days) == 150, "an asin is at most once in a day's file"
    assert set().union(*days) <= set(products_by_asin(base)), "updates are new versions of existing products"


def test_price_history_moves_like_a_shop(tmp_path: Path) -> None:
    """Over the committed sample's history: most moves are small, some are sales with the list price kept
    as the reference, some products move on several days; only price, listPrice, isBestSeller,
    boughtInLastMonth and reviews change."""
    current = products_by_asin(SAMPLE / "amazon_products.csv")
    versions: dict[str, int] = {}
    small = sales = 0
    for path in sorted((SAMPLE / "updates").glob("day_*.csv")):
        for asin, row in products_by_asin(path).items():
            before = current[asin]
            change = row["price"] / before["price"] - 1
            small += abs(change) <= 0.1
            sales += change <= -0.2 and row["listPrice"] >= before["price"]
            unchanged = {
                k for k in row if k not in {"price", "listPrice", "isBestSeller", "boughtInLastMonth", "reviews"}
            }
            assert {k: row[k] for k in unchanged} == {k: before[k] for k in unchanged}
            versions[asin] = versions.get(asin, 0) + 1
            current[asin] = row
    assert sum(versions.values()) == 600
    assert small >= 0.7 * 600 and 30 <= sales <= 150, (small, sales)
    assert sum(count > 1 for count in versions.values()) >= 100


def test_more_updates_than_products_times_days_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--products", "10", "--updates", "31", "--days", "3", "--out", str(tmp_path)])
