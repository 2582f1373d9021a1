"""Freshness (issue #9, target 1): from a POST's 201 to the product being readable in MongoDB and through
`GET /products/{asin}`, and how far gold is behind, beside the Kafka floor measured in the same run.

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.freshness [--seconds 60] [--rate 2]
        [--batch-seconds 20] [--batch-size 1000] [--drain 600] [--seed 11] [--designs job,speed-in-batch,speed]

Designs, one after the other in the same run (`--designs`, DESIGNS): `job`, the streaming job alone with gold
refreshed in every micro-batch (the design before the speed layer, the baseline); `speed-in-batch`, the speed layer
(speed_layer/consumer.py) beside that job; `speed`, the speed layer beside the job refreshing gold on a thread of
its own (GOLD_REFRESH=background, spark_jobs/gold_refresher.py; measured, and not the default). Each runs on the
local stack's Kafka broker and MongoDB server (started if they are not running, and then stopped again), with its
own topics, database and lakehouse; the API, the job (and the speed layer) are started, 248 categories and 2,000
products sent and waited for until gold has them (warm-up, not counted). Then two loads, one after the other, of
products not seen before:

- trickle: single `POST /products`, `--rate` per second for `--seconds`;
- batch: one `POST /products/batch` of `--batch-size` records per second for `--batch-seconds`.

Baseline, the Kafka floor: a read_committed confluent-kafka consumer (as the job reads) follows the product
topic from a thread and notes when each asin (the record's key) became readable from Kafka. Nothing
downstream can be fresher, so `Kafka -> MongoDB` is the share of the job (or the speed layer).

A reader polls every 50 ms: MongoDB for the posted asins not seen yet, `GET /products/{asin}` for the
trickle's once MongoDB has them (the API reads MongoDB, so its figure is MongoDB's plus the read), and
gold_summary's product count, which reaches a record's place in the posting order when gold includes it. A
record not seen within `--drain` seconds of the load's end counts as not seen; after that the bench waits for
the job's lag to reach 0.

Printed per design and load, in seconds from the 201 (time.monotonic after the response; the Kafka floor can be
slightly negative, as the record is readable before the client has read the response): p50, p99 and max to Kafka,
to MongoDB, to the API read and to gold, the job's micro-batches with their mean seconds per step (pipeline_events
`steps`), and the background gold refreshes with their mean seconds (the job's log). Targets (issue #9): MongoDB
and API read p50 <= 1 s and p99 <= 3 s; gold at most 15 s behind (its max)."""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.runs import infrastructure, run_settings
from dataset.generate import category_rows, product_rows
from lakehouse import catalog
from lakehouse.kafka_admin import librdkafka_log
from lakehouse.mongo import mongo_client, serving_db
from lakehouse.settings import Settings
from spark_jobs.progress import lag_per_topic
from stack.processes import Poller, wait_until
from stack.services import LocalStack

WARM_UP_PRODUCTS = 2_000
CATEGORIES = 248
POLL_SECONDS = 0.05
API_PORT = 18110
# A measured path -> its (p50, p99, max) targets in seconds (issue #9); None: no target.
TARGETS: dict[str, tuple[float | None, float | None, float | None]] = {
    "201 -> Kafka (floor)": (None, None, None),
    "201 -> MongoDB": (1.0, 3.0, None),
    "201 -> API read": (1.0, 3.0, None),
    "201 -> gold": (None, None, 15.0),
    "Kafka -> MongoDB": (None, None, None),
}


@dataclass
class Load:
    """One load's posted records (asin -> seconds on the monotonic clock) in posting order, and when each was
    first seen in Kafka, in MongoDB, through the API and in gold."""

    name: str
    through_api: bool
    design: str = "job"
    posted: dict[str, float] = field(default_factory=dict)
    in_kafka: dict[str, float] = field(default_factory=dict)
    in_mongo: dict[str, float] = field(default_factory=dict)
    in_api: dict[str, float] = field(default_factory=dict)
    in_gold: dict[str, float] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    steps: dict[str, float] = field(default_factory=dict)
    batches: int = 0
    gold_refreshes: list[float] = field(default_factory=list)  # seconds of each background refresh

    def delays(self, seen: dict[str, float]) -> list[float]:
        return sorted(seen[asin] - posted for asin, posted in self.posted.items() if asin in seen)

    def pipeline_share(self) -> list[float]:
        """Per record seen in both: seconds from readable in Kafka to readable in MongoDB."""
        return sorted(self.in_mongo[asin] - at for asin, at in self.in_kafka.items() if asin in self.in_mongo)

    def paths(self) -> dict[str, list[float]]:
        """Each measured path (a key of TARGETS) -> its sorted delays in seconds."""
        api = {"201 -> API read": self.delays(self.in_api)} if self.through_api else {}
        return (
            {"201 -> Kafka (floor)": self.delays(self.in_kafka), "201 -> MongoDB": self.delays(self.in_mongo)}
            | api
            | {"201 -> gold": self.delays(self.in_gold), "Kafka -> MongoDB": self.pipeline_share()}
        )


