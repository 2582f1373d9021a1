"""bench/serving_data.py writes what the job would: every collection in the catalog's shape, from the job's
own Spark functions (checked on a tiny dataset, without MongoDB)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from bench import serving_data
from bench.dashboard_paint import PAGES
from lakehouse import catalog
from lakehouse.settings import load_settings
from spark_jobs import trends
from spark_jobs.serving_writer import product_documents

PRODUCTS = 40


@pytest.fixture(scope="module")
def loaded(spark, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("serving_data")
    products_csv, categories_csv, days = serving_data.write_inputs(folder, PRODUCTS, seed=5)
    timeline = serving_data.Timeline(datetime(2026, 11, 30, 12, tzinfo=UTC), len(days))
    config = load_settings()
    categories = serving_data.category_frame(spark, categories_csv, config.kafka_topic_categories, timeline)
    versions = serving_data.product_versions(spark, products_csv, days, "ingest-product", timeline, folder)
    return timeline, categories, versions


def columns_of(served: catalog.ServingCollection) -> list[str]:
    return ["_id", *served.fields]


def test_products_and_price_history_have_the_catalog_shapes(loaded) -> None:
    timeline, categories, versions = loaded
    current = serving_data.current_products(versions, categories, timeline.days)
    assert product_documents(current).columns == columns_of(catalog.PRODUCTS)
    assert current.count() == PRODUCTS
    history = trends.price_history_documents(trends.price_history(versions))
    assert history.columns == columns_of(catalog.PRICE_HISTORY)
    assert history.count() == PRODUCTS + round(PRODUCTS * serving_data.UPDATE_SHARE)


def test_a_version_of_a_later_day_is_newer(loaded) -> None:
    _, _, versions = loaded
    by_day = versions.groupBy("day").agg(F.min("_v").alias("first"), F.max("_v").alias("last")).orderBy("day")
    days = by_day.collect()
    assert [row["day"] for row in days] == list(range(serving_data.HISTORY_DAYS + 1))
    assert all(earlier["last"] < later["first"] for earlier, later in pairwise(days))


def test_category_history_has_a_point_per_category_and_day_and_movers_the_catalog_shape(loaded) -> None:
    timeline, categories, versions = loaded
    points = serving_data.category_points(versions, categories, timeline, bucket_seconds=60)
    assert points.columns == columns_of(catalog.GOLD_CATEGORY_HISTORY)
    per_category = points.groupBy("category_id").count().collect()
    assert {row["count"] for row in per_category} == {timeline.days + 1}
    movers = trends.category_movers(points, timeline.until)
    assert movers.columns == columns_of(catalog.GOLD_MOVERS) and movers.count() > 0


def test_events_and_quarantine_documents_have_the_catalog_fields() -> None:
    timeline = serving_data.Timeline(datetime(2026, 11, 30, 12, tzinfo=UTC), 5)
    events = list(serving_data.pipeline_events(timeline, "ingest-product", seed=1))
    quarantined = list(serving_data.quarantine_documents(timeline, "ingest-product", seed=1))
    assert len(events) == serving_data.EVENTS and len(quarantined) == serving_data.QUARANTINED
    assert all(set(e) == set(columns_of(catalog.PIPELINE_EVENTS)) for e in events)
    assert all(set(q) == set(columns_of(catalog.QUARANTINE)) for q in quarantined)
    assert events[-1]["at"] == timeline.until


def test_the_benchmark_times_every_page_of_the_dashboard() -> None:
    app = (Path(__file__).resolve().parents[2] / "dashboard" / "app.py").read_text()
    for page in PAGES.values():
        assert (f'url_path="{page.path}"' in app) or (page.path == "" and "default=True" in app)
