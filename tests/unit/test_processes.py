from __future__ import annotations

from pathlib import Path

from stack.processes import ServiceProcess, wait_until
from stack.services import process_tree_rss


def live_members_of_group(pgid: int) -> list[int]:
    """Pids of the process group that are not zombies (a killed orphan waits a moment for init to reap it)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
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


def test_stopping_what_is_not_running_is_harmless(tmp_path: Path) -> None:
    service = ServiceProcess("ghost", tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text("999999\n")
    assert not service.stop()
    assert not service.pid_file.exists()
