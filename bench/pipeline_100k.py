"""End-to-end figures on the local stack, in phases so the two cores are not shared between them.

    .venv/bin/python -m bench.pipeline_100k --products 100000

1. client -> API -> Kafka: records/s of `client/api_client.py` over N generated products (job stopped);
2. Kafka -> Spark -> Delta -> MongoDB: the streaming job started on the full topic, rows/s until MongoDB
   holds every product (includes the job's start-up, printed separately);
3. dashboard: seconds to render the main page (Streamlit AppTest) with N products in MongoDB, against the
   committed 2,000-product sample as the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

from client import api_client
from dataset.generate import write_dataset
from lakehouse import catalog
from lakehouse.mongo import mongo_client, serving_db
from lakehouse.settings import PROJECT_ROOT, Settings, load_settings, settings_env
from spark_jobs.progress import lag_per_topic
from stack.processes import wait_until
from stack.services import LocalStack


def bench_settings(name: str) -> Settings:
    folder = PROJECT_ROOT / "var" / "bench" / name
    return load_settings(
        kafka_topic_products=f"bench-product-{name}",
        kafka_topic_categories=f"bench-category-{name}",
        mongo_db=f"bench_{name}",
        lakehouse_path=folder / "lakehouse",
        checkpoint_path=folder / "checkpoints",
        api_port=18100,
        api_url="http://127.0.0.1:18100",
    )


def send(stack: LocalStack, data: tuple[Path, Path]) -> tuple[int, float]:
    """`client/api_client.py` sends the files to the stack's API (already started); returns the records sent
    and the seconds it took."""
    started = time.monotonic()
    summary = api_client.run(data[0], data[1], stack.settings.api_url, show_progress=False)
    seconds = time.monotonic() - started
    assert summary.ok, summary.rejected[:3]
    rate = summary.sent / seconds
    print(f"client -> API -> Kafka: {summary.sent:,} records in {seconds:.1f}s = {rate:,.0f} records/s")
    return summary.sent, seconds


def time_job(stack: LocalStack, records: int, products: int) -> tuple[float, float]:
    """Starts the streaming job on the topics already filled and waits until MongoDB holds all `products` with
    lag 0; returns the seconds until then and until the job wrote its first status to MongoDB (its
    start-up: the Spark session, the connections, the query started)."""
    config = stack.settings
    db = serving_db(config)
    started = time.monotonic()
    stack.start_job()
    status = db[catalog.PIPELINE_STATUS.name]
    assert wait_until(lambda: status.find_one() is not None, 600), stack.process("job").log_tail()
    start_up = time.monotonic() - started

    def done() -> bool:
        lag = lag_per_topic(config)
        served = db[catalog.PRODUCTS.name].count_documents({})
        return lag is not None and sum(lag.values()) == 0 and served == products

    assert wait_until(done, 1800, interval=2), stack.process("job").log_tail()
    seconds = time.monotonic() - started
    stack.stop_applications()
    print(
        f"Kafka -> Spark -> Delta -> MongoDB: {records:,} rows in {seconds:.1f}s = {records / seconds:,.0f} rows/s "
        f"(start-up {start_up:.1f}s)"
    )
    return seconds, start_up


def load(products: int, seed: int) -> Settings:
    """Sends N generated products with the job stopped, then times the job over them; returns the settings."""
    config = bench_settings(uuid.uuid4().hex[:8])
    data = write_dataset(PROJECT_ROOT / "var" / "bench" / "data", products, 248, seed)
    stack = LocalStack(config, instance="bench")
    stack.kafka.start()
    stack.mongo.start()
    stack.start_api()
    records, _ = send(stack, data)
    stack.stop_applications()
    time_job(stack, records, products)
    return config


def render_seconds(config: Settings, repeats: int = 3) -> float:
    """Best of `repeats` renders of the dashboard's main page (cold caches: a fresh app each time)."""
    import subprocess

    code = (
        "import time; from streamlit.testing.v1 import AppTest; t=time.monotonic(); "
        "at=AppTest.from_file('dashboard/app.py', default_timeout=120).run(); "
        "assert not at.exception, at.exception; print(time.monotonic()-t)"
    )
    env = {**os.environ, **settings_env(config)}
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(repeats)
    ]
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    big = load(args.products, args.seed)
    small = load(2_000, 42)
    big_render, small_render = render_seconds(big), render_seconds(small)
    print(
        f"dashboard main page: {big_render:.2f}s with {args.products:,} products, {small_render:.2f}s with 2,000 "
        f"(ratio {big_render / small_render:.2f})"
    )
    for config in (big, small):
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)


if __name__ == "__main__":
    main()
