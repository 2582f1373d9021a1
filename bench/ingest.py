"""Ingest figures against the real local Kafka, each beside its baseline in the same run.

    .venv/bin/python -m bench.ingest            (make bench runs it)

(a) single-record POSTs/s at a fixed client concurrency, (b) records/s through the batch endpoint, both
for api_ingest and for bench/baseline_api.py (a new KafkaProducer and a flush per request, as the
original project did), with the ratios; (c) raw producer libraries, kafka-python against confluent-kafka,
on the same records; (d) `client/api_client.py` over N generated products: records/s and the peak
memory of the client and the API.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import httpx

from bench.runs import BENCH_DIR, run_settings
from client.transformer import Record, read_products
from dataset.generate import write_dataset
from lakehouse.settings import PROJECT_ROOT, Settings
from stack.processes import Poller, ServiceProcess, wait_until
from stack.services import LocalStack, process_tree_rss

API_PORT, BASELINE_PORT = 18100, 18101


@dataclass(frozen=True)
class Rate:
    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    def __str__(self) -> str:
        return f"{self.per_second:,.0f} records/s ({self.records:,} in {self.seconds:.2f}s)"


@contextmanager
def api_process(stack: LocalStack, app: str, port: int) -> Iterator[ServiceProcess]:
    process = stack.process(f"bench-{port}")
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--no-access-log", "--log-level", "warning"]
    process.start(command, env=stack.env, cwd=PROJECT_ROOT)
    try:
        if not wait_until(lambda: _up(port), 60):
            raise RuntimeError(process.log_tail())
        yield process
    finally:
        process.stop()


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def single_posts(port: int, records: Sequence[Record], concurrency: int) -> Rate:
    """One POST per record, `concurrency` in flight."""
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:

        def post(record: Record) -> None:
            http.post("/products", json=record.data).raise_for_status()

        return _timed(len(records), lambda: _run_all(post, records, concurrency))


def batch_posts(port: int, records: Sequence[Record], batch_size: int, concurrency: int) -> Rate:
    """Bodies encoded before the clock starts: this measures the API, not the client's JSON encoding."""
    bodies = [
        json.dumps([r.data for r in records[i : i + batch_size]]).encode() for i in range(0, len(records), batch_size)
    ]
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:

        def post(body: bytes) -> None:
            http.post("/products/batch", content=body, headers=headers).raise_for_status()

        return _timed(len(records), lambda: _run_all(post, bodies, concurrency))


def _run_all(post: Callable, items: Sequence, concurrency: int) -> None:
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, items))


def _timed(records: int, work: Callable[[], None]) -> Rate:
    started = time.perf_counter()
    work()
    return Rate(records, time.perf_counter() - started)


def kafka_python_rate(config: Settings, values: Sequence[tuple[bytes, bytes]]) -> Rate:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=config.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        linger_ms=5,
        batch_size=256 * 1024,
    )

    def produce() -> None:
        futures = [producer.send(config.kafka_topic_products, key=k, value=v) for k, v in values]
        producer.flush()
        for future in futures:
            future.get()

    rate = _timed(len(values), produce)
    producer.close()
    return rate


def confluent_rate(config: Settings, values: Sequence[tuple[bytes, bytes]]) -> Rate:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": config.kafka_bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": 5,
        }
    )

    def produce() -> None:
        for key, value in values:
            while True:
                try:
                    producer.produce(config.kafka_topic_products, value=value, key=key)
                    break
                except BufferError:
                    producer.poll(0.01)
        if producer.flush(60) != 0:
            raise RuntimeError("confluent-kafka did not deliver everything")

    return _timed(len(values), produce)


class PeakMemory(Poller):
    """Peak resident memory of some process trees, sampled every 0.2 s."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(0.2)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)

    def poll(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], process_tree_rss(pid))


def client_run(config: Settings, data: tuple[Path, Path], api_pid: int) -> None:
    command = [sys.executable, "client/api_client.py", "--no-progress", "--restart"]
    command += ["--products", str(data[0]), "--categories", str(data[1]), "--api-url", config.api_url]
    started = time.perf_counter()
    client = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    with PeakMemory({"client": client.pid, "API": api_pid}) as memory:
        output, _ = client.communicate()
        seconds = time.perf_counter() - started
    peak = memory.peak
    if client.returncode != 0:
        raise RuntimeError(f"the client failed: {output}")
    print(f"(d) {output.strip()}  [wall {seconds:.1f}s including start-up]")
    print(f"    peak memory: client {peak['client'] / 2**20:,.0f} MiB, API {peak['API'] / 2**20:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16, help="client threads for single POSTs")
    args = parser.parse_args()

    config = run_settings("ingest", API_PORT)
    stack = LocalStack(config, instance="bench")
    stack.kafka.start()
    data = write_dataset(BENCH_DIR / "data", args.products, 248, seed=7)
    records = [row for row in islice(read_products(data[0]), args.products) if isinstance(row, Record)]
    keyed = [(r.data["asin"].encode(), json.dumps(r.data).encode()) for r in records[:50_000]]

    with api_process(stack, "api_ingest.main:app", API_PORT):
        single = single_posts(API_PORT, records[:3000], args.concurrency)
        batch = batch_posts(API_PORT, records, 5000, concurrency=2)
    with api_process(stack, "bench.baseline_api:app", BASELINE_PORT):
        base_single = single_posts(BASELINE_PORT, records[:300], args.concurrency)
        base_batch = batch_posts(BASELINE_PORT, records[:20_000], 5000, concurrency=2)
    print(f"(a) single POSTs, {args.concurrency} in flight: {single}")
    print(f"    baseline (new producer + flush per request): {base_single}")
    print(f"    ratio {single.per_second / base_single.per_second:.1f}x")
    print(f"(b) batch endpoint, 5,000 records per request, 2 in flight: {batch}")
    print(f"    baseline's batch endpoint (a new producer per 5,000 records): {base_batch}")
    print(f"    ratio {batch.per_second / base_batch.per_second:.1f}x")
    print(
        f"    ratio to the original project's ingest path (one POST and one producer per record): "
        f"{batch.per_second / base_single.per_second:.0f}x"
    )

    kafka_python, confluent = kafka_python_rate(config, keyed), confluent_rate(config, keyed)
    print(f"(c) producer libraries, {len(keyed):,} records, acks=all, idempotent, lz4:")
    print(f"    kafka-python {kafka_python}; confluent-kafka {confluent}")
    print(f"    ratio {confluent.per_second / kafka_python.per_second:.1f}x")

    with api_process(stack, "api_ingest.main:app", API_PORT) as api:
        client_run(config, data, api.pid() or 0)


if __name__ == "__main__":
    main()
