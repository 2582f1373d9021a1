"""The project's own processes (API, streaming job, dashboard) and the infrastructure, as one stack."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import httpx
import psutil

from lakehouse.settings import PROJECT_ROOT, Settings, settings_env
from stack.kafka import KafkaBroker
from stack.mongo import MongoServer
from stack.processes import ServiceProcess, wait_until

log = logging.getLogger(__name__)

INFRASTRUCTURE = ("kafka", "mongo")
APPLICATIONS = ("api", "job", "dashboard")
ALL_SERVICES = INFRASTRUCTURE + APPLICATIONS


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


class LocalStack:
    """`instance` suffixes the application processes' names, so tests can run several side by side."""

    def __init__(self, settings: Settings, instance: str = "") -> None:
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
        }

    def process(self, name: str) -> ServiceProcess:
        if name in APPLICATIONS and self.instance:
            name = f"{name}-{self.instance}"
        return ServiceProcess(name, self.settings.runtime_dir)

    def up(self, services: Iterable[str] = ALL_SERVICES) -> None:
        wanted = set(services)
        if "kafka" in wanted:
            self.kafka.start()
        if "mongo" in wanted:
            self.mongo.start()
        if "api" in wanted:
            self.start_api()
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

    def start_job(self, spark_submit: bool = False) -> None:
        """The streaming job, as `python -m` or, as a user would run it, through `spark-submit`."""
        if spark_submit:
            command = [
                str(Path(self.python).parent / "spark-submit"),
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

    def down(self) -> list[str]:
        """Stop every process this stack started, applications first; returns the names stopped."""
        return self.stop_applications() + [name for name in reversed(INFRASTRUCTURE) if self.process(name).stop()]

    def running(self) -> dict[str, int]:
        return {name: pid for name in ALL_SERVICES if (pid := self.process(name).pid()) is not None}


def process_tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants; 0 when `pid` does not exist.

    A descendant that exits (or becomes a zombie) while it is being measured counts 0.
    """
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    return sum(_rss(process) for process in tree)


def _rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
        return 0
