"""Stopping the streaming job mid-ingest and starting it again loses nothing and duplicates nothing."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from client import api_client
from tests.conftest import SAMPLE_DATASET
from tests.integration.conftest import Pipeline
from tests.integration.test_pipeline_e2e import assert_mongo_matches, expected_documents

pytestmark = pytest.mark.integration


def split_csv(source: Path, first: Path, second: Path, first_rows: int) -> None:
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    for path, part in ((first, rows[:first_rows]), (second, rows[first_rows:])):
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerows(itertools.chain([header], part))


def test_job_killed_mid_ingest_resumes_from_checkpoint_under_spark_submit(pipeline: Pipeline, tmp_path: Path) -> None:
    products = SAMPLE_DATASET / "amazon_products.csv"
    categories = SAMPLE_DATASET / "amazon_categories.csv"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    split_csv(products, first, second, first_rows=800)
    api = pipeline.settings.api_url

    assert api_client.run(first, categories, api, show_progress=False).ok
    pipeline.wait_for_products(1)
    assert pipeline.stack.process("job").kill()
    assert api_client.run(second, categories, api, show_progress=False).ok

    pipeline.stack.start_job(spark_submit=True)
    pipeline.wait_for_products(len(expected_documents(products, categories)))
    pipeline.wait_until_idle()
    assert_mongo_matches(pipeline, products, categories)
    assert pipeline.db.products.count_documents({}) == len(expected_documents(products, categories))
