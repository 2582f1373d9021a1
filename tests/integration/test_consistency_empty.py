"""`make check` (python -m spark_jobs.consistency) on a lakehouse the job has written only part of, or nothing
of: a missing table counts as empty, the report names it, and the exit code is 0 when the layers agree."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from lakehouse.settings import PROJECT_ROOT, load_settings
from stack.services import LocalStack
from tests.integration.conftest import running_pipeline
from tests.integration.test_api import unique_asin
from tests.unit.test_schemas import GOOD

pytestmark = pytest.mark.integration

ALL_TABLES = {
    "bronze/kafka_records",
    "silver/products",
    "silver/categories",
    "silver/quarantine",
    "silver/price_history",
    "gold/category_stats",
    "gold/summary",
}


def run_check(stack: LocalStack) -> subprocess.CompletedProcess[str]:
    """`python -m spark_jobs.consistency` with the stack's settings."""
    return subprocess.run(
        [stack.python, "-m", "spark_jobs.consistency"],
        env=stack.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def failure(check: subprocess.CompletedProcess[str]) -> str:
    return f"{check.stdout}\n{check.stderr[-3000:]}"


def missing_in(output: str) -> set[str]:
    return set(re.findall(r"^missing +(\S+): no Delta table yet, read as empty$", output, flags=re.MULTILINE))


def all_agree(output: str) -> bool:
    return re.search(r"^(\d+) of \1 checks agree$", output, flags=re.MULTILINE) is not None


def test_a_lakehouse_nothing_was_sent_to_is_reported_empty_and_consistent(
    infrastructure: LocalStack, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex[:8]
    config = load_settings(
        kafka_topic_products=f"ingest-product-{run_id}",
        kafka_topic_categories=f"ingest-category-{run_id}",
        mongo_db=f"test_{run_id}",
        lakehouse_path=tmp_path / "lakehouse",
        checkpoint_path=tmp_path / "checkpoints",
        runtime_dir=infrastructure.settings.runtime_dir,
    )
    stack = LocalStack(config, instance=run_id)
    stack.kafka.create_topics()

    check = run_check(stack)

    assert check.returncode == 0, failure(check)
    assert missing_in(check.stdout) == ALL_TABLES, failure(check)
    assert all_agree(check.stdout), failure(check)


SENT_ALONE = [
    pytest.param(
        "/products/batch",
        [{**GOOD, "asin": unique_asin()} for _ in range(3)],
        {"silver/categories", "silver/quarantine"},
        id="only-products",
    ),
    pytest.param(
        "/categories/batch",
        [{"id": 901, "category_name": "Suitcases"}, {"id": 902, "category_name": "Toys"}],
        ALL_TABLES - {"bronze/kafka_records", "silver/categories"},
        id="only-categories",
    ),
]


@pytest.mark.parametrize(("path", "records", "missing"), SENT_ALONE)
def test_a_lakehouse_of_one_resource_is_reported_partial_and_consistent(
    infrastructure: LocalStack, tmp_path: Path, path: str, records: list[dict], missing: set[str]
) -> None:
    with running_pipeline(infrastructure, tmp_path) as pipeline:
        assert httpx.post(f"{pipeline.settings.api_url}{path}", json=records, timeout=30).status_code == 201
        pipeline.wait_until_idle()
        pipeline.stack.process("job").stop()

        check = run_check(pipeline.stack)

    assert check.returncode == 0, failure(check)
    assert missing_in(check.stdout) == missing, failure(check)
    assert all_agree(check.stdout), failure(check)
