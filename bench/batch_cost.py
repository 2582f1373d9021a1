"""The CSV backfill of the full dataset and the cost of a micro-batch at its size (issue #9, targets 2 and 3).

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.batch_cost [--products 1400000] [--seed 7]
        [--batch 1000] [--backfill-budget 3600]

On the local stack's Kafka broker and MongoDB server (started if they are not running, then stopped), with
this run's own topics, databases and lakehouses, and the files bench/full_dataset.py generates (the same
seed, the same files):

1. Baseline, empty tables: `--batch` products through the pipeline's steps (`IngestPipeline.apply`, what the
   streaming job runs on a micro-batch), then `--batch` new versions of them (dataset/generate.py's
   re-pricings). The first batch creates the tables and warms the JVM; the second is the baseline.
2. The CSV backfill, as a user runs it (`python -m spark_jobs.backfill --from-csv PRODUCTS CATEGORIES`),
   timed from its start to its exit, stopped at `--backfill-budget` seconds. Target 2: 5 minutes.
3. On the lakehouse and MongoDB the backfill filled (all of the file, or the slices it committed within its
   budget: both sizes are printed), two `--batch`-row micro-batches of new versions of products silver
   holds, spread over the file: the first warms up (and writes gold, when a stopped backfill had not), the
   second is timed, each step's seconds beside the baseline's. Target 3, at 1.4M products: at most 2x.
   Both timed batches are updates of stored products, on tables gold was already written to.

Every batch's rows are Kafka-shaped (topic, partition 0, offsets from 0, the broker time now), so their
versions are newer than the backfill's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession

from bench.full_dataset import CATEGORIES, dataset_files
from bench.runs import infrastructure, run_settings
from dataset.generate import price_updates, product_rows
from lakehouse import catalog
from lakehouse.mongo import mongo_client, serving_db
from lakehouse.settings import PROJECT_ROOT, Settings
from spark_jobs import lake, transforms
from spark_jobs.pipeline import IngestPipeline, Steps
from spark_jobs.session import build_spark
from stack.services import LocalStack

API_PORT = 18130  # not started: run_settings wants one
KAFKA_SOURCE_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"


def kafka_batch(
    spark: SparkSession, config: Settings, rows: Sequence[dict[str, object]], topic: str = "", key: str = "asin"
) -> DataFrame:
    """Rows -> bronze rows of `topic` (the product topic unless given), keyed by their `key` field, as the
    streaming job would read them now."""
    now = datetime.now(UTC)
    records = [
        (topic or config.kafka_topic_products, 0, offset, now, str(row[key]).encode(), json.dumps(row).encode())
        for offset, row in enumerate(rows)
    ]
    return transforms.to_bronze(spark.createDataFrame(records, KAFKA_SOURCE_SCHEMA))


def timed_batch(pipeline: IngestPipeline, rows: Sequence[dict[str, object]]) -> tuple[float, Steps]:
    """One micro-batch of `rows` through every step; returns its seconds and each step's."""
    steps: Steps = {}
    started = time.monotonic()
    pipeline.apply(kafka_batch(pipeline.spark, pipeline.config, rows), steps)
    return time.monotonic() - started, steps


def baseline(spark: SparkSession, config: Settings, batch: int, seed: int) -> tuple[float, Steps]:
    """Phase 1: the second of two `batch`-row micro-batches on empty tables."""
    first = list(product_rows(batch, CATEGORIES, seed))
    [updates] = price_updates(batch, CATEGORIES, seed, batch, days=1)
    pipeline = IngestPipeline.connect(spark, config)
    warm_up, _ = timed_batch(pipeline, first)
    print(f"empty tables, first batch (creates the tables, warms up): {warm_up:.1f} s", flush=True)
    return timed_batch(pipeline, updates)


def backfill(stack: LocalStack, files: tuple[str, str], budget: float) -> float | None:
    """Phase 2: the CSV backfill's seconds, None when it ran past `budget`: then it is stopped with its
    Spark JVM (its own process group), and its last slice may be half-written (silver but not MongoDB)."""
    command = [sys.executable, "-m", "spark_jobs.backfill", "--from-csv", *files]
    started = time.monotonic()
    process = subprocess.Popen(command, env=stack.env, cwd=PROJECT_ROOT, start_new_session=True)
    try:
        code = process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        stop_group(process)
        return None
    if code != 0:
        raise SystemExit(f"the backfill failed with exit code {code}")
    return time.monotonic() - started


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group (the backfill and its Spark JVM), SIGKILL to what is left after 60 s;
    returns once the group is gone."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while group_alive(process) and time.monotonic() < deadline:
        time.sleep(1)
    if group_alive(process):
        with contextlib.suppress(ProcessLookupError):  # gone since
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reaps the leader once it exited
    return subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True).returncode == 0


