"""Real services for the integration tests: one Kafka broker and one MongoDB-wire server per test session,
and per test its own topics, database, lakehouse folder, API process and streaming-job process."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo.database import Database

from lakehouse import catalog
from lakehouse.committed import read_committed, topic_ends
from lakehouse.mongo import mongo_client, serving_db
from lakehouse.settings import Settings, load_settings
from spark_jobs.consistency import gold_refresh_check
from spark_jobs.progress import lag_per_topic
from stack.processes import wait_until
from stack.services import LocalStack

pytestmark = pytest.mark.integration
COMMIT_FILE = re.compile(r"\d{20}\.json")  # a Delta commit, not a checkpoint's or a compacted log's JSON


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[LocalStack]:
    stack = LocalStack(load_settings())
    stack.up(["kafka", "mongo"])
    yield stack
    stack.kafka.stop()
    stack.mongo.stop()


@dataclass
class Pipeline:
    """One isolated run of the product: its own topics, database, lakehouse, API and streaming job."""

    stack: LocalStack

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def db(self) -> Database:
        return serving_db(self.settings)

    def wait_for_products(self, count: int, timeout: float = 300.0) -> None:
        def arrived() -> bool:
            self.fail_if_job_died()
            return self.db.products.count_documents({}) >= count

        assert wait_until(arrived, timeout, interval=1.0), (
            f"{self.db.products.count_documents({})} of {count} products after {timeout:.0f}s\n"
            f"{self.stack.process('job').log_tail()}"
        )

    def fail_if_job_died(self) -> None:
        job = self.stack.process("job")
        if job.pid_file.exists() and not job.is_running():
            pytest.fail(f"the streaming job died:\n{job.log_tail(80)}")

    def wait_until_idle(self, timeout: float = 300.0) -> None:
        """Until a batch has run after everything now in Kafka was produced (the job keeps up), and the last
        gold refresh (in that batch, or on the job's own thread with GOLD_REFRESH=background) was built from
        that silver."""

        def caught_up() -> bool:
            self.fail_if_job_died()
            lag = lag_per_topic(self.settings)
            return lag is not None and sum(lag.values()) == 0 and self.gold_is_current()

        assert wait_until(caught_up, timeout, interval=1.0), self.stack.process("job").log_tail()

    def gold_is_current(self) -> bool:
        """The last gold refresh was built from silver's newest versions (True before silver has a product:
        there is no gold then)."""
        silver = self.settings.lakehouse_dir / "silver"
        versions = {
            "silver_products_version": delta_version(silver / "products"),
            "silver_categories_version": delta_version(silver / "categories"),
        }
        refresh = self.db[catalog.PIPELINE_STATUS.name].find_one({"_id": catalog.GOLD_REFRESH_STATUS_ID}) or {}
        return gold_refresh_check(versions, refresh).ok  # make check's own comparison


def delta_version(table: Path) -> int | None:
    """The newest committed version of the local Delta table `table` (its newest `_delta_log` commit file)."""
    log = table / "_delta_log"
    commits = [int(path.stem) for path in log.glob("*.json") if COMMIT_FILE.fullmatch(path.name)]
    return max(commits, default=None)


@contextmanager
def running_pipeline(
    infrastructure: LocalStack, folder: Path, start_job: bool = True, cluster: bool = False, **overrides: object
) -> Iterator[Pipeline]:
    """Its own topics, database and lakehouse; the API and the streaming job as real processes (the job
    submitted to the Spark cluster at SPARK_MASTER with `cluster`)."""
    run_id = uuid.uuid4().hex[:8]
    names: dict[str, object] = {
        "kafka_topic_products": f"ingest-product-{run_id}",
        "kafka_topic_categories": f"ingest-category-{run_id}",
        "kafka_topic_processed": f"processed-product-{run_id}",
        "mongo_db": f"test_{run_id}",
        "kafka_transactional_id": f"api-{run_id}",
        "lakehouse_path": folder / "lakehouse",
        "checkpoint_path": folder / "checkpoints",
        "runtime_dir": infrastructure.settings.runtime_dir,
    }
    config = load_settings(**(names | overrides))
    stack = LocalStack(config, instance=run_id, cluster=cluster)
    stack.kafka.create_topics()
    stack.start_api()
    if start_job:
        stack.start_job()
    try:
        yield Pipeline(stack)
    finally:
        stack.stop_applications()
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)


@pytest.fixture
def pipeline(infrastructure: LocalStack, tmp_path: Path) -> Iterator[Pipeline]:
    with running_pipeline(infrastructure, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def loaded_pipeline(infrastructure: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """A pipeline that has processed the committed generated sample (shared by a module's read-only tests)."""
    from client import api_client
    from tests.conftest import SAMPLE_DATASET

    with running_pipeline(infrastructure, tmp_path_factory.mktemp("loaded")) as running:
        summary = api_client.run(
            SAMPLE_DATASET / "amazon_products.csv",
            SAMPLE_DATASET / "amazon_categories.csv",
            running.settings.api_url,
            show_progress=False,
        )
        assert summary.ok, summary.rejected[:5]
        running.wait_for_products(2000)
        running.wait_until_idle()
        yield running


def committed_keys(bootstrap_servers: str, topic: str) -> Counter[bytes]:
    """How many times each key is in `topic`, as a read_committed reader (the streaming job) sees it."""
    ends = topic_ends(bootstrap_servers, topic, 10)
    return Counter(message.key() for message in read_committed(bootstrap_servers, ends, 120, "tests"))
