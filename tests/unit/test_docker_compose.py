"""docker-compose.yml cannot start here (no Docker engine); check what can be checked offline."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from lakehouse.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCUMENTED_PORTS = {
    "api": 8000,
    "dashboard": 8501,
    "kafka": 9092,
    "mongo": 27017,
    "mongo-express": 8081,
    "kafka-ui": 8080,
    "spark-master": 8090,
    "spark-job": 4040,
    "jupyter": 8888,
}


def test_every_component_of_the_pipeline_is_a_service() -> None:
    assert {
        "kafka",
        "kafka-init",
        "mongo",
        "mongo-express",
        "kafka-ui",
        "api",
        "speed-layer",
        "spark-master",
        "spark-worker",
        "spark-job",
        "dashboard",
        "jupyter",
    } <= set(SERVICES)
    assert SERVICES["jupyter"]["profiles"] == ["explore"]


def test_ports_are_the_documented_ones() -> None:
    for service, port in DOCUMENTED_PORTS.items():
        assert f"{port}:{port}" in SERVICES[service]["ports"], service
        assert str(port) in (ROOT / "README.md").read_text(), f"README does not document {service}'s port"


def readme_port_table() -> dict[str, str]:
    """The README's port table: port -> its docker-compose column."""
    lines = (ROOT / "README.md").read_text().splitlines()
    first_row = lines.index("| port | service | changed by | local stack | docker-compose |") + 2
    rows = itertools.takewhile(lambda line: line.startswith("| "), lines[first_row:])
    return {cells[0]: cells[-1] for cells in (row.strip("| ").split(" | ") for row in rows)}


def test_the_readme_port_table_lists_exactly_the_published_ports() -> None:
    published = {int(mapping.split(":")[0]) for service in SERVICES.values() for mapping in service.get("ports", [])}
    table = readme_port_table()
    assert {int(port) for port, compose in table.items() if compose.startswith("published")} == published
    assert {"9093", "4040", "29092"} <= set(table), "the controller, the Spark UI and the internal listener"


def test_images_are_real_and_pinned() -> None:
    for name, service in SERVICES.items():
        image = service.get("image", "")
        assert (":" in image and not image.endswith(":latest")) or image.startswith("amazon-lakehouse"), name
    assert SERVICES["kafka"]["image"] == "apache/kafka:3.9.1"
    assert SERVICES["mongo"]["image"].startswith("mongo:")


def test_dependencies_wait_for_health_and_health_is_checked() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully", "service_started"), (
                name
            )
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], dependency
    for name in ("kafka", "mongo", "api", "dashboard", "spark-master"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_applications_use_the_same_variable_names_as_local_mode() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for name in ("api", "speed-layer", "spark-job", "dashboard", "jupyter"):
        environment = SERVICES[name]["environment"]
        assert set(environment) <= known, set(environment) - known
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092,kafka-2:29092,kafka-3:29092"
        assert environment["API_KEY"].startswith("${API_KEY:?"), "the API key is required, never defaulted"


def test_mongo_cache_is_capped() -> None:
    assert SERVICES["mongo"]["command"] == ["--wiredTigerCacheSizeGB", "0.5"]


def test_ingest_topics_are_stamped_by_the_broker_as_in_the_local_stack() -> None:
    """Record versions are the broker's append time (spark_jobs/topic_guard.py refuses other topics)."""
    from stack.kafka import INGEST_TOPIC_CONFIG

    assert SERVICES["kafka"]["environment"]["KAFKA_LOG_MESSAGE_TIMESTAMP_TYPE"] == "LogAppendTime"
    created = " ".join(SERVICES["kafka-init"]["command"])
    assert created.count("--config message.timestamp.type=LogAppendTime") == 1  # in the loop over the 3 topics
    assert INGEST_TOPIC_CONFIG == {"message.timestamp.type": "LogAppendTime"}


def test_the_cluster_has_the_shape_of_the_local_cluster_mode() -> None:
    """Three KRaft nodes voting in one quorum, topics on three with two in sync, a master and two workers."""
    from lakehouse.settings import CLUSTER_DEFAULTS

    nodes = [SERVICES[name]["environment"] for name in ("kafka", "kafka-2", "kafka-3")]
    assert [node["KAFKA_NODE_ID"] for node in nodes] == [1, 2, 3]
    assert {node["KAFKA_CONTROLLER_QUORUM_VOTERS"] for node in nodes} == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({node["CLUSTER_ID"] for node in nodes}) == 1
    application = SERVICES["api"]["environment"]
    assert int(application["KAFKA_REPLICATION_FACTOR"]) == CLUSTER_DEFAULTS["kafka_replication_factor"]
    assert int(application["KAFKA_MIN_INSYNC_REPLICAS"]) == CLUSTER_DEFAULTS["kafka_min_insync_replicas"]
    created = " ".join(SERVICES["kafka-init"]["command"])
    assert created.count("--replication-factor 3 --config min.insync.replicas=2") == 2
    assert created.count("--bootstrap-server kafka:29092,kafka-2:29092,kafka-3:29092") == 2
    # Each node's data lives in its volume, not in the container's /tmp (the image's default log dir).
    for name, node in zip(("kafka", "kafka-2", "kafka-3"), nodes, strict=True):
        assert SERVICES[name]["volumes"] == [f"{name}-data:{node['KAFKA_LOG_DIRS']}"]
    assert SERVICES["spark-worker"]["deploy"]["replicas"] == 2


def test_the_job_takes_its_master_and_memory_from_the_environment_not_the_image_properties_file() -> None:
    """spark-submit reads spark.driver.memory from --properties-file before SPARK_DRIVER_MEMORY, and the image's
    file holds the settings of its build: the flags carry the compose environment's values."""
    [shell, flag, script] = SERVICES["spark-job"]["command"]
    assert (shell, flag) == ("sh", "-c")
    for option, variable in (
        ("--master", "SPARK_MASTER"),
        ("--driver-memory", "SPARK_DRIVER_MEMORY"),
        ("--executor-memory", "SPARK_EXECUTOR_MEMORY"),
    ):
        assert f'{option} "$${variable}"' in script, option
        assert variable in SERVICES["spark-job"]["environment"]
    assert script.index("--driver-memory") < script.index("spark_jobs/streaming_job.py")