def stored_updates(spark: SparkSession, silver: str, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows of `rows` whose product silver holds (at `silver`), in their order."""
    asins = spark.createDataFrame([(row["asin"],) for row in rows], "asin string")
    silver_asins = lake.read_or_empty(spark, silver, "asin string").select("asin")
    stored = {r["asin"] for r in asins.join(silver_asins, "asin", "left_semi").collect()}
    return [row for row in rows if row["asin"] in stored]


def at_size(pipeline: IngestPipeline, args: argparse.Namespace) -> tuple[float, Steps]:
    """Phase 3: the second of two `--batch`-row micro-batches of stored products' new versions."""
    candidates = min(args.products, args.batch * 20)  # a stopped backfill holds a share of the file
    [updates] = price_updates(args.products, CATEGORIES, args.seed, candidates, days=1)
    stored = stored_updates(pipeline.spark, pipeline.tables.silver_products, updates)
    if len(stored) < 2 * args.batch:
        raise SystemExit(f"only {len(stored)} of {candidates} re-priced products are in silver")
    warm_up, _ = timed_batch(pipeline, stored[: args.batch])
    print(f"at size, first batch (warms up): {warm_up:.1f} s", flush=True)
    return timed_batch(pipeline, stored[args.batch : 2 * args.batch])


def slice_steps(config: Settings) -> list[str]:
    """The backfill's slices as pipeline_events logged them: rows and each step's seconds."""
    events = serving_db(config)[catalog.PIPELINE_EVENTS.name].find({"source": "backfill"}).sort("batch_id", 1)
    return [
        f"  slice {e['batch_id']}: {e['input_rows']:,} rows in {e['seconds']:.0f} s, {steps(e['steps'])}"
        for e in events
    ]


def steps(seconds: Steps) -> str:
    return ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())


def report(empty: tuple[float, Steps], full: tuple[float, Steps], products: int, batch: int) -> None:
    """The two batches' steps side by side; `products`: silver's size under the second."""
    (empty_total, empty_steps), (full_total, full_steps) = empty, full
    print(f"\n{batch:,}-row micro-batch, seconds per step: empty tables (baseline) vs {products:,} products in silver")
    for name in dict.fromkeys([*empty_steps, *full_steps]):
        before, after = empty_steps.get(name, 0.0), full_steps.get(name, 0.0)
        ratio = f"{after / before:5.1f}x" if before else "     -"
        print(f"  {name:12} {before:7.2f} {after:8.2f}  {ratio}")
    print(f"  {'total':12} {empty_total:7.2f} {full_total:8.2f}  {full_total / empty_total:5.1f}x (target 3: 2x)")


def run(args: argparse.Namespace) -> None:
    files = tuple(str(path) for path in dataset_files(args.products, args.seed))
    empty_config = run_settings("batch_cost", API_PORT)
    full_config = run_settings("batch_cost", API_PORT)
    stack = LocalStack(full_config, instance="batch_cost")
    for config in (empty_config, full_config):
        LocalStack(config, instance="batch_cost").kafka.create_topics()
    spark = build_spark("bench-batch-cost", empty_config)
    try:
        empty = baseline(spark, empty_config, args.batch, args.seed)
        print(f"empty tables, baseline batch: {empty[0]:.1f} s", flush=True)
        seconds = backfill(stack, files, args.backfill_budget)
        shown = "not done" if seconds is None else f"{seconds:.0f} s"
        print(f"\nCSV backfill of {args.products:,} products + {CATEGORIES} categories: {shown} (target 2: 300 s)")
        print("\n".join(slice_steps(full_config)), flush=True)
        pipeline = IngestPipeline.connect(spark, full_config)
        held = lake.read_or_empty(spark, pipeline.tables.silver_products, "asin string").count()
        served = serving_db(full_config)[catalog.PRODUCTS.name].estimated_document_count()
        print(f"the backfill left {held:,} products in silver, {served:,} in MongoDB", flush=True)
        report(empty, at_size(pipeline, args), held, args.batch)
    finally:
        spark.stop()
        for config in (empty_config, full_config):
            mongo_client(config.mongo_uri).drop_database(config.mongo_db)
            assert config.lakehouse_path is not None
            shutil.rmtree(config.lakehouse_path.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=1_000, help="rows per micro-batch")
    parser.add_argument("--backfill-budget", type=float, default=3_600, help="seconds before the backfill is stopped")
    args = parser.parse_args(argv)
    with infrastructure("batch_cost"):
        run(args)


if __name__ == "__main__":
    main()
