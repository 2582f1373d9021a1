"""The job supervisor on the real stack (issue #10): records deleted from Kafka while the job was stopped make
the restarted job stop by itself at once (no restarts), naming the topic, partitions and offsets it cannot
read and the setting that goes on without them, in its log, in `python -m stack status` and in MongoDB.
Started once with STREAM_FAIL_ON_DATA_LOSS=false, it skips them and serves what comes next."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from lakehouse.kafka_admin import KafkaAdmin
from lakehouse.serving import supervisor_status
from lakehouse.settings import PROJECT_ROOT, settings_env
from spark_jobs.progress import committed_offsets
from stack.processes import wait_until
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, running_pipeline

pytestmark = pytest.mark.integration

JOB_EXIT_TIMEOUT_S = 600


def product(asin: str) -> dict:
    return {"asin": asin, "title": f"title {asin}", "stars": 4.0, "reviews": 1, "category_id": 1, "price": 9.5}


def post_products(pipeline: Pipeline, asins: list[str]) -> None:
    response = httpx.post(f"{pipeline.settings.api_url}/products/batch", json=[product(a) for a in asins], timeout=30)
    assert response.status_code == 201, response.text


def delete_every_record(pipeline: Pipeline, topic: str) -> dict[int, int]:
    """Delete-records up to each partition's end; returns partition -> that end."""
    ends = KafkaAdmin(pipeline.settings.kafka_bootstrap_servers).end_offsets([topic])
    client = AdminClient({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers})
    futures = client.delete_records([TopicPartition(t, p, end) for (t, p), end in ends.items()], request_timeout=30)
    for future in futures.values():
        future.result(30)
    return {partition: end for (_, partition), end in ends.items()}


def run_job_to_its_end(pipeline: Pipeline, log_file: Path) -> int:
    """The streaming job in the foreground, as `make up` starts it; its exit code (killed after a bound)."""
    with log_file.open("wb") as log:
        job = subprocess.Popen(
            [sys.executable, "-m", "spark_jobs.streaming_job"],
            env={**os.environ, **pipeline.stack.env},
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return job.wait(JOB_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
            pytest.fail(f"the job did not stop by itself:\n{log_file.read_text()[-5000:]}")


def expected_ranges(topic: str, starts: dict[str, int], ends: dict[int, int]) -> str:
    parts = [
        f"partition {p} offsets {starts[str(p)]}-{end - 1}" for p, end in sorted(ends.items()) if end > starts[str(p)]
    ]
    return f"{topic} {', '.join(parts)}"


def test_records_deleted_from_kafka_stop_the_job_until_it_is_told_to_skip_them(
    infrastructure: LocalStack, tmp_path: Path
) -> None:
    with running_pipeline(infrastructure, tmp_path) as pipeline:
        topic = pipeline.settings.kafka_topic_products
        first = [f"B0SUP{i:05d}" for i in range(5)]
        post_products(pipeline, first)
        pipeline.wait_for_products(5)
        pipeline.wait_until_idle()
        assert pipeline.stack.process("job").stop()
        read_up_to = committed_offsets(pipeline.settings.checkpoint_dir / "ingest")[topic]  # type: ignore[index]

        post_products(pipeline, [f"B0LOST{i:04d}" for i in range(5)])
        ends = delete_every_record(pipeline, topic)
        lost = expected_ranges(topic, read_up_to, ends)

        log_file = tmp_path / "job.log"
        assert run_job_to_its_end(pipeline, log_file) == 1
        log = log_file.read_text()
        failures = [line for line in log.splitlines() if "query failed (" in line]
        assert len(failures) == 1, log[-5000:]
        cause = failures[0].split("query failed (deterministic): ", 1)[1]
        assert cause.startswith("org.apache.spark.sql.kafka010.KafkaIllegalStateException: Some data may have been")
        assert re.search(
            rf"Reason: Could not read records in offset \[\d+, \d+\) for topic partition {topic}-\d", cause
        )
        [stopped] = [line.split(" stopped: ", 1)[1] for line in log.splitlines() if " stopped: " in line]
        assert "Records the job has not read are gone from Kafka (retention or deleted records): batch " in stopped
        assert lost in stopped
        assert "start the job once with STREAM_FAIL_ON_DATA_LOSS=false" in stopped

        document = supervisor_status(pipeline.db)
        assert (document["state"], document["kind"], document["message"]) == ("stopped", "deterministic", stopped)
        assert document["command"] == "STREAM_FAIL_ON_DATA_LOSS=false make up"
        assert document["restarts"] == 0
        assert {
            (r["topic"], r["partition"], r["start"], r["end"]) for r in document["ranges"] if r["topic"] == topic
        } == {(topic, partition, read_up_to[str(partition)], end) for partition, end in ends.items()}

        status = subprocess.run(
            [sys.executable, "-m", "stack", "status"],
            env={**os.environ, **settings_env(pipeline.settings)},
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "job supervisor: stopped (deterministic)" in status.stdout, status.stdout + status.stderr
        assert f"  {stopped}\n" in status.stdout
        assert "  command: STREAM_FAIL_ON_DATA_LOSS=false make up\n" in status.stdout

        skipping = LocalStack(
            pipeline.settings.model_copy(update={"stream_fail_on_data_loss": False}), instance=pipeline.stack.instance
        )
        skipping.start_job()
        assert wait_until(lambda: supervisor_status(pipeline.db).get("state") == "running", 300, interval=1.0)
        [warning] = supervisor_status(pipeline.db)["warnings"]
        assert warning.startswith("STREAM_FAIL_ON_DATA_LOSS=false: records gone from Kafka")

        after = [f"B0AFTER{i:03d}" for i in range(3)]
        post_products(pipeline, after)
        pipeline.wait_for_products(8)
        pipeline.wait_until_idle()
        assert sorted(d["_id"] for d in pipeline.db.products.find({}, {"_id": 1})) == sorted(first + after)
        assert "WARNING spark_jobs.supervisor: STREAM_FAIL_ON_DATA_LOSS=false" in pipeline.stack.process(
            "job"
        ).log_tail(400)
