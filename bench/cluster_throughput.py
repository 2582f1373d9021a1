"""The streaming job's throughput on a cluster, beside local mode, in one run (issue #13).

    .venv/bin/python -m bench.cluster_throughput --products 100000        # or: make bench-cluster

Each mode gets a fresh stack of its own in var/bench/throughput-<mode>/, on ports of its own (`BENCH_PORTS`;
it refuses to start when one is taken), so a running `make run` is not touched. Local mode is one Kafka node
and the job in Spark's local mode (`make run`); cluster mode is three Kafka nodes (replication 3,
min.insync.replicas 2) and the job submitted to a Spark standalone master with two one-core workers
(`make run-cluster`). The same generated products are sent with the job stopped; then the job is started and
timed until MongoDB holds every product and the lag is 0. Each stack's memory peak (the PSS of every process it
started, summed: stack.services.MemorySampler) is printed too.

A 2-core machine cannot show a cluster's speed-up: the figures show the same code running there and what the
extra JVMs, the replication and the executors' network hops cost.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass

from bench.pipeline_100k import send, time_job
from dataset.generate import write_dataset
from lakehouse.net import host_port, port_open
from lakehouse.settings import PROJECT_ROOT, Settings, cluster_settings, load_settings
from stack.services import LocalStack, MemorySampler
from stack.spark_cluster import master_address

BENCH_DIR = PROJECT_ROOT / "var" / "bench"
# Beside the default stack's and the tests' ports; the cluster's Kafka nodes are the local one and the next two.
BENCH_PORTS: dict[str, object] = {
    "kafka_bootstrap_servers": "127.0.0.1:29092",
    "mongo_uri": "mongodb://127.0.0.1:27217/",
    "api_port": 18100,
    "api_url": "http://127.0.0.1:18100",
    "spark_master_webui_port": 28090,
}
CLUSTER_PORTS: dict[str, object] = {
    "kafka_bootstrap_servers": "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096",
    "spark_master": "spark://127.0.0.1:27077",
}


@dataclass(frozen=True)
class ModeFigures:
    mode: str
    records: int
    job_seconds: float
    start_up_seconds: float
    memory_peak_bytes: int

    def line(self) -> str:
        return (
            f"{self.mode:8} {self.records:,} records through the job in {self.job_seconds:6.1f} s = "
            f"{self.records / self.job_seconds:5,.0f} rows/s (start-up {self.start_up_seconds:.1f} s); "
            f"memory peak {self.memory_peak_bytes / 2**30:.2f} GiB PSS"
        )


def stack_for(mode: str) -> LocalStack:
    """A stack whose every file (pids, logs, Kafka and MongoDB data, lakehouse, checkpoints) is in its folder."""
    folder = BENCH_DIR / f"throughput-{mode}"
    shutil.rmtree(folder, ignore_errors=True)
    overrides = BENCH_PORTS | {"runtime_dir": folder, "mongo_db": f"bench_throughput_{mode}"}
    if mode == "cluster":
        return LocalStack(cluster_settings(**overrides | CLUSTER_PORTS), cluster=True)
    return LocalStack(load_settings(**overrides))


def refuse_taken_ports(config: Settings) -> None:
    """Raises SystemExit naming the first port of the stack that something already listens on."""
    kafka = [host_port(server) for server in config.kafka_bootstrap_servers.split(",")]
    ports = [*kafka, *[(host, port + 1) for host, port in kafka], ("127.0.0.1", config.api_port)]
    ports.append(host_port(config.mongo_uri.split("//", 1)[1].rstrip("/"), 27017))
    if config.spark_master.startswith("spark://"):
        master = master_address(config)
        ports += [master, (master[0], config.spark_master_webui_port)]
    for host, port in ports:
        if port_open(host, port):
            raise SystemExit(f"{host}:{port} is taken: stop what listens there before the benchmark")


def run_mode(mode: str, products: int, seed: int) -> ModeFigures:
    data = write_dataset(BENCH_DIR / "data", products, 248, seed)
    stack = stack_for(mode)
    refuse_taken_ports(stack.settings)
    print(f"{mode}: {stack.settings.kafka_bootstrap_servers}, Spark {stack.settings.spark_master}")
    try:
        with MemorySampler(stack) as memory:
            stack.up([service for service in stack.services if service in {"kafka", "mongo", "spark", "api"}])
            records, _ = send(stack, data)
            stack.stop_applications()
            job_seconds, start_up = time_job(stack, records, products)
    finally:
        stack.down()
    return ModeFigures(mode, records, job_seconds, start_up, memory.peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    local, cluster = (run_mode(mode, args.products, args.seed) for mode in ("local", "cluster"))
    print(local.line())
    print(cluster.line())
    print(
        f"cluster / local: {cluster.job_seconds / local.job_seconds:.2f}x the time, "
        f"{cluster.memory_peak_bytes / local.memory_peak_bytes:.2f}x the memory"
    )


if __name__ == "__main__":
    main()
