from __future__ import annotations

import os
from pathlib import Path

from stack.processes import ServiceProcess
from stack.services import process_tree_rss


def test_a_started_process_is_stopped_by_its_pid_file_with_its_children(tmp_path: Path) -> None:
    service = ServiceProcess("sleeper", tmp_path)
    pid = service.start(["bash", "-c", "sleep 300 & sleep 300; wait"])
    assert service.is_running() and service.pid_file.read_text().strip() == str(pid)
    assert service.start(["sleep", "1"]) == pid, "a running service is not started twice"
    assert process_tree_rss(pid) > 0
    assert service.stop(timeout=10)
    assert not service.is_running() and not service.pid_file.exists()
    assert not any(
        p.name.isdigit() and os.getpgid(int(p.name)) == pid
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _exists(int(p.name))
    )


def _exists(pid: int) -> bool:
    try:
        os.getpgid(pid)
        return True
    except ProcessLookupError:
        return False


def test_stopping_what_is_not_running_is_harmless(tmp_path: Path) -> None:
    service = ServiceProcess("ghost", tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text("999999\n")
    assert not service.stop()
    assert not service.pid_file.exists()
