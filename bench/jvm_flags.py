"""What the driver JVM's flags and Spark's code-generation cache cost a fresh streaming job: micro-batches
through every step of the pipeline (`IngestPipeline.apply`, gold included), in a new JVM per run, each variant
compared with the defaults in the same run.

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.jvm_flags [--batches 6] [--rows 30] [--rounds 2]

A job the tests or a restart start is young: its first minutes run while the JIT compilers (C1, C2) and the
garbage collector compete with the batches for the cores (2 here). Each run: categories and `--rows`
products, then `--batches - 1` batches of `--rows` new versions of them, on empty tables in a lakehouse and
MongoDB database of its own, on the local stack's MongoDB server (started if it is not running). The
variants run in turn, `--rounds` times, so the machine's noise falls on all of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from pyspark.sql import DataFrame, SparkSession

from bench.batch_cost import kafka_batch
from bench.runs import infrastructure, run_settings
from dataset.generate import category_rows, price_updates, product_rows
from lakehouse.mongo import mongo_client
from lakehouse.settings import Settings
from spark_jobs.pipeline import IngestPipeline, Steps
from spark_jobs.session import build_spark
from stack.services import LocalStack

API_PORT = 18140  # not started: run_settings wants one
CATEGORIES = 248
SEED = 11
# name -> (driver JVM flags, Spark settings), each compared with the first.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "defaults": ("", {}),
    "C1 only": ("-XX:TieredStopAtLevel=1", {}),
    "C1 only, serial GC": ("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC", {}),
    # Spark's cache of generated classes (100 by default): a batch's many plans could evict each other's.
    "codegen cache 2000": ("", {"spark.sql.codegen.cache.maxEntries": "2000"}),
}


def batches(config: Settings, spark: SparkSession, count: int, rows: int) -> list[DataFrame]:
    categories = kafka_batch(spark, config, category_rows(CATEGORIES), config.kafka_topic_categories, "id")
    first = kafka_batch(spark, config, list(product_rows(rows, CATEGORIES, SEED)))
    later = [kafka_batch(spark, config, day) for day in price_updates(rows, CATEGORIES, SEED, rows, days=count - 1)]
    return [categories.unionByName(first), *later]


def compile_seconds(spark: SparkSession) -> tuple[int, float]:
    """Janino compilations so far in this JVM, and the seconds of those in the sample of Spark's CodegenMetrics
    timer (all of them up to its 1,028-entry reservoir)."""
    timer = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    snapshot = timer.getSnapshot()
    return timer.getCount(), sum(snapshot.getValues()) / 1000


def child(variant: str, count: int, rows: int) -> None:
    """One fresh JVM under VARIANTS[`variant`]: prints one JSON line, {"start": s, "batches": [s, ...],
    "steps": {step: s summed over the batches}, "compiles": [[Janino compilations, s] after each batch]}."""
    flags, conf = VARIANTS[variant]
    config = run_settings("jvm_flags", API_PORT)
    LocalStack(config, instance="jvm_flags").kafka.create_topics()  # the processed-product topic
    started = time.monotonic()
    for key, value in conf.items():  # before the JVM starts: some are static
        SparkSession.builder.config(key, value)
    spark = build_spark("bench-jvm-flags", config, extra_java_options=flags)
    result: dict[str, object] = {"start": time.monotonic() - started}
    pipeline = IngestPipeline.connect(spark, config)
    seconds, totals, compiles = [], {}, []
    try:
        for bronze in batches(config, spark, count, rows):
            steps: Steps = {}
            began = time.monotonic()
            pipeline.apply(bronze, steps)
            seconds.append(time.monotonic() - began)
            compiles.append(compile_seconds(spark))
            for name, value in steps.items():
                totals[name] = totals.get(name, 0.0) + value
    finally:
        spark.stop()
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)
        assert config.lakehouse_path is not None
        shutil.rmtree(config.lakehouse_path.parent, ignore_errors=True)
    print(json.dumps(result | {"batches": seconds, "steps": totals, "compiles": compiles}), flush=True)


def fresh_run(variant: str, count: int, rows: int) -> dict[str, object]:
    """`child` in a new process (so a new JVM); its JSON line."""
    command = [sys.executable, "-m", "bench.jvm_flags", f"--child={variant}", "--batches", str(count)]
    done = subprocess.run([*command, "--rows", str(rows)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{variant}: the run failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: dict[str, list[dict[str, object]]]) -> None:
    baseline = sum(sum(r["batches"]) for r in runs["defaults"]) / len(runs["defaults"])
    print("\nvariant: JVM start + session (s), each batch (s), all batches (s, mean of rounds), vs the defaults")
    for name, results in runs.items():
        total = sum(sum(r["batches"]) for r in results) / len(results)
        for r in results:
            batches = " ".join(f"{s:5.1f}" for s in r["batches"])
            print(f"  {name:20} start {r['start']:5.1f}  batches {batches}  = {sum(r['batches']):6.1f}")
            print(f"  {'':20} Janino compilations (count, s) after each batch: {r['compiles']}")
        print(f"  {name:20} mean of all batches {total:6.1f} s  ({total / baseline:.2f}x the defaults)")
    print("\nsteps, seconds summed over a run's batches (mean of rounds)")
    names = list(dict.fromkeys(k for results in runs.values() for r in results for k in r["steps"]))
    print("  " + " ".join(f"{n[:10]:>10}" for n in ["variant", *names]))
    for name, results in runs.items():
        means = [sum(r["steps"].get(n, 0.0) for r in results) / len(results) for n in names]
        print(f"  {name[:10]:>10} " + " ".join(f"{m:10.1f}" for m in means))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rows", type=int, default=30, help="products per batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", metavar="VARIANT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.batches, args.rows)
        return
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in VARIANTS}
    with infrastructure("jvm_flags"):
        for round_ in range(args.rounds):
            for name in VARIANTS:
                runs[name].append(fresh_run(name, args.batches, args.rows))
                print(f"round {round_ + 1}, {name}: {sum(runs[name][-1]['batches']):.1f} s", flush=True)
    report(runs)


if __name__ == "__main__":
    main()
