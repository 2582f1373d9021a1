from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from lakehouse.settings import load_settings
from stack.spark_cluster import SparkStandalone


def test_a_master_port_held_by_another_process_is_refused_before_spark_moves_to_the_next(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_settings(runtime_dir=tmp_path, spark_master=f"spark://127.0.0.1:{port}")
        cluster = SparkStandalone(config, {"PYSPARK_PYTHON": sys.executable})
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} is taken"):
            cluster.start(timeout=1)
    assert not cluster.master.pid_file.exists(), "nothing was started"


def test_executors_scratch_stays_in_the_runtime_folder(tmp_path: Path) -> None:
    config = load_settings(runtime_dir=tmp_path, spark_master="spark://127.0.0.1:7077")
    cluster = SparkStandalone(config, {"PYSPARK_PYTHON": sys.executable})
    assert Path(cluster.env["SPARK_LOCAL_DIRS"]).is_relative_to(tmp_path)
