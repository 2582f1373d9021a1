"""What every benchmark run gets of its own, so runs never mix with each other, the tests or `make run`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from lakehouse.settings import PROJECT_ROOT, Settings, load_settings
from stack.services import LocalStack

BENCH_DIR = PROJECT_ROOT / "var" / "bench"


def run_settings(bench: str, api_port: int, run: str = "") -> Settings:
    """Settings for one run of the benchmark `bench`: topics `bench-<bench>-{product,category,processed}-<run>`,
    database `bench_<bench>_<run>`, transactional ids `bench-<bench>-<run>`, lakehouse and checkpoints in
    var/bench/<bench>/<run>/, the API on 127.0.0.1:`api_port`; `run` is 8 random hex digits unless given."""
    run = run or uuid.uuid4().hex[:8]
    folder = BENCH_DIR / bench / run
    return load_settings(
        kafka_topic_products=f"bench-{bench}-product-{run}",
        kafka_topic_categories=f"bench-{bench}-category-{run}",
        kafka_topic_processed=f"bench-{bench}-processed-{run}",
        kafka_transactional_id=f"bench-{bench}-{run}",
        mongo_db=f"bench_{bench}_{run}",
        lakehouse_path=folder / "lakehouse",
        checkpoint_path=folder / "checkpoints",
        api_port=api_port,
        api_url=f"http://127.0.0.1:{api_port}",
    )


@contextmanager
def infrastructure(instance: str) -> Iterator[None]:
    """The local stack's Kafka and MongoDB, started if they are not running; those this run started are
    stopped at the end. `instance` names the bench's own application processes."""
    stack = LocalStack(load_settings(), instance=instance)
    ours = {"kafka": not stack.kafka.process.is_running(), "mongo": not stack.mongo.process.is_running()}
    try:
        stack.up(["kafka", "mongo"])
        yield
    finally:
        if ours["kafka"]:
            stack.kafka.stop()
        if ours["mongo"]:
            stack.mongo.stop()
