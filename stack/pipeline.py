"""`make run`: the whole pipeline on the local stack, with the sample dataset sent through the API, then its
price history (dataset/sample/updates/day_*.csv) one simulated day per trends bucket."""

from __future__ import annotations

import time
from pathlib import Path

from client import api_client
from client.transformer import Record, read_categories, read_products
from dataset.generate import UPDATES_FOLDER
from lakehouse import catalog
from lakehouse.mongo import serving_db
from lakehouse.settings import Settings
from spark_jobs.progress import lag_per_topic
from stack.processes import wait_until
from stack.services import LocalStack

# Into a bucket by this many seconds before a day is sent, so a broker clock a little behind ours still puts
# the whole day in that bucket.
BUCKET_MARGIN_SECONDS = 1.0


def distinct_keys(products: Path, categories: Path) -> tuple[int, int]:
    """How many products (asins) and categories the files hold, counting only valid rows."""
    asins = {item.data["asin"] for item in read_products(products) if isinstance(item, Record)}
    ids = {item.data["id"] for item in read_categories(categories) if isinstance(item, Record)}
    return len(asins), len(ids)


def day_files(products: Path) -> list[Path]:
    """The price history beside `products` (the generator's `updates/day_*.csv`), day 1 first; the Kaggle
    files have none. Every row is a new version of a product of `products`, so the distinct keys stay the
    same and the waits count them as they count the base files."""
    return sorted((products.parent / UPDATES_FOLDER).glob("day_*.csv"))


def valid_rows(products: Path) -> int:
    return sum(isinstance(item, Record) for item in read_products(products))


def unsent(files: list[Path], versions_served: int) -> list[Path]:
    """The product files (the sample first, then its days) whose records are not in MongoDB's price history
    yet. Every valid row of them is a new version, so the first `versions_served` rows were sent by an
    earlier `make run` on this kept data: sending them again would add every price a second time."""
    remaining = versions_served
    for index, path in enumerate(files):
        rows = valid_rows(path)
        if remaining < rows:
            return files[index:]
        remaining -= rows
    return []


def seconds_to_next_bucket(now: float, bucket_seconds: int, margin: float = BUCKET_MARGIN_SECONDS) -> float:
    """Seconds from `now` (epoch seconds) until `margin` seconds into the next trends bucket: buckets start at
    whole multiples of `bucket_seconds` since the epoch, as the job's time buckets of broker time do."""
    return (now // bucket_seconds + 1) * bucket_seconds + margin - now


def wait_for_stream(config: Settings, products: int, categories: int, timeout: float) -> bool:
    """Until the job has processed everything now in Kafka and MongoDB holds every key, named."""
    db = serving_db(config)
    served_products, served_categories = db[catalog.PRODUCTS.name], db[catalog.CATEGORIES.name]

    def arrived() -> bool:
        lag = lag_per_topic(config)
        return (
            lag is not None
            and sum(lag.values()) == 0
            and served_products.count_documents({}) >= products
            and served_categories.count_documents({}) >= categories
            and served_products.count_documents({"category_name": None}) == 0
        )

    return wait_until(arrived, timeout, interval=1.0)


def send_price_history(config: Settings, days: list[Path], expected: tuple[int, int], timeout: float) -> bool:
    """Send each day file at the start of its own trends bucket and wait until the job has processed it,
    printing what was sent and how many price versions MongoDB then holds."""
    bucket = config.trends_bucket_seconds
    print(
        f"price history: {len(days)} simulated days from {days[0].parent}, one day per trends bucket "
        f"(TRENDS_BUCKET_SECONDS={bucket}), so each day is its own point on the Trends page; "
        f"the last arrives in about {len(days) * bucket / 60:.0f} min",
        flush=True,
    )
    history = serving_db(config)[catalog.PRICE_HISTORY.name]
    for number, day in enumerate(days, start=1):
        time.sleep(seconds_to_next_bucket(time.time(), bucket))
        summary = api_client.run(day, None, config.api_url, config.api_key, show_progress=False)
        arrived = wait_for_stream(config, *expected, timeout)
        print(
            f"day {number} of {len(days)} ({day.name}): {summary.sent} price updates sent "
            f"(accepted {summary.accepted}, rejected {len(summary.rejected)}); "
            f"{'processed' if arrived else f'not processed within {timeout:.0f}s'}; "
            f"price versions in MongoDB: {history.estimated_document_count()}",
            flush=True,
        )
        if not (arrived and summary.ok):
            return False
    return True


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
    days = day_files(products)
    db = serving_db(config)
    pending = unsent([products, *days], db[catalog.PRICE_HISTORY.name].count_documents({}))
    if products in pending:
        summary = api_client.run(products, categories, config.api_url, config.api_key)
    else:
        print(f"{products} is already served (kept data of an earlier run): not sent again", flush=True)
        summary = api_client.Summary()
    expected = distinct_keys(products, categories)
    arrived = wait_for_stream(config, *expected, timeout)
    print(
        f"records sent: {summary.sent} (accepted {summary.accepted}, rejected {len(summary.rejected)}); "
        f"records in MongoDB: {db[catalog.PRODUCTS.name].count_documents({})} products, "
        f"{db[catalog.CATEGORIES.name].count_documents({})} categories; "
        f"seconds taken: {time.monotonic() - started:.0f}",
        flush=True,
    )
    if not arrived:
        print(
            f"the stream did not deliver {expected[0]} products within {timeout:.0f}s; "
            f"see {config.runtime_dir / 'logs'}"
        )
        return False
    days = [day for day in days if day in pending]
    history_ok = send_price_history(config, days, expected, timeout) if days else True
    return summary.ok and history_ok
