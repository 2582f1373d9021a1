"""A Spark standalone cluster on loopback: a master and its workers, started with the launch classes of the
installed pyspark (`spark-class org.apache.spark.deploy.master.Master` / `...worker.Worker`)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx

from lakehouse.net import host_port, port_open
from lakehouse.settings import Settings
from stack.processes import ServiceProcess, wait_until

log = logging.getLogger(__name__)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The heap of the master and of each worker daemon (not of the executors a worker launches: those get
# SPARK_EXECUTOR_MEMORY each). Spark's default is 1g; a daemon only tracks a few executors. (128m left their
# resident memory where it was, about 220 MiB: the JVM's own classes and threads, not the heap.)
DAEMON_MEMORY = "256m"
# The daemons only exchange small RPC messages: the serial collector and the client compiler alone take less
# of their resident memory than G1's structures and the C2 compiler (Native Memory Tracking: "GC" about 60 MiB,
# "Compiler" and "Code" tens more per JVM). The executors keep the JVM's defaults.
DAEMON_JAVA_OPTIONS = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


def master_address(settings: Settings) -> tuple[str, int]:
    """(host, port) of SPARK_MASTER; raises ValueError when it is not a `spark://host:port` URL."""
    if not settings.spark_master.startswith("spark://"):
        raise ValueError(f"SPARK_MASTER={settings.spark_master!r} is not a standalone master (spark://host:port)")
    return host_port(settings.spark_master.removeprefix("spark://"), default_port=7077)


class SparkStandalone:
    """The master at SPARK_MASTER (its web UI, which also answers the readiness check, on
    SPARK_MASTER_WEBUI_PORT) and
    `workers` workers offering `worker_cores` cores and `worker_memory` each; pids `spark-master` and
    `spark-worker-<n>`, worker folders (executors' logs, their Python files) in `<runtime>/spark/worker-<n>`."""

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str],
        workers: int = 2,
        worker_cores: int = 1,
        worker_memory: str = "1g",
    ) -> None:
        self.settings = settings
        self.host, self.port = master_address(settings)
        self.env = env | {
            "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
            "SPARK_DAEMON_JAVA_OPTS": DAEMON_JAVA_OPTIONS,
            # Executors' scratch (shuffle, spills, the files Spark ships them) under the runtime folder, not /tmp,
            # where a killed executor's would stay.
            "SPARK_LOCAL_DIRS": str(settings.runtime_dir / "spark" / "local"),
        }
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.webui_port = settings.spark_master_webui_port
        self.master = ServiceProcess("spark-master", settings.runtime_dir)
        self.workers = [ServiceProcess(f"spark-worker-{n}", settings.runtime_dir) for n in range(1, workers + 1)]
        self.spark_class = str(Path(env["PYSPARK_PYTHON"]).parent / "spark-class")

    def master_command(self) -> list[str]:
        port, webui_port = str(self.port), str(self.webui_port)
        return [self.spark_class, MASTER_CLASS, "--host", self.host, "--port", port, "--webui-port", webui_port]

    def worker_command(self, number: int) -> list[str]:
        """Worker `number` (1-based); its web UI on a port the kernel picks (nothing needs to find it)."""
        work_dir = self.settings.runtime_dir / "spark" / f"worker-{number}"
        work_dir.mkdir(parents=True, exist_ok=True)
        return [
            self.spark_class,
            WORKER_CLASS,
            self.settings.spark_master,
            "--host",
            self.host,
            "--cores",
            str(self.worker_cores),
            "--memory",
            self.worker_memory,
            "--work-dir",
            str(work_dir),
            "--webui-port",
            "0",
        ]

    def alive_workers(self) -> int:
        """Workers the master lists as ALIVE (from its web UI's JSON); 0 when the master does not answer."""
        try:
            state = httpx.get(f"http://{self.host}:{self.webui_port}/json/", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return 0
        return sum(worker.get("state") == "ALIVE" for worker in state.get("workers", []))

    def start(self, timeout: float = 90.0) -> None:
        """Start the master, then every worker not running; wait until all are registered with the master.
        Raises RuntimeError with the master's log when that takes over `timeout` seconds, and at once when
        another process holds the master's ports (Spark would move to the next free port without a word)."""
        if not self.master.is_running():
            self._refuse_taken_ports()
        self.master.start(self.master_command(), env=self.env)
        for number, worker in enumerate(self.workers, start=1):
            worker.start(self.worker_command(number), env=self.env)
        if not wait_until(lambda: self.alive_workers() >= len(self.workers), timeout, interval=1.0):
            raise RuntimeError(
                f"{self.alive_workers()} of {len(self.workers)} Spark workers registered in {timeout:.0f}s:\n"
                f"{self.master.log_tail()}"
            )
        log.info("Spark master %s with %d workers", self.settings.spark_master, len(self.workers))

    def _refuse_taken_ports(self) -> None:
        for port in (self.port, self.webui_port):
            if port_open(self.host, port):
                raise RuntimeError(
                    f"{self.host}:{port} is taken by another process: the Spark master needs it "
                    "(SPARK_MASTER, SPARK_MASTER_WEBUI_PORT); stop that process or change the setting"
                )

    def stop(self) -> list[str]:
        """Stop the workers (with their executors), then the master; returns the names stopped."""
        return [process.name for process in [*reversed(self.workers), self.master] if process.stop()]
