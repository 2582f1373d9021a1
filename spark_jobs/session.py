"""The SparkSession every job and test uses: Delta Lake enabled, the Kafka connector on the classpath."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pyspark.sql import SparkSession

from lakehouse.settings import Settings, settings


def connector_jars(jars_dir: Path) -> list[str]:
    jars = sorted(str(path) for path in jars_dir.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Spark connector jars in {jars_dir}: run `make setup`")
    return jars


def spark_defaults(config: Settings = settings) -> str:
    """spark-defaults.conf for `spark-submit --properties-file`: the same master (spark-submit's `--master`
    overrides it), memory, jars and Delta settings as a session `build_spark` builds."""
    return "\n".join(
        [
            f"spark.jars {','.join(connector_jars(config.spark_jars_dir))}",
            f"spark.master {config.spark_master}",
            f"spark.driver.memory {config.spark_driver_memory}",
            f"spark.executor.memory {config.spark_executor_memory}",
            "spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension",
            "spark.sql.catalog.spark_catalog org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "",
        ]
    )


def use_utc() -> None:
    """Makes this process's local time UTC. PySpark hands timestamps to Python as naive datetimes in the
    process's local time zone (whatever spark.sql.session.timeZone says), and pymongo stores a naive datetime
    as UTC: on a machine whose TZ is not UTC every time the job writes to MongoDB would be shifted."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def submitted() -> bool:
    """True in a Python driver that spark-submit started (it hands the driver its gateway's port)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_spark(app_name: str, config: Settings = settings, extra_java_options: str = "") -> SparkSession:
    """A SPARK_MASTER session, in a process whose local time is UTC (`use_utc`).

    Under spark-submit, spark-submit decides the master, the memory and the jars (its flags, then its
    properties file, e.g. build/spark-defaults.conf): a builder's settings would override its `--master`.
    The jars must not come from SPARK_JARS_DIR there: Spark's launch script reuses that variable for its own
    jars folder, so executors on a cluster would get pyspark's jars instead of the connectors."""
    use_utc()
    builder = SparkSession.builder
    if not submitted():
        builder = (
            builder.master(config.spark_master)
            .config("spark.jars", ",".join(connector_jars(config.spark_jars_dir)))
            .config("spark.driver.memory", config.spark_driver_memory)
            .config("spark.executor.memory", config.spark_executor_memory)
            .config("spark.driver.extraJavaOptions", extra_java_options)
        )
    builder = (
        builder.appName(app_name)
        .config("spark.driver.host", config.spark_driver_host)
        .config("spark.driver.bindAddress", config.spark_driver_host)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        # Micro-batches are small; the default 200 shuffle partitions would mean 200 tiny tasks each.
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.databricks.delta.snapshotPartitions", "1")
        # Per-file min/max statistics serve data skipping; asins are random, so MERGEs by asin cannot skip.
        .config("spark.databricks.delta.stats.collect", "false")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


if __name__ == "__main__":
    import sys

    Path(sys.argv[1]).write_text(spark_defaults())
