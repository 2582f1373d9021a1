"""The CSV backfill's slices: each one copied locally (`backfill.local_copy`) beside the design before it (each
one persisted), in one run (issue #9, target 2).

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.backfill_slices [--products 200000] [--slices 8]
        [--rounds 1]

Both designs run `spark_jobs.backfill`'s own code (`csv_bronze`, then `run` in `--slices` slices, with bronze
written) in this process's Spark session, on the files bench/full_dataset.py generates, each into a
lakehouse, MongoDB database and processed-product topic of its own, on the local stack's Kafka and MongoDB
(started if they are not running). A small untimed backfill warms the JVM first; then the designs alternate
(before, now, now, before, ...).

Why it matters: Delta's MERGE plans its source again from its origin and does not read a persisted DataFrame
(delta-io/delta#2011), so with persisted slices silver's MERGE and the price history's each read the whole CSV
again; the longer the file, the longer every slice.
"""

from __future__ import annotations

import argparse
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession

from bench.batch_cost import slice_steps
from bench.full_dataset import dataset_files
from bench.runs import infrastructure, run_settings
from lakehouse.mongo import mongo_client
from lakehouse.settings import Settings
from spark_jobs import backfill
from spark_jobs.pipeline import IngestPipeline
from spark_jobs.session import build_spark
from stack.services import LocalStack

API_PORT = 18140  # not started: run_settings wants one
SEED = 7


@contextmanager
def persisted(rows: DataFrame) -> Iterator[DataFrame]:
    """The design before `backfill.local_copy`: the slice persisted, and unpersisted after it."""
    copy = rows.persist()
    try:
        yield copy
    finally:
        copy.unpersist()


DESIGNS: dict[str, backfill.CopySlice] = {"persisted (before)": persisted, "local copy (now)": backfill.local_copy}


def timed_backfill(
    spark: SparkSession, products: int, slices: int, copy_slice: backfill.CopySlice
) -> tuple[float, Settings]:
    """The CSV backfill of the generated `products` in `slices` slices into a lakehouse and database of its own;
    returns its seconds and its settings (whose database holds its slices' events)."""
    config = run_settings("backfill_slices", API_PORT)
    LocalStack(config, instance="backfill_slices").kafka.create_topics()  # the processed-product topic
    files = tuple(str(path) for path in dataset_files(products, SEED))
    pipeline = IngestPipeline.connect(spark, config)
    started = time.monotonic()
    bronze = backfill.csv_bronze(spark, config, *files)
    backfill.run(pipeline, bronze, math.ceil(products / slices), write_bronze=True, copy_slice=copy_slice)
    return time.monotonic() - started, config


def drop(config: Settings) -> None:
    mongo_client(config.mongo_uri).drop_database(config.mongo_db)
    assert config.lakehouse_path is not None
    shutil.rmtree(config.lakehouse_path.parent, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    spark = build_spark("bench-backfill-slices", run_settings("backfill_slices", API_PORT))
    try:
        warm_up, config = timed_backfill(spark, 2_000, 2, backfill.local_copy)
        drop(config)
        print(f"warm-up backfill of 2,000 products: {warm_up:.1f} s", flush=True)
        order = [
            name
            for round_ in range(args.rounds)
            for name in (list(DESIGNS) if round_ % 2 == 0 else list(DESIGNS)[::-1])
        ]
        totals: dict[str, list[float]] = {name: [] for name in DESIGNS}
        for name in order:
            seconds, config = timed_backfill(spark, args.products, args.slices, DESIGNS[name])
            totals[name].append(seconds)
            print(f"\n{name}: {args.products:,} products in {seconds:.1f} s", flush=True)
            print("\n".join(slice_steps(config)), flush=True)
            drop(config)
    finally:
        spark.stop()
    before, now = (min(totals[name]) for name in DESIGNS)
    print(f"\nbest of {args.rounds}: persisted {before:.1f} s, local copy {now:.1f} s = {before / now:.1f}x faster")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=200_000)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each design, alternating")
    args = parser.parse_args(argv)
    with infrastructure("backfill_slices"):
        run(args)


if __name__ == "__main__":
    main()
