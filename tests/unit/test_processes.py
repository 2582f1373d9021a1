from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import psutil
import pytest

from stack.processes import Poller, ServiceProcess, _not_zombie, wait_until
from stack.services import Memory, process_tree_memory, process_tree_rss

# Above Linux's largest possible pid (PID_MAX_LIMIT, 2**22), so never a running process.
NO_SUCH_PID = 2**22 + 1


def live_members_of_group(pgid: int) -> list[int]:
    """Pids of the process group that are not zombies (a killed orphan waits a moment for init to reap it)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except ProcessLookupError:
            continue
    return members


def test_a_started_process_is_stopped_by_its_pid_file_with_its_children(tmp_path: Path) -> None:
    service = ServiceProcess("sleeper", tmp_path)
    pid = service.start(["bash", "-c", "sleep 300 & sleep 300; wait"])
    assert service.is_running() and service.pid_file.read_text().strip() == str(pid)
    assert service.start(["sleep", "1"]) == pid, "a running service is not started twice"
    assert wait_until(lambda: len(live_members_of_group(pid)) == 3, timeout=5)
    assert process_tree_rss(pid) > 0
    assert service.stop(timeout=10)
    assert not service.is_running() and not service.pid_file.exists()
    assert wait_until(lambda: not live_members_of_group(pid), timeout=5), live_members_of_group(pid)


def test_started_processes_get_two_malloc_arenas_unless_told_otherwise(tmp_path: Path) -> None:
    for name, env, expected in (("default", None, "2"), ("override", {"MALLOC_ARENA_MAX": "4"}, "4")):
        service = ServiceProcess(name, tmp_path)
        service.start(["bash", "-c", "echo arenas=$MALLOC_ARENA_MAX"], env=env)
        assert wait_until(lambda service=service: service.log_file.read_text().endswith("\n"), timeout=5)
        assert service.log_file.read_text().strip() == f"arenas={expected}"


def test_stopping_what_is_not_running_is_harmless(tmp_path: Path) -> None:
    service = ServiceProcess("ghost", tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text("999999\n")
    assert not service.stop()
    assert not service.pid_file.exists()


def test_the_memory_of_a_tree_counts_its_children_and_of_no_process_is_zero(tmp_path: Path) -> None:
    service = ServiceProcess("parent", tmp_path)
    pid = service.start(["bash", "-c", "sleep 300 & sleep 300; wait"])
    try:
        assert wait_until(lambda: len(psutil.Process(pid).children()) == 2, timeout=5)
        parent_alone = psutil.Process(pid).memory_info().rss
        assert process_tree_rss(pid) > parent_alone
    finally:
        service.stop(timeout=10)
    assert process_tree_rss(NO_SUCH_PID) == 0


def test_pss_counts_the_pages_forked_children_share_once_and_rss_once_per_process(tmp_path: Path) -> None:
    """A Python that allocates 64 MiB and forks two children: the three share those pages copy-on-write, so the
    tree's summed RSS counts them three times and its PSS about once."""
    service = ServiceProcess("forker", tmp_path)
    script = "import os, time; b = b'x' * (64 << 20); [os.fork() or time.sleep(300) for _ in range(2)]; time.sleep(300)"
    pid = service.start(["python3", "-c", script])
    try:
        assert wait_until(lambda: len(psutil.Process(pid).children()) == 2, timeout=10)
        memory = process_tree_memory(pid)
        assert memory.rss - memory.pss > 64 << 20, memory
    finally:
        service.stop(timeout=10)
    assert process_tree_memory(NO_SUCH_PID) == Memory(0, 0)


def test_a_zombie_is_not_alive_and_a_reaped_process_is_gone() -> None:
    child = subprocess.Popen(["true"])
    assert wait_until(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, timeout=5)
    assert not _not_zombie(child.pid), "exited but not yet reaped"
    child.wait()
    assert not _not_zombie(child.pid)
    assert _not_zombie(os.getpid())


def test_down_finds_the_cluster_processes_of_either_mode_by_their_pid_files(tmp_path: Path) -> None:
    """`make down` (no --cluster) stops Spark and every Kafka node: workers, master, the nodes, then MongoDB."""
    from lakehouse.settings import load_settings
    from stack.services import LocalStack

    (tmp_path / "pids").mkdir()
    for name in ("kafka", "kafka-2", "kafka-3", "spark-master", "spark-worker-1", "spark-worker-2", "api", "other"):
        (tmp_path / "pids" / f"{name}.pid").write_text(f"{NO_SUCH_PID}\n")
    stack = LocalStack(load_settings(runtime_dir=tmp_path))
    assert [process.name for process in stack.infrastructure()] == [
        "spark-worker-2",
        "spark-worker-1",
        "spark-master",
        "kafka-3",
        "kafka-2",
        "kafka",
        "mongo",
    ]
    assert stack.down() == []
    assert sorted(path.stem for path in (tmp_path / "pids").glob("*.pid")) == ["other"]


def test_a_poller_polls_from_its_thread_until_exit_and_then_closes() -> None:
    class Counter(Poller):
        def __init__(self) -> None:
            super().__init__(0.01)
            self.polls: list[int] = []
            self.closed_after: int | None = None

        def poll(self) -> None:
            self.polls.append(threading.get_ident())

        def close(self) -> None:
            self.closed_after = len(self.polls)

    with Counter() as counter:
        assert wait_until(lambda: len(counter.polls) >= 3, timeout=5)
    assert set(counter.polls) != {threading.get_ident()}
    assert counter.closed_after == len(counter.polls)


def test_a_poller_that_failed_raises_on_exit_unless_the_block_already_raises() -> None:
    class Failing(Poller):
        def poll(self) -> None:
            raise ConnectionError("server went away")

    with (
        pytest.raises(RuntimeError, match="Failing stopped polling: ConnectionError") as raised,
        Failing(0.01) as poller,
    ):
        assert wait_until(lambda: poller._error is not None, timeout=5)
    assert isinstance(raised.value.__cause__, ConnectionError)
    with pytest.raises(KeyError), Failing(0.01) as poller:  # the block's own exception is not replaced
        assert wait_until(lambda: poller._error is not None, timeout=5)
        raise KeyError("the block's")