Sender = Callable[[Load], None]


class KafkaWatcher(Poller):
    """Follows the product topic with a read_committed consumer from a thread; `seen` is asin (the record's
    key) -> monotonic seconds when the record was first returned by the consumer."""

    def __init__(self, config: Settings) -> None:
        super().__init__(0.0)  # each poll waits up to POLL_SECONDS in the consumer
        self.topic = config.kafka_topic_products
        self.consumer = Consumer(
            {
                "bootstrap.servers": config.kafka_bootstrap_servers,
                "group.id": f"bench-freshness-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 20,
                "logger": librdkafka_log,
            }
        )
        self.seen: dict[str, float] = {}

    def __enter__(self) -> Self:
        partitions = self.consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        self.consumer.assign([TopicPartition(self.topic, number, OFFSET_BEGINNING) for number in partitions])
        return super().__enter__()

    def poll(self) -> None:
        for message in self.consumer.consume(num_messages=10_000, timeout=POLL_SECONDS):
            if message.error() is None and message.key() is not None:
                self.seen.setdefault(message.key().decode(), time.monotonic())

    def close(self) -> None:
        self.consumer.close()


class Reader(Poller):
    """Polls MongoDB, the API and gold every POLL_SECONDS for the posted records of `load`, from a thread."""

    def __init__(self, config: Settings, load: Load, gold_base: int) -> None:
        super().__init__(POLL_SECONDS)
        self.db = serving_db(config)
        self.http = httpx.Client(base_url=config.api_url, headers=api_headers(config), timeout=10)
        self.load = load
        self.gold_base = gold_base

    def close(self) -> None:
        self.http.close()
        self.db.client.close()

    def all_seen(self) -> bool:
        load = self.load
        return all(len(seen) == len(load.posted) for seen in (load.in_mongo, load.in_gold)) and (
            not load.through_api or len(load.in_api) == len(load.posted)
        )

    def poll(self) -> None:
        load, now = self.load, time.monotonic()
        posted = list(load.posted)
        pending = [asin for asin in posted if asin not in load.in_mongo]
        if pending:
            found = self.db[catalog.PRODUCTS.name].find({"_id": {"$in": pending}}, {"_id": 1})
            load.in_mongo.update((document["_id"], now) for document in found)
        if load.through_api:
            self.poll_api([asin for asin in posted if asin in load.in_mongo and asin not in load.in_api])
        summary = self.db[catalog.GOLD_SUMMARY.name].find_one() or {}
        in_gold = int(summary.get("products") or 0) - self.gold_base
        for asin in posted[:in_gold]:
            load.in_gold.setdefault(asin, now)

    def poll_api(self, asins: list[str]) -> None:
        for asin in asins:
            if self.http.get(f"/products/{asin}").status_code == 200:
                self.load.in_api[asin] = time.monotonic()


def api_headers(config: Settings) -> dict[str, str]:
    return {"X-API-Key": config.api_key} if config.api_key else {}


# A design -> (the speed layer runs beside the job, the job's GOLD_REFRESH).
DESIGNS: dict[str, tuple[bool, str]] = {
    "job": (False, "in-batch"),
    "speed-in-batch": (True, "in-batch"),
    "speed": (True, "background"),
}
GOLD_REFRESHED = re.compile(r"gold refreshed in ([0-9.]+)s")


@contextmanager
def running(config: Settings, design: str) -> Iterator[LocalStack]:
    """The API and the job (and the speed layer, in the designs that have it) on the bench's topics and
    database; afterwards all stopped, the database dropped and the lakehouse folder removed."""
    with_speed_layer, gold_refresh = DESIGNS[design]
    stack = LocalStack(config.model_copy(update=dict(gold_refresh=gold_refresh)), instance="freshness")
    stack.kafka.create_topics()
    try:
        stack.start_api()
        if with_speed_layer:
            stack.start_speed_layer()
        stack.start_job()
        yield stack
    finally:
        stack.stop_applications()
        mongo_client(config.mongo_uri).drop_database(config.mongo_db)
        assert config.lakehouse_path is not None
        shutil.rmtree(config.lakehouse_path.parent, ignore_errors=True)


