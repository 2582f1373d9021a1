"""`make run`: the whole pipeline on the local stack, with the sample dataset sent through the API."""

from __future__ import annotations

import time
from pathlib import Path

from client import api_client
from client.transformer import Record, read_categories, read_products
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings
from spark_jobs.progress import lag_per_topic
from stack.processes import wait_until
from stack.services import LocalStack


def distinct_keys(products: Path, categories: Path) -> tuple[int, int]:
    """How many products (asins) and categories the files hold, counting only valid rows."""
    asins = {item.data["asin"] for item in read_products(products) if isinstance(item, Record)}
    ids = {item.data["id"] for item in read_categories(categories) if isinstance(item, Record)}
    return len(asins), len(ids)


def wait_for_stream(config: Settings, products: int, categories: int, timeout: float) -> bool:
    """Until the job has processed everything now in Kafka and MongoDB holds every key, named."""
    db = serving_db(config)

    def arrived() -> bool:
        lag = lag_per_topic(config)
        return (
            lag is not None
            and sum(lag.values()) == 0
            and db.products.count_documents({}) >= products
            and db.categories.count_documents({}) >= categories
            and db.products.count_documents({"category_name": None}) == 0
        )

    return wait_until(arrived, timeout, interval=1.0)


def run_pipeline(stack: LocalStack, timeout: float = 900.0) -> bool:
    config = stack.settings
    started = time.monotonic()
    stack.up()
    print(
        f"API docs:  {config.api_url}/docs\nDashboard: http://127.0.0.1:{config.dashboard_port}\n"
        f"MongoDB:   {config.mongo_uri} (database {config.mongo_db})",
        flush=True,
    )
    products = api_client.default_input("amazon_products.csv")
    categories = api_client.default_input("amazon_categories.csv")
    summary = api_client.run(products, categories, config.api_url, config.api_key)
    expected_products, expected_categories = distinct_keys(products, categories)
    arrived = wait_for_stream(config, expected_products, expected_categories, timeout)
    db = serving_db(config)
    in_mongo = db.products.count_documents({})
    print(
        f"records sent: {summary.sent} (accepted {summary.accepted}, rejected {len(summary.rejected)}); "
        f"records in MongoDB: {in_mongo} products, {db.categories.count_documents({})} categories; "
        f"seconds taken: {time.monotonic() - started:.0f}",
        flush=True,
    )
    if not arrived:
        print(
            f"the stream did not deliver {expected_products} products within {timeout:.0f}s; "
            f"see {config.runtime_dir / 'logs'}"
        )
    return arrived and summary.ok
