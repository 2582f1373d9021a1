"""Cluster mode on loopback (issue #13): three KRaft Kafka nodes (replication 3, min.insync.replicas 2) and a
Spark standalone master with two workers, shared by this module; each test kills one of them mid-run."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from client import api_client
from dataset.generate import write_dataset
from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.settings import Settings, cluster_settings
from spark_jobs.consistency import run_checks
from stack.pipeline import distinct_keys
from stack.processes import wait_until
from stack.services import LocalStack, MemorySampler
from tests.integration.conftest import Pipeline, running_pipeline

pytestmark = pytest.mark.integration

# Beside the session's single broker (19092) and test_ingest_faults' (19192); controllers on the next ports.
CLUSTER_ENDPOINTS: dict[str, object] = {
    "kafka_bootstrap_servers": "127.0.0.1:19292,127.0.0.1:19294,127.0.0.1:19296",
    "spark_master": "spark://127.0.0.1:17177",
    "spark_master_webui_port": 18190,
}
MEMORY_BUDGET_BYTES = 6 * 2**30


@pytest.fixture(scope="module")
def cluster(infrastructure: LocalStack) -> Iterator[LocalStack]:
    """The Kafka nodes and the Spark cluster (MongoDB is the session's); stopped by pid at the end."""
    config = cluster_settings(**CLUSTER_ENDPOINTS, runtime_dir=infrastructure.settings.runtime_dir / "cluster")
    stack = LocalStack(config, cluster=True)
    try:
        stack.up(["kafka", "spark"])
        yield stack
    finally:
        stack.down()


def on_cluster(cluster: LocalStack, **overrides: object) -> dict[str, object]:
    """A test pipeline's settings overrides: the cluster's endpoints and durability."""
    config = cluster.settings
    return {
        "kafka_bootstrap_servers": config.kafka_bootstrap_servers,
        "kafka_replication_factor": config.kafka_replication_factor,
        "kafka_min_insync_replicas": config.kafka_min_insync_replicas,
        "spark_master": config.spark_master,
        "spark_master_webui_port": config.spark_master_webui_port,
        "spark_driver_memory": config.spark_driver_memory,
    } | overrides


def generated(folder: Path, products: int) -> tuple[Path, Path]:
    return write_dataset(folder, products=products, categories=60, seed=13)


def produced(config: Settings) -> int:
    """Records in the products topic now (every partition's end offset, summed)."""
    ends = KafkaAdmin(config.kafka_bootstrap_servers).end_offsets([config.kafka_topic_products])
    return sum(ends.values())


def in_sync_everywhere(config: Settings, nodes: int) -> bool:
    """Every partition of the pipeline's topics and of the API's transaction log has all `nodes` replicas in
    sync."""
    topics = [*config.kafka_topics, config.kafka_topic_processed, "__transaction_state"]
    replicas = KafkaAdmin(config.kafka_bootstrap_servers).in_sync_replicas(topics)
    return bool(replicas) and all(len(isr) == nodes for isr in replicas.values())


def assert_served_once_each(pipeline: Pipeline, products: Path, categories: Path) -> None:
    """MongoDB holds exactly one product document per distinct asin of the file, and every category."""
    asins, category_ids = distinct_keys(products, categories)
    pipeline.wait_for_products(asins, timeout=900)
    pipeline.wait_until_idle(timeout=900)
    served = pipeline.db.products
    duplicated = list(served.aggregate([{"$group": {"_id": "$asin", "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]))
    assert (served.count_documents({}), len(served.distinct("asin")), duplicated) == (asins, asins, [])
    assert pipeline.db.categories.count_documents({}) == category_ids


def test_a_broker_killed_while_the_client_sends_loses_and_duplicates_nothing(
    cluster: LocalStack, infrastructure: LocalStack, spark: SparkSession, tmp_path: Path
) -> None:
    # 20,000 records: enough to kill the broker mid-send and to need several transactions and batches; the
    # figures at 100,000 (throughput, memory at size) belong to bench.cluster_throughput (make bench-cluster).
    products, categories = generated(tmp_path / "data", 20_000)
    # Node 1: the first bootstrap address, and the quorum's first voter (often its leader).
    victim = cluster.kafka.nodes[0]
    with running_pipeline(infrastructure, tmp_path, cluster=True, **on_cluster(cluster)) as pipeline:
        job_pid = pipeline.stack.process("job").pid()
        with (
            # The cluster, MongoDB and the applications; not the session's single broker, which other modules use.
            MemorySampler(cluster, pipeline.stack, leave_out={infrastructure.kafka.process.pid()}) as memory,
            ThreadPoolExecutor(1) as pool,
        ):
            started = time.monotonic()
            sending = pool.submit(api_client.run, products, categories, pipeline.settings.api_url, show_progress=False)
            assert wait_until(lambda: produced(pipeline.settings) >= 5_000 or sending.done(), 300, interval=0.05)
            assert not sending.done(), "the client finished before the broker could be killed mid-send"
            victim.process.kill()
            summary = sending.result(timeout=900)
            sent_in = time.monotonic() - started
            assert (summary.ok, summary.accepted, summary.undelivered) == (True, 20_060, 0), summary.rejected[:5]
            victim.launch(cluster.kafka.cluster_id())
            assert_served_once_each(pipeline, products, categories)
            served_in = time.monotonic() - started
            assert wait_until(lambda: in_sync_everywhere(pipeline.settings, 3), 120, interval=1.0)
        # The job carried on (no restart), and `make check` (its checks, on this test's local session) agrees.
        assert pipeline.stack.process("job").pid() == job_pid
        diverged = [check.line() for check in run_checks(spark, pipeline.settings) if not check.ok]
        assert not diverged, diverged
    shares = ", ".join(f"{name} {pss / 2**20:.0f}" for name, pss in sorted(memory.peak_by_process.items()))
    print(
        f"\n20,060 records sent in {sent_in:.0f} s with {victim.name} killed at 5,000; all served in "
        f"{served_in:.0f} s; memory peak {memory.peak / 2**30:.2f} GiB PSS ({memory.peak_rss / 2**30:.2f} GiB RSS; "
        f"PSS in MiB: {shares})"
    )
    # Issue #13's budget: PSS peaks of 5.51-5.75 GiB over three runs since the memory changes (README, Running on a
    # cluster), 6.39 GiB RSS once before them. Over it, a warning in the run's summary: what the test asserts
    # are the guarantees above.
    if memory.peak >= MEMORY_BUDGET_BYTES:
        peak = memory.peak / 2**30
        warnings.warn(f"cluster memory peak {peak:.2f} GiB is over the 6 GiB budget (MiB: {shares})", stacklevel=1)


def test_a_spark_worker_killed_mid_batch_leaves_exact_results(
    cluster: LocalStack, infrastructure: LocalStack, spark: SparkSession, tmp_path: Path
) -> None:
    assert cluster.spark is not None
    products, categories = generated(tmp_path / "data", 10_000)
    worker = cluster.spark.workers[0]
    overrides = on_cluster(cluster, stream_max_offsets_per_trigger=5_000)
    with running_pipeline(infrastructure, tmp_path, cluster=True, **overrides) as pipeline:
        summary = api_client.run(products, categories, pipeline.settings.api_url, show_progress=False)
        assert summary.ok and summary.accepted == 10_060
        # Products reach MongoDB in the middle of a batch (history, publish and the event follow), and at
        # most 5,000 of 10,000 are in by then: the worker dies with that batch and at least one more to come.
        assert wait_until(lambda: pipeline.db.products.count_documents({}) > 0, 600, interval=0.5)
        worker.kill()
        assert pipeline.db.products.count_documents({}) <= 5_000
        try:
            assert_served_once_each(pipeline, products, categories)
        finally:
            cluster.spark.start()
        diverged = [check.line() for check in run_checks(spark, pipeline.settings) if not check.ok]
        assert not diverged, diverged