def post(http: httpx.Client, path: str, body: Any) -> None:
    response = http.post(path, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")


def warm_up(stack: LocalStack, http: httpx.Client, products: list[dict[str, object]]) -> None:
    post(http, "/categories/batch", category_rows(CATEGORIES))
    post(http, "/products/batch", products)
    db = serving_db(stack.settings)

    def gold_has_all() -> bool:
        summary = db[catalog.GOLD_SUMMARY.name].find_one() or {}
        return summary.get("products") == len(products)

    assert wait_until(gold_has_all, 900, interval=1), stack.process("job").log_tail()


def trickle(http: httpx.Client, load: Load, rows: Iterator[dict[str, object]], rate: float, seconds: float) -> None:
    started = time.monotonic()
    for index in range(int(rate * seconds)):
        time.sleep(max(0.0, started + index / rate - time.monotonic()))
        row = next(rows)
        post(http, "/products", row)
        load.posted[str(row["asin"])] = time.monotonic()


def batches(http: httpx.Client, load: Load, rows: Iterator[dict[str, object]], size: int, seconds: float) -> None:
    started = time.monotonic()
    for index in range(int(seconds)):
        time.sleep(max(0.0, started + index - time.monotonic()))
        chunk = [next(rows) for _ in range(size)]
        post(http, "/products/batch", chunk)
        done = time.monotonic()
        load.posted.update((str(row["asin"]), done) for row in chunk)


def job_steps(config: Settings, load: Load) -> None:
    """The mean seconds per step of the stream's micro-batches that finished since the load started."""
    events = serving_db(config)[catalog.PIPELINE_EVENTS.name]
    found = list(events.find({"source": "stream", "at": {"$gte": load.started_at}}))
    load.batches = len(found)
    names = dict.fromkeys(name for event in found for name in event.get("steps", {}))  # the job's order
    load.steps = {name: statistics.fmean(e.get("steps", {}).get(name, 0.0) for e in found) for name in names}


def gold_refreshes(stack: LocalStack, load: Load, log_offset: int) -> None:
    """The seconds of each background gold refresh the job logged after `log_offset` (bytes of its log)."""
    with stack.process("job").log_file.open("rb") as log:
        log.seek(log_offset)
        load.gold_refreshes = [float(m) for m in GOLD_REFRESHED.findall(log.read().decode(errors="replace"))]


def log_size(stack: LocalStack) -> int:
    return stack.process("job").log_file.stat().st_size


def lag_is_zero(config: Settings) -> bool:
    return sum((lag_per_topic(config) or {"": 1}).values()) == 0


def measure(stack: LocalStack, watcher: KafkaWatcher, load: Load, send: Sender, gold_base: int, drain: float) -> None:
    """Sends the load with a Reader polling, waits for every record (at most `drain` seconds) and for lag 0,
    then takes the Kafka floor from the watcher, the job's steps from pipeline_events and its background gold
    refreshes from its log."""
    config = stack.settings
    load.started_at = datetime.now(UTC)
    log_offset = log_size(stack)
    with Reader(config, load, gold_base) as reader:
        send(load)
        wait_until(reader.all_seen, drain, interval=0.5)
    assert wait_until(lambda: lag_is_zero(config), drain), "the job's lag did not reach 0"
    load.in_kafka = {asin: watcher.seen[asin] for asin in load.posted if asin in watcher.seen}
    job_steps(config, load)
    gold_refreshes(stack, load, log_offset)


def run(args: argparse.Namespace, design: str) -> list[Load]:
    config = run_settings("freshness", API_PORT)
    wanted = WARM_UP_PRODUCTS + int(args.rate * args.seconds) + args.batch_size * int(args.batch_seconds)
    rows = product_rows(wanted, CATEGORIES, args.seed)
    sends: list[tuple[Load, Sender]] = []
    loads: list[Load] = []
    with (
        running(config, design) as stack,
        httpx.Client(base_url=config.api_url, headers=api_headers(config), timeout=60) as http,
    ):
        warm_up(stack, http, [next(rows) for _ in range(WARM_UP_PRODUCTS)])
        print(f"warm-up done ({WARM_UP_PRODUCTS:,} products in gold)", flush=True)
        sends.append((Load("trickle", True, design), lambda load: trickle(http, load, rows, args.rate, args.seconds)))
        sends.append(
            (Load("batch", False, design), lambda load: batches(http, load, rows, args.batch_size, args.batch_seconds))
        )
        with KafkaWatcher(config) as watcher:
            assert wait_until(lambda: len(watcher.seen) >= WARM_UP_PRODUCTS, 60), "the Kafka watcher read nothing"
            for load, send in sends:
                gold_base = WARM_UP_PRODUCTS + sum(len(done.posted) for done in loads)
                measure(stack, watcher, load, send, gold_base, args.drain)
                loads.append(load)
                print(describe(load), flush=True)
    return loads


def quantiles(delays: list[float]) -> tuple[float, float, float]:
    """p50, p99 (nearest rank) and max of sorted `delays`."""
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    return statistics.median(delays), p99, delays[-1]


def percentiles(delays: list[float], posted: int) -> str:
    if not delays:
        return "none seen"
    p50, p99, most = quantiles(delays)
    unseen = f", {posted - len(delays)} not seen" if len(delays) < posted else ""
    return f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {most:.2f} s{unseen}"


def describe(load: Load) -> str:
    posted = len(load.posted)
    lines = [f"{load.design}, {load.name} ({posted:,} records):"]
    for name, delays in load.paths().items():
        lines.append(f"  {name + ':':<24}{percentiles(delays, posted)}")
    steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in load.steps.items())
    lines.append(f"  job: {load.batches} micro-batches, mean seconds per step: {steps}")
    lines.append(f"  {refreshes(load)}")
    return "\n".join(lines)


