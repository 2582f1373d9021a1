"""The project's own processes (API, streaming job, dashboard) and the infrastructure, as one stack."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import NamedTuple

import httpx
import psutil

from lakehouse.settings import PROJECT_ROOT, Settings, settings_env
from stack.kafka import KafkaBroker
from stack.mongo import MongoServer
from stack.processes import Poller, ServiceProcess, stop_together, wait_until
from stack.spark_cluster import SparkStandalone

log = logging.getLogger(__name__)

INFRASTRUCTURE = ("kafka", "mongo")
APPLICATIONS = ("api", "speed", "job", "dashboard")
ALL_SERVICES = INFRASTRUCTURE + APPLICATIONS
# Cluster mode adds the Spark standalone cluster; its processes and the extra Kafka nodes are found by their
# pid files, so `make down` stops them whichever mode started them.
CLUSTER_SERVICES = (*INFRASTRUCTURE, "spark", *APPLICATIONS)
CLUSTER_PROCESS = re.compile(r"spark-master|spark-worker-\d+|kafka(-\d+)?")


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class LocalStack:
    """`instance` suffixes the application processes' names, so tests can run several side by side.
    `cluster` adds a Spark standalone cluster at SPARK_MASTER (service `spark`) and submits the job to it;
    Kafka has one node per address of KAFKA_BOOTSTRAP_SERVERS in either mode."""

    def __init__(self, settings: Settings, instance: str = "", cluster: bool = False) -> None:
        self.settings = settings
        self.instance = instance
        self.kafka = KafkaBroker(settings)
        self.mongo = MongoServer(settings)
        self.python = sys.executable
        # As if the venv were activated: spark-submit finds pyspark through the `python3` on PATH.
        venv_bin = str(Path(self.python).parent)
        self.env = settings_env(settings) | {
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYSPARK_PYTHON": self.python,
            # Spark's UI binds to SPARK_LOCAL_IP (else every interface); the local stack serves loopback only.
            "SPARK_LOCAL_IP": settings.spark_driver_host,
            # This checkout's modules, for `spark-submit spark_jobs/...` (whose sys.path starts at spark_jobs/)
            # and for the Python workers of executors, which run in a worker's folder.
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        self.spark = SparkStandalone(settings, self.env) if cluster else None
        self.services = CLUSTER_SERVICES if self.spark else ALL_SERVICES

    def process(self, name: str) -> ServiceProcess:
        if name in APPLICATIONS and self.instance:
            name = f"{name}-{self.instance}"
        return ServiceProcess(name, self.settings.runtime_dir)

    def up(self, services: Iterable[str] | None = None) -> None:
        """Start `services` (names of `self.services`; all of them by default) that are not running."""
        wanted = set(self.services if services is None else services)
        if "kafka" in wanted:
            self.kafka.start()
        if "mongo" in wanted:
            self.mongo.start()
        if "spark" in wanted and self.spark:
            self.spark.start()
        if "api" in wanted:
            self.start_api()
        if "speed" in wanted:
            self.start_speed_layer()
        if "job" in wanted:
            self.start_job()
        if "dashboard" in wanted:
            self.start_dashboard()

    def start_api(self, timeout: float = 60.0, workers: int = 1) -> None:
        """uvicorn serving the API; `workers` > 1 runs that many worker processes behind its one port."""
        process = self.process("api")
        command = [
            self.python,
            "-m",
            "uvicorn",
            "api_ingest.main:app",
            "--host",
            self.settings.api_host,
            "--port",
            str(self.settings.api_port),
            "--no-access-log",
        ]
        if workers > 1:
            command += ["--workers", str(workers)]
        process.start(command, env=self.env, cwd=PROJECT_ROOT)
        if not wait_until(lambda: _http_ok(f"{self.settings.api_url}/health"), timeout):
            raise RuntimeError(f"the API did not start in {timeout:.0f}s:\n{process.log_tail()}")

    def start_speed_layer(self) -> None:
        """The speed layer (speed_layer/consumer.py): serves new products in MongoDB ahead of the job."""
        self.process("speed").start([self.python, "-m", "speed_layer"], env=self.env, cwd=PROJECT_ROOT)

    def start_job(self, spark_submit: bool = False) -> None:
        """The streaming job, as `python -m` or, as a user would run it, through `spark-submit`; always
        through `spark-submit --master SPARK_MASTER` on a cluster. The master and the memory are given as
        flags, which win over the properties file: `make setup` wrote that file with the settings of its
        moment (local mode's), and a spark-submit reads its memory from the file before the environment."""
        if spark_submit or self.spark:
            command = [
                str(Path(self.python).parent / "spark-submit"),
                "--master",
                self.settings.spark_master,
                "--driver-memory",
                self.settings.spark_driver_memory,
                "--executor-memory",
                self.settings.spark_executor_memory,
                "--properties-file",
                str(PROJECT_ROOT / "build" / "spark-defaults.conf"),
                "spark_jobs/streaming_job.py",
            ]
        else:
            command = [self.python, "-m", "spark_jobs.streaming_job"]
        self.process("job").start(command, env=self.env, cwd=PROJECT_ROOT)

    def start_dashboard(self, timeout: float = 60.0) -> None:
        process = self.process("dashboard")
        process.start(
            [
                self.python,
                "-m",
                "streamlit",
                "run",
                str(PROJECT_ROOT / "dashboard" / "app.py"),
                "--server.port",
                str(self.settings.dashboard_port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            env=self.env,
            cwd=PROJECT_ROOT,
        )
        health = f"http://127.0.0.1:{self.settings.dashboard_port}/_stcore/health"
        if not wait_until(lambda: _http_ok(health), timeout):
            raise RuntimeError(f"the dashboard did not start in {timeout:.0f}s:\n{process.log_tail()}")

    def stop_applications(self) -> list[str]:
        return [name for name in reversed(APPLICATIONS) if self.process(name).stop()]

    def infrastructure(self) -> list[ServiceProcess]:
        """The infrastructure's processes in the order they are stopped: Spark workers, the Spark master, the
        Kafka nodes (the last first), the MongoDB-wire server; cluster ones as their pid files show."""
        pid_files = (self.settings.runtime_dir / "pids").glob("*.pid")
        started = sorted((path.stem for path in pid_files if CLUSTER_PROCESS.fullmatch(path.stem)), reverse=True)
        return [ServiceProcess(name, self.settings.runtime_dir) for name in [*started, "mongo"]]

    def down(self) -> list[str]:
        """Stop every process this stack started: applications, Spark, the Kafka nodes together, MongoDB;
        returns the names stopped."""
        processes = self.infrastructure()
        kafka = [process for process in processes if process.name.startswith("kafka")]
        one_by_one = [process for process in processes if process not in kafka]
        spark, mongo = one_by_one[:-1], one_by_one[-1]
        stopped = self.stop_applications() + [process.name for process in spark if process.stop()]
        return stopped + stop_together(kafka) + ([mongo.name] if mongo.stop() else [])

    def running(self) -> dict[str, int]:
        """name -> pid of every process of this stack that runs (the applications of this instance)."""
        processes = [self.process(name) for name in APPLICATIONS] + self.infrastructure()
        return {process.name: pid for process in processes if (pid := process.pid()) is not None}


def process_tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants; 0 when `pid` does not exist.

    A descendant that exits (or becomes a zombie) while it is being measured counts 0.
    """
    return sum(_rss(process) for process in _tree(pid))


def process_tree_memory(pid: int) -> Memory:
    """`process_tree_rss`'s tree measured both ways: resident (RSS) and proportional (PSS: each shared page
    divided among the processes sharing it, /proc/<pid>/smaps_rollup). Summed over processes, RSS counts a
    page shared by N processes N times (every JVM maps the JDK's `lib/modules` and `libjvm.so`; forked Python
    workers share their parent's pages), PSS once: PSS is what the processes take from the machine."""
    return sum((_memory(process) for process in _tree(pid)), Memory(0, 0))


class Memory(NamedTuple):
    """Bytes of memory, resident (`rss`) and proportional (`pss`)."""

    rss: int
    pss: int

    def __add__(self, other: object) -> Memory:
        if not isinstance(other, Memory):
            return NotImplemented
        return Memory(self.rss + other.rss, self.pss + other.pss)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
        return 0


def _memory(process: psutil.Process) -> Memory:
    try:
        full = process.memory_full_info()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return Memory(0, 0)
    return Memory(full.rss, full.pss)


class MemorySampler(Poller):
    """Peak memory of every running process of `stacks` with their descendants (executors, Python workers),
    sampled every `interval` seconds between `__enter__` and `__exit__`: `peak`, the largest sum of PSS in
    bytes (`process_tree_memory`: what the stack takes from the machine, each shared page once), with
    `peak_by_process` each process's PSS at that peak; `peak_rss`, the largest sum of RSS (a shared page counted
    once per process mapping it; the measure of figures before 2026-11-30). Pids in `leave_out` are not counted."""

    def __init__(self, *stacks: LocalStack, interval: float = 0.5, leave_out: Collection[int | None] = ()) -> None:
        super().__init__(interval)
        self.stacks = stacks
        self.leave_out = set(leave_out)
        self.peak = 0
        self.peak_rss = 0
        self.peak_by_process: dict[str, int] = {}

    def poll(self) -> None:
        running = {pid: name for stack in self.stacks for name, pid in stack.running().items()}
        shares = {name: process_tree_memory(pid) for pid, name in running.items() if pid not in self.leave_out}
        total = sum(shares.values(), Memory(0, 0))
        self.peak_rss = max(self.peak_rss, total.rss)
        if total.pss > self.peak:
            self.peak, self.peak_by_process = total.pss, {name: share.pss for name, share in shares.items()}
