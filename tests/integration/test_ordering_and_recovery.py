"""Ordering and recovery under what operators do to Kafka (issue #10): partitions added, a topic deleted and
created again, the job's checkpoint deleted. The newest record of a key wins after each, and nothing read
is missing from bronze."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions
from pyspark.sql import SparkSession

from lakehouse.kafka_admin import KafkaAdmin
from spark_jobs import backfill, supervisor
from spark_jobs.consistency import run_checks
from spark_jobs.pipeline import IngestPipeline
from stack.processes import wait_until
from stack.services import LocalStack
from tests.integration.conftest import Pipeline, running_pipeline

pytestmark = pytest.mark.integration


def product(asin: str, price: float) -> dict:
    return {"asin": asin, "title": f"title {asin}", "stars": 4.0, "reviews": 1, "category_id": 1, "price": price}


def asins(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{index:04d}" for index in range(count)]


def post_products(pipeline: Pipeline, products: list[dict]) -> None:
    response = httpx.post(f"{pipeline.settings.api_url}/products/batch", json=products, timeout=30)
    assert response.status_code == 201, response.text


def served_prices(pipeline: Pipeline, keys: list[str]) -> dict[str, float]:
    return {d["_id"]: d["price"] for d in pipeline.db.products.find({"_id": {"$in": keys}}, {"price": 1})}


def wait_for_prices(pipeline: Pipeline, expected: dict[str, float], timeout: float = 300) -> None:
    def served() -> bool:
        pipeline.fail_if_job_died()
        return served_prices(pipeline, list(expected)) == expected

    assert wait_until(served, timeout, interval=1.0), (
        f"served {served_prices(pipeline, list(expected))}\n{pipeline.stack.process('job').log_tail()}"
    )


def admin(pipeline: Pipeline) -> AdminClient:
    return AdminClient({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers})


def test_updates_after_partitions_are_added_win_for_keyed_and_unkeyed_producers(pipeline: Pipeline) -> None:
    keys = asins("B0PART", 12)
    topic = pipeline.settings.kafka_topic_products
    post_products(pipeline, [product(asin, 10.0) for asin in keys])
    wait_for_prices(pipeline, dict.fromkeys(keys, 10.0))

    client = admin(pipeline)  # kept: librdkafka cancels a collected client's requests
    client.create_partitions([NewPartitions(topic, 6)])[topic].result(30)
    # A keyed producer (the API): keys that now hash to another partition land at lower offsets there.
    post_products(pipeline, [product(asin, 20.0) for asin in keys])
    wait_for_prices(pipeline, dict.fromkeys(keys, 20.0))

    # An unkeyed producer spreading one key's updates over every partition.
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap_servers, "acks": "all"})
    for index, asin in enumerate(keys):
        producer.produce(topic, json.dumps(product(asin, 30.0)).encode(), partition=(index * 5) % 6)
    producer.flush(30)
    wait_for_prices(pipeline, dict.fromkeys(keys, 30.0))


def recreate_topic(pipeline: Pipeline, topic: str) -> None:
    client = admin(pipeline)
    client.delete_topics([topic])[topic].result(30)
    kafka = KafkaAdmin(pipeline.settings.kafka_bootstrap_servers)
    assert wait_until(lambda: topic not in kafka.topic_names(), 60, interval=0.5)
    # The stack's own topic creation, as `make up` would do it again.
    assert wait_until(lambda: _created(pipeline), 60, interval=1.0)


def _created(pipeline: Pipeline) -> bool:
    try:
        pipeline.stack.kafka.create_topics()
    except Exception:  # the deletion may still be completing on the broker
        return False
    return True


def wait_for_job_exit(pipeline: Pipeline, timeout: float = 300) -> str:
    job = pipeline.stack.process("job")
    assert wait_until(lambda: not job.is_running(), timeout, interval=1.0), job.log_tail()
    return job.log_file.read_text()


def test_a_topic_deleted_and_created_again_stops_the_job_and_after_a_reset_the_newest_wins(
    pipeline: Pipeline,
) -> None:
    topic = pipeline.settings.kafka_topic_products
    post_products(pipeline, [product("B0RECREATE", 10.0)])
    wait_for_prices(pipeline, {"B0RECREATE": 10.0})

    recreate_topic(pipeline, topic)
    post_products(pipeline, [product("B0RECREATE", 20.0), product("B0NEWTOPIC", 5.0)])
    log = wait_for_job_exit(pipeline)
    # Spark notices offsets that went back, or the topic guard a new topic id: either way the topic is named.
    assert topic in log.split("query failed (deterministic)", 1)[-1]
    status = supervisor.read_status(pipeline.settings)
    assert status is not None and (status["state"], status["command"]) == (
        "stopped",
        "make reset-checkpoint && make up",
    )
    assert served_prices(pipeline, ["B0RECREATE"]) == {"B0RECREATE": 10.0}

    assert supervisor.main(["reset-checkpoint"], config=pipeline.settings) == 0  # what `make reset-checkpoint` runs
    pipeline.stack.start_job()
    wait_for_prices(pipeline, {"B0RECREATE": 20.0, "B0NEWTOPIC": 5.0})


def test_a_topic_stamped_by_producers_is_refused_with_the_command_that_fixes_it(
    infrastructure: LocalStack, tmp_path: Path
) -> None:
    from confluent_kafka.admin import NewTopic

    with running_pipeline(infrastructure, tmp_path, start_job=False) as pipeline:
        topic = pipeline.settings.kafka_topic_products
        client = admin(pipeline)
        client.delete_topics([topic])[topic].result(30)
        kafka = KafkaAdmin(pipeline.settings.kafka_bootstrap_servers)
        assert wait_until(lambda: topic not in kafka.topic_names(), 60, interval=0.5)
        created = NewTopic(topic, 3, 1, config={"message.timestamp.type": "CreateTime"})
        assert wait_until(lambda: kafka.create_topics([created]) == [topic], 60, interval=1.0)
        pipeline.stack.start_job()
        log = wait_for_job_exit(pipeline)
        assert f"topic {topic} has message.timestamp.type=CreateTime" in log
        assert f"--entity-name {topic} --add-config message.timestamp.type=LogAppendTime" in log


def bronze_asins(spark: SparkSession, pipeline: Pipeline) -> list[str]:
    bronze = spark.read.format("delta").load(str(pipeline.settings.lakehouse_dir / "bronze" / "kafka_records"))
    products = bronze.where(bronze["_topic"] == pipeline.settings.kafka_topic_products)
    return sorted(row["key"] for row in products.select("key").collect())


def test_a_deleted_checkpoint_reads_everything_again_and_skips_no_write(
    spark: SparkSession, pipeline: Pipeline, tmp_path: Path
) -> None:
    first, later = asins("B0FRST", 3), asins("B0LATR", 3)
    post_products(pipeline, [product(asin, 1.0) for asin in first])
    wait_for_prices(pipeline, dict.fromkeys(first, 1.0))
    pipeline.wait_until_idle()  # the batch is committed: its event is logged

    pipeline.stack.process("job").stop()
    shutil.rmtree(pipeline.settings.checkpoint_dir / "ingest")
    post_products(pipeline, [product(asin, 2.0) for asin in later])
    pipeline.stack.start_job()
    wait_for_prices(pipeline, dict.fromkeys(first, 1.0) | dict.fromkeys(later, 2.0))
    pipeline.wait_until_idle()

    # Everything read is in bronze: the first records twice (read by both checkpoints), the later ones once.
    assert bronze_asins(spark, pipeline) == sorted(first * 2 + later)
    events = spark.read.format("delta").load(str(pipeline.settings.lakehouse_dir / "events" / "pipeline_events"))
    logged = [json.loads(row["offsets"]) for row in events.where("source = 'stream'").collect()]
    topic = pipeline.settings.kafka_topic_products
    assert sum(ranges[2] for batch in logged for key, ranges in batch.items() if key.startswith(topic)) == 9

    # `make check` agrees: the records in bronze twice were read by two checkpoints, not replayed twice.
    assert [check.line() for check in run_checks(spark, pipeline.settings) if not check.ok] == []

    # A rebuild from that bronze keeps every product.
    pipeline.stack.process("job").stop()
    ingest = IngestPipeline.connect(spark, pipeline.settings)
    backfill.reset_derived(ingest)
    bronze = spark.read.format("delta").load(ingest.tables.bronze)
    backfill.run(ingest, bronze, slice_rows=1000, write_bronze=False)
    assert served_prices(pipeline, first + later) == dict.fromkeys(first, 1.0) | dict.fromkeys(later, 2.0)