def refreshes(load: Load) -> str:
    if not load.gold_refreshes:
        return "gold: refreshed in the micro-batches"
    return f"gold: {len(load.gold_refreshes)} background refreshes, mean {statistics.fmean(load.gold_refreshes):.2f} s"


def verdict(name: str, figures: tuple[float, float, float]) -> str:
    """'met', 'MISSED' or '-' against TARGETS[name]."""
    limits = [limit for limit in TARGETS[name] if limit is not None]
    if not limits:
        return "-"
    met = all(figure <= limit for figure, limit in zip(figures, TARGETS[name], strict=True) if limit is not None)
    return "met" if met else "MISSED"


def target_text(name: str) -> str:
    p50, p99, most = TARGETS[name]
    parts = [f"p50<={p50:g}" if p50 else "", f"p99<={p99:g}" if p99 else "", f"max<={most:g}" if most else ""]
    return " ".join(part for part in parts if part) or "-"


def summary_table(loads: list[Load]) -> str:
    columns = f"{'seen':>11} {'p50 s':>7} {'p99 s':>7} {'max s':>7}  {'target':<14} result"
    header = f"{'design':<14} {'load':<8} {'path':<23} {columns}"
    lines = [header, "-" * len(header)]
    for load in loads:
        for name, delays in load.paths().items():
            figures = quantiles(delays) if delays else (float("nan"),) * 3
            result = verdict(name, figures) if len(delays) == len(load.posted) else "MISSED (unseen)"
            numbers = " ".join(f"{figure:>7.2f}" for figure in figures)
            seen = f"{len(delays)}/{len(load.posted)}"
            lines.append(
                f"{load.design:<14} {load.name:<8} {name:<23} {seen:>11} {numbers}  {target_text(name):<14} {result}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="length of the trickle")
    parser.add_argument("--rate", type=float, default=2, help="single POSTs per second")
    parser.add_argument("--batch-seconds", type=float, default=20, help="length of the batch load")
    parser.add_argument("--batch-size", type=int, default=1_000, help="records per batch POST (one per second)")
    parser.add_argument("--drain", type=float, default=600, help="seconds to wait for the job after a load")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--designs",
        default=",".join(DESIGNS),
        help="job (the job alone, gold in each batch: the baseline), speed-in-batch (the speed layer beside it), "
        "speed (the speed layer, gold refreshed in the background)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with infrastructure("freshness"):
        loads = [load for design in args.designs.split(",") for load in run(args, design)]
    print(f"\nfreshness per design ({time.monotonic() - started:.0f} s wall time, warm-ups included)")
    print(summary_table(loads))
    for load in loads:
        steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in load.steps.items())
        print(f"{load.design}, {load.name}: {load.batches} micro-batches, mean s per step: {steps}; {refreshes(load)}")


if __name__ == "__main__":
    main()
