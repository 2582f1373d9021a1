"""What `make run` sends after the sample: its price history, one simulated day per trends bucket."""

from __future__ import annotations

from pathlib import Path

from client.transformer import Record, read_products
from stack.pipeline import day_files, distinct_keys, seconds_to_next_bucket, unsent
from tests.conftest import SAMPLE_DATASET


def test_the_committed_sample_has_five_days_of_price_history_of_its_own_products() -> None:
    products = SAMPLE_DATASET / "amazon_products.csv"
    days = day_files(products)
    assert [day.name for day in days] == [f"day_0{n}.csv" for n in range(1, 6)]
    asins = {record.data["asin"] for record in read_products(products) if isinstance(record, Record)}
    updated = [record for day in days for record in read_products(day)]
    assert len(updated) == 600 and all(isinstance(record, Record) for record in updated)
    assert {record.data["asin"] for record in updated} <= asins  # type: ignore[union-attr]


def test_a_day_file_adds_no_key_so_the_waits_expect_the_same_counts() -> None:
    base = distinct_keys(SAMPLE_DATASET / "amazon_products.csv", SAMPLE_DATASET / "amazon_categories.csv")
    assert base == (2000, 60)
    for day in day_files(SAMPLE_DATASET / "amazon_products.csv"):
        assert distinct_keys(day, SAMPLE_DATASET / "amazon_categories.csv")[0] <= base[0]


def test_files_without_a_history_send_none(tmp_path: Path) -> None:
    (tmp_path / "amazon_products.csv").write_text("asin\n")
    assert day_files(tmp_path / "amazon_products.csv") == []


def test_a_day_is_sent_just_inside_the_next_bucket() -> None:
    assert seconds_to_next_bucket(1_000_000_030.0, 60) == 51.0  # in [..020, ..080): 1 s after ..080
    assert seconds_to_next_bucket(1_000_000_020.0, 60) == 61.0  # at a boundary: the one after it
    assert seconds_to_next_bucket(59.5, 60, margin=0.0) == 0.5


def test_a_second_make_run_on_kept_data_sends_only_what_the_price_history_lacks() -> None:
    products = SAMPLE_DATASET / "amazon_products.csv"
    files = [products, *day_files(products)]
    day_rows = [len(list(read_products(day))) for day in files[1:]]
    assert unsent(files, 0) == files  # a fresh lakehouse (or one from before the price history)
    assert unsent(files, 1_999) == files
    assert unsent(files, 2_000) == files[1:]  # the sample is in, its days are not
    assert unsent(files, 2_000 + day_rows[0] + day_rows[1]) == files[3:]  # stopped after day 2
    assert unsent(files, 2_600) == []
