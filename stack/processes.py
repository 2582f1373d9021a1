"""Start, find and stop background processes by pid file."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import psutil

log = logging.getLogger(__name__)

# glibc gives each thread that allocates natively an arena of its own, up to 8 per core, each growing in 64 MiB
# steps. A JVM has dozens of threads, so its resident memory grows far past its heap; Hadoop caps the arenas at
# 4 for the same reason (HADOOP-7154). The cluster job's driver (JVM and Python) was 2.77 GiB resident without
# the cap and 1.46 GiB with 2, in two runs of tests/integration/test_cluster.py (issue #13). The environment
# given to `start` can override it.
PROCESS_ENV = {"MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class ServiceProcess:
    """A named background process whose pid and log live under the runtime folder."""

    name: str
    runtime_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.runtime_dir / "pids" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.runtime_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start `command` in its own process group unless it already runs; returns the pid."""
        existing = self.pid()
        if existing is not None:
            log.info("%s already running (pid %d)", self.name, existing)
            return existing
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log_handle:
            process = subprocess.Popen(
                list(command),
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **PROCESS_ENV, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        log.info("started %s (pid %d), log %s", self.name, process.pid, self.log_file)
        return process.pid

    def stop(self, timeout: float = 30.0, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Signal the process group, wait up to `timeout`, then SIGKILL. True when something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, sig)
        if sig != signal.SIGKILL and not wait_until(lambda: not _alive(pid), timeout):
            log.warning("%s (pid %d) ignored %s for %.0fs; killing it", self.name, pid, sig.name, timeout)
            _signal_group(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10)
        self.pid_file.unlink(missing_ok=True)
        log.info("stopped %s (pid %d)", self.name, pid)
        return True

    def kill(self) -> bool:
        """SIGKILL at once: what a crash looks like to everything else."""
        return self.stop(sig=signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def stop_together(processes: Sequence[ServiceProcess], timeout: float = 60.0) -> list[str]:
    """Stop `processes` at the same time (each as ServiceProcess.stop); returns the names of those that ran.
    For the nodes of a KRaft quorum: stopped one by one, the last waits for a quorum that is gone."""
    if not processes:
        return []
    with ThreadPoolExecutor(len(processes)) as pool:
        stopped = list(pool.map(lambda process: process.stop(timeout=timeout), processes))
    return [process.name for process, ran in zip(processes, stopped, strict=True) if ran]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _not_zombie(pid)
    return finished == 0


def _not_zombie(pid: int) -> bool:
    """True while `pid` exists and has not exited; a zombie (exited, not yet reaped by its parent) is not alive."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Poller:
    """Calls `poll` every `interval` seconds from a daemon thread between `__enter__` and `__exit__`, then
    `close`: the samplers and watchers that run beside a measured run (memory peaks, freshness readers).
    An exception from `poll` ends the polling and is raised again by `__exit__`, so a figure is never read
    from a poller that stopped early."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: Exception | None = None

    def poll(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Releases what `poll` used, once the thread has stopped."""

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.poll()
        except Exception as error:  # handed to the caller's thread by __exit__
            self._error = error

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.close()
        if self._error is not None and exc_type is None:
            raise RuntimeError(f"{type(self).__name__} stopped polling: {self._error!r}") from self._error
