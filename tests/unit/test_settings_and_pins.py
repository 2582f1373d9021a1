from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from lakehouse.settings import DEFAULT_API_KEY, Settings, cluster_settings, load_settings, settings_env

ROOT = Path(__file__).resolve().parents[2]


def test_environment_variables_override_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("MONGO_URI", "mongodb://m1,m2/?replicaSet=rs0")
    config = load_settings()
    assert config.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert config.mongo_uri == "mongodb://m1,m2/?replicaSet=rs0"


def test_derived_paths_follow_the_runtime_dir(tmp_path: Path) -> None:
    config = load_settings(runtime_dir=tmp_path)
    assert (config.lakehouse_dir, config.checkpoint_dir) == (tmp_path / "lakehouse", tmp_path / "checkpoints")


def test_a_copy_with_other_paths_uses_them_after_the_original_was_read(tmp_path: Path) -> None:
    original = load_settings(runtime_dir=tmp_path)
    assert (original.lakehouse_dir, original.checkpoint_dir) == (tmp_path / "lakehouse", tmp_path / "checkpoints")
    copy = original.model_copy(update={"lakehouse_path": tmp_path / "other", "checkpoint_path": tmp_path / "cp"})
    assert (copy.lakehouse_dir, copy.query_checkpoint_dir) == (tmp_path / "other", tmp_path / "cp" / "ingest")


def test_settings_survive_the_trip_through_a_child_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_settings(mongo_db="elsewhere", kafka_topic_partitions=6)
    for name, value in settings_env(config).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == config


def test_the_default_api_key_is_refused_outside_local_mode() -> None:
    assert Settings(api_key=DEFAULT_API_KEY).api_key == DEFAULT_API_KEY
    with pytest.raises(ValidationError, match="API_KEY must be changed"):
        Settings(environment="production", api_key=DEFAULT_API_KEY)


def test_more_in_sync_replicas_than_replicas_is_refused() -> None:
    assert Settings(kafka_replication_factor=3, kafka_min_insync_replicas=3).kafka_min_insync_replicas == 3
    with pytest.raises(ValidationError, match="KAFKA_MIN_INSYNC_REPLICAS=2 is more than KAFKA_REPLICATION_FACTOR=1"):
        Settings(kafka_min_insync_replicas=2)


def _pom_properties() -> dict[str, str]:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ET.parse(ROOT / "pom.xml").getroot().find("m:properties", namespace)
    assert properties is not None
    return {child.tag.split("}")[1]: child.text or "" for child in properties}


def test_spark_connector_jars_match_pyspark_exactly() -> None:
    pins = {
        re.split("==", d)[0]: re.split("==", d)[1]
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    pom = _pom_properties()
    assert pom["spark.version"] == pins["pyspark"]
    assert pom["delta.version"] == pins["delta-spark"]
    # Delta's build for pyspark's line (4.2 for 4.2.0), on Spark 4's only Scala.
    spark_line = ".".join(pins["pyspark"].split(".")[:2])
    assert (pom["delta.spark.line"], pom["spark.scala.binary"]) == (spark_line, "2.13")
    jars = {p.name for p in (ROOT / "build" / "jars" / "spark").glob("*.jar")}
    assert f"spark-sql-kafka-0-10_2.13-{pins['pyspark']}.jar" in jars
    assert f"delta-spark_{spark_line}_2.13-{pins['delta-spark']}.jar" in jars


def test_the_sink_bulk_size_follows_the_mongodb_server() -> None:
    assert load_settings(mongo_server="secantus", mongo_bulk_documents=0).mongo_bulk_size == 1_000
    assert load_settings(mongo_server="ferretdb", mongo_bulk_documents=0).mongo_bulk_size == 50
    assert load_settings(mongo_server="ferretdb", mongo_bulk_documents=20).mongo_bulk_size == 20
    with pytest.raises(ValidationError):
        load_settings(mongo_server="mongo-in-a-spreadsheet")


def test_every_selectable_mongodb_server_has_a_make_target_and_a_command(tmp_path: Path) -> None:
    from stack.mongo import EMBEDDED_SERVERS

    makefile = (ROOT / "Makefile").read_text().replace("$(MONGO_SERVERS)", "build/mongo-servers")
    for name, server in EMBEDDED_SERVERS.items():
        assert f"MONGO_SERVER_BIN_{name} := {server.executable.relative_to(ROOT)}" in makefile
        if server.installed():
            command = server.command("127.0.0.1", 27999, tmp_path)
            assert command[0] == str(server.executable) and "27999" in " ".join(command)
    assert set(Settings.model_fields["mongo_server"].annotation.__args__) <= set(EMBEDDED_SERVERS)


def test_the_job_reads_spark_timestamps_as_utc_whatever_the_machines_time_zone(monkeypatch) -> None:
    """PySpark turns a timestamp into a naive datetime in the process's local time (TimestampType.fromInternal)
    and pymongo stores a naive datetime as UTC: in Los Angeles every time written would be 8 hours off."""
    import time

    from pyspark.sql.types import TimestampType

    from spark_jobs.session import use_utc

    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        use_utc()
        assert TimestampType().fromInternal(1_764_000_000 * 1_000_000) == datetime(2025, 11, 24, 16, 0)
    finally:
        time.tzset()


def test_cluster_mode_is_settings_only_and_an_environment_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "SPARK_MASTER"):  # the tests' own, from tests/conftest.py
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "3")
    config = cluster_settings()
    assert config.kafka_bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert (config.kafka_replication_factor, config.kafka_min_insync_replicas) == (3, 3)
    assert (config.spark_master, config.spark_driver_memory) == ("spark://127.0.0.1:7077", "512m")


def test_the_properties_file_for_spark_submit_names_the_master_and_the_memory() -> None:
    from spark_jobs.session import spark_defaults

    config = load_settings(spark_master="spark://127.0.0.1:7077", spark_executor_memory="384m")
    lines = spark_defaults(config).splitlines()
    assert {"spark.master spark://127.0.0.1:7077", "spark.executor.memory 384m"} <= set(lines)
