"""Several API processes on one Kafka (uvicorn --workers, replicas): none fences another, and an
Idempotency-Key committed by one process is replayed by any other."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from lakehouse.settings import Settings
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, committed_keys, running_pipeline
from tests.integration.test_api import unique_asin
from tests.unit.test_schemas import GOOD

pytestmark = pytest.mark.integration

REQUESTS = 40
PRODUCTS_PER_REQUEST = 50
CONCURRENCY = 8

# (Idempotency-Key, products)
Batch = tuple[str, list[dict[str, Any]]]


def new_batches(count: int) -> list[Batch]:
    return [
        (uuid.uuid4().hex, [{**GOOD, "asin": unique_asin()} for _ in range(PRODUCTS_PER_REQUEST)]) for _ in range(count)
    ]


def post_concurrently(api_url: str, batches: list[Batch]) -> list[httpx.Response]:
    """Each batch to /products/batch with its key, CONCURRENCY at a time; the answers in the batches' order."""
    with httpx.Client(base_url=api_url, timeout=60) as client, ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(
            pool.map(
                lambda batch: client.post("/products/batch", json=batch[1], headers={"Idempotency-Key": batch[0]}),
                batches,
            )
        )


def times_committed(config: Settings, batches: list[Batch]) -> set[int]:
    """How many times each product of `batches` is in the products topic, as the streaming job reads it."""
    counts = committed_keys(config.kafka_bootstrap_servers, config.kafka_topic_products)
    return {counts[product["asin"].encode()] for _, products in batches for product in products}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_workers(infrastructure: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The API as `uvicorn --workers 2` on its own topics; no streaming job."""
    with running_pipeline(infrastructure, tmp_path_factory.mktemp("workers"), start_job=False) as pipeline:
        pipeline.stack.process("api").stop()
        pipeline.stack.start_api(workers=2)
        yield pipeline


@pytest.fixture(scope="module")
def another_api(two_workers: Pipeline) -> Iterator[Settings]:
    """A second API process, started by hand on another port with the same settings."""
    port = free_port()
    config = two_workers.settings.model_copy(update={"api_port": port, "api_url": f"http://127.0.0.1:{port}"})
    stack = LocalStack(config, instance=f"{two_workers.stack.instance}-another")
    stack.start_api()
    try:
        yield config
    finally:
        stack.process("api").stop()


def test_two_workers_commit_every_batch_once_and_replay_every_retry(two_workers: Pipeline) -> None:
    config = two_workers.settings
    batches = new_batches(REQUESTS)

    first = post_concurrently(config.api_url, batches)
    assert [response.status_code for response in first] == [201] * REQUESTS, [
        r.text for r in first if r.status_code != 201
    ]
    assert not any("Idempotent-Replayed" in response.headers for response in first)
    assert times_committed(config, batches) == {1}

    again = post_concurrently(config.api_url, batches)
    assert [response.status_code for response in again] == [201] * REQUESTS
    assert [response.headers.get("Idempotent-Replayed") for response in again] == ["true"] * REQUESTS
    assert [response.json() for response in again] == [response.json() for response in first]
    assert times_committed(config, batches) == {1}


def test_a_retry_reaching_another_api_process_is_replayed(two_workers: Pipeline, another_api: Settings) -> None:
    """The other process has read the Idempotency-Keys before these were committed: it catches up on a miss."""
    config = two_workers.settings
    warm_up = post_concurrently(another_api.api_url, new_batches(1))
    assert [response.status_code for response in warm_up] == [201]
    batches = new_batches(CONCURRENCY)

    assert [response.status_code for response in post_concurrently(config.api_url, batches)] == [201] * CONCURRENCY
    retried = post_concurrently(another_api.api_url, batches)

    assert [response.status_code for response in retried] == [201] * CONCURRENCY
    assert [response.headers.get("Idempotent-Replayed") for response in retried] == ["true"] * CONCURRENCY
    assert times_committed(config, batches) == {1}
