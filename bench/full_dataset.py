"""The full dataset (issue #9, targets 2 and 4): 1,400,000 generated products and 248 categories from the CSV
files through `client/api_client.py`, the API, Kafka, the speed layer and the streaming job to MongoDB.

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.full_dataset [--products 1400000] [--seed 7]
        [--budget 300] [--job-wait 0]

The files are generated once with a fixed seed (dataset/generate.py) into var/bench/full_dataset/data/, kept
for the next run. One run on the local stack's Kafka broker and MongoDB server (started if they are not
running, then stopped), with its own topics, database and lakehouse; the API, the speed layer and the job
are started, then the client sends both files, timed from its start:

- baseline, the Kafka floor: when the client has every record answered (201: durable in Kafka);
- when MongoDB serves every product (the speed layer, or the job, whichever wrote it);
- the job's lag (product records not yet in the lakehouse) at `--budget` seconds (the target's 5 minutes),
  and when it reached 0, if within `--job-wait` more seconds;
- the memory peak of every process of the stack (PSS; RSS summed beside it), sampled every 2 s.

Target 2 is "lag 0 and `make check` green within 5 minutes"; target 4 the whole stack under 6 GiB meanwhile.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.runs import BENCH_DIR, infrastructure, run_settings
from client import api_client
from dataset.generate import write_dataset
from lakehouse import catalog
from lakehouse.mongo import mongo_client, serving_db
from lakehouse.settings import Settings
from spark_jobs.progress import lag_per_topic
from stack.processes import Poller
from stack.services import LocalStack, MemorySampler

CATEGORIES = 248
API_PORT = 18120
DATA_FOLDER = BENCH_DIR / "full_dataset" / "data"


@dataclass
class Timeline:
    """Seconds from the client's start; None when it did not happen within the run."""

    client_done: float | None = None
    all_served: float | None = None
    job_lag_at_budget: int | None = None
    job_lag_zero: float | None = None
    served_at_budget: int = 0


class Watcher(Poller):
    """Every 2 s: how many products MongoDB serves, and the job's lag."""

    def __init__(self, config: Settings, expected: int, started: float) -> None:
        super().__init__(2.0)
        self.config = config
        self.products = serving_db(config)[catalog.PRODUCTS.name]
        self.expected = expected
        self.started = started
        self.served = 0
        self.job_lag: int | None = None
        self.timeline = Timeline()

    def poll(self) -> None:
        now = time.monotonic() - self.started
        self.served = self.products.estimated_document_count()
        if self.served >= self.expected and self.timeline.all_served is None:
            self.timeline.all_served = now
        lag = lag_per_topic(self.config)
        self.job_lag = None if lag is None else sum(lag.values())
        if self.job_lag == 0 and self.timeline.client_done is not None and self.timeline.job_lag_zero is None:
            self.timeline.job_lag_zero = now

    def close(self) -> None:
        self.products.database.client.close()


def dataset_files(products: int, seed: int) -> tuple[Path, Path]:
    folder = DATA_FOLDER / f"{products}-{seed}"
    files = folder / "amazon_products.csv", folder / "amazon_categories.csv"
    if not all(path.exists() for path in files):
        started = time.monotonic()
        write_dataset(folder, products, CATEGORIES, seed)
        print(f"generated {products:,} products in {time.monotonic() - started:.0f} s into {folder}", flush=True)
    return files


def progress(watcher: Watcher, label: str) -> None:
    now = time.monotonic() - watcher.started
    print(f"{now:6.0f} s {label}: {watcher.served:,} products served, job lag {watcher.job_lag}", flush=True)


def send_and_watch(stack: LocalStack, files: tuple[Path, Path], expected: int, args: argparse.Namespace) -> Timeline:
    config = stack.settings
    started = time.monotonic()
    with Watcher(config, expected, started) as watcher:
        summary = api_client.run(*files, config.api_url, config.api_key, show_progress=False)
        watcher.timeline.client_done = time.monotonic() - started
        progress(watcher, f"client done ({summary.sent:,} records, {len(summary.rejected)} rejected)")
        while time.monotonic() - started < args.budget:
            time.sleep(5)
            progress(watcher, "")
        watcher.timeline.job_lag_at_budget = watcher.job_lag
        watcher.timeline.served_at_budget = watcher.served
        deadline = time.monotonic() + args.job_wait
        while watcher.timeline.job_lag_zero is None and time.monotonic() < deadline:
            time.sleep(30)
            progress(watcher, "")
        return watcher.timeline


def run(args: argparse.Namespace) -> None:
    files = dataset_files(args.products, args.seed)
    config = run_settings("full_dataset", API_PORT)
    stack = LocalStack(config, instance="full")
    with infrastructure("full"):
        run_on(stack, files, args)


def run_on(stack: LocalStack, files: tuple[Path, Path], args: argparse.Namespace) -> None:
    config = stack.settings
    try:
        stack.kafka.create_topics()
        with MemorySampler(stack, interval=2.0) as memory:
            stack.up(["api", "speed", "job"])
            timeline = send_and_watch(stack, files, args.products, args)
        report(args, timeline, memory)
    finally:
        stack.stop_applications()
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)
        assert config.lakehouse_path is not None
        shutil.rmtree(config.lakehouse_path.parent, ignore_errors=True)


def shown(seconds: float | None) -> str:
    return "not within the run" if seconds is None else f"{seconds:.0f} s"


def report(args: argparse.Namespace, timeline: Timeline, memory: MemorySampler) -> None:
    floor = timeline.client_done
    ratio = f" ({timeline.all_served / floor:.2f}x the Kafka floor)" if floor and timeline.all_served else ""
    shares = ", ".join(f"{name} {pss / 2**20:.0f}" for name, pss in sorted(memory.peak_by_process.items()))
    print(
        f"\nfull dataset: {args.products:,} products + {CATEGORIES} categories, seconds from the client's start\n"
        f"  Kafka floor (every record answered 201):   {shown(floor)}\n"
        f"  MongoDB serves every product:              {shown(timeline.all_served)}{ratio}\n"
        f"  at {args.budget:.0f} s: {timeline.served_at_budget:,} products served, "
        f"job lag {timeline.job_lag_at_budget} product records (target 2: lag 0)\n"
        f"  job lag 0:                                 {shown(timeline.job_lag_zero)}\n"
        f"  memory peak: {memory.peak / 2**30:.2f} GiB PSS ({memory.peak_rss / 2**30:.2f} GiB RSS summed; "
        f"target 4: under 6 GiB); MiB per process: {shares}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=float, default=300, help="the target's wall time, seconds")
    parser.add_argument("--job-wait", type=float, default=0, help="seconds more to wait for the job's lag 0")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
