"""The Delta tables of the lakehouse and the idempotent writes into them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

STREAM_APP_ID = "amazon-lakehouse-ingest"


@dataclass(frozen=True)
class LakeTables:
    root: Path

    def path(self, name: str) -> str:
        return str(self.root / name)

    @property
    def bronze(self) -> str:
        return self.path("bronze/kafka_records")

    @property
    def silver_products(self) -> str:
        return self.path("silver/products")

    @property
    def silver_categories(self) -> str:
        return self.path("silver/categories")

    @property
    def quarantine(self) -> str:
        return self.path("silver/quarantine")

    @property
    def price_history(self) -> str:
        """Every valid version of every product (spark_jobs/trends.price_history), one row per `_id`."""
        return self.path("silver/price_history")

    @property
    def event_log(self) -> str:
        return self.path("events/pipeline_events")

    def gold(self, name: str) -> str:
        return self.path(f"gold/{name}")

    @property
    def category_history(self) -> str:
        """Gold over time: one point per category and time bucket. Kept by a rebuild from bronze (`kept`)."""
        return self.gold("category_history")

    @property
    def kept(self) -> tuple[str, ...]:
        """Tables a rebuild from bronze keeps: it cannot recompute them (past gold points), and the event log
        (kept like MongoDB's pipeline_events, so the two tell the same history)."""
        return (self.category_history, self.event_log)


def stream_app_id(query_checkpoint: Path) -> str:
    """`amazon-lakehouse-ingest-<query id>`: the id Spark wrote in the checkpoint's `metadata` file when the
    query first started. It stays for every restart from that checkpoint and changes with a new one."""
    metadata = json.loads((query_checkpoint / "metadata").read_text())
    return query_app_id(metadata["id"])


def query_app_id(query_id: object) -> str:
    """The app id of the streaming query `query_id` (its checkpoint's id, e.g. a listener's `progress.id`)."""
    return f"{STREAM_APP_ID}-{query_id}"


def exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read_if_exists(spark: SparkSession, path: str) -> DataFrame | None:
    """The Delta table at `path` (any layer), None when it was not written yet."""
    return spark.read.format("delta").load(path) if exists(spark, path) else None


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The newest committed version of the Delta table at `path`; None when it was not written yet."""
    if not exists(spark, path):
        return None
    return DeltaTable.forPath(spark, path).history(1).select("version").first()[0]


def read_latest(spark: SparkSession, path: str) -> tuple[DataFrame, int] | None:
    """The Delta table at `path` as of its newest version, and that version; None when it was not written yet.
    The frame stays at that version while other writers commit (a reader on another thread, as gold's)."""
    version = latest_version(spark, path)
    if version is None:
        return None
    return spark.read.format("delta").option("versionAsOf", version).load(path), version


def read_or_empty(spark: SparkSession, path: str, schema: str) -> DataFrame:
    """The Delta table at `path`, or an empty frame of `schema` (a DDL string) when it was not written yet."""
    table = read_if_exists(spark, path)
    return table if table is not None else spark.createDataFrame([], schema)


def outdated_version_tables(spark: SparkSession, tables: LakeTables) -> list[str]:
    """Silver tables whose `_v` is not a record version (text): written by an earlier release, when `_v` was
    the Kafka offset. Comparing the two would refuse every update (MongoDB compares a number and a text as
    different types; Delta cannot merge them), so the job refuses to start on them."""
    paths = (tables.silver_products, tables.silver_categories)
    return [
        path
        for path in paths
        if exists(spark, path) and dict(spark.read.format("delta").load(path).dtypes).get("_v") != "string"
    ]


def append_once(batch: DataFrame, path: str, batch_id: int, app_id: str) -> None:
    """Append; Delta skips the write when this (app_id, batch_id) was already committed (a replay).

    `app_id` must name one sequence of batch ids: a streaming query's checkpoint (`stream_app_id`) or one
    backfill run. Batch ids restart at 0 with a new checkpoint; under a fixed app id Delta would take the
    new checkpoint's batches for replays and silently skip them."""
    (
        batch.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .option("mergeSchema", "true")
        .save(path)
    )


def _merge_by_key(spark: SparkSession, rows: DataFrame, path: str, key: str, update_when: str | None) -> None:
    if not exists(spark, path):
        rows.write.format("delta").save(path)
        return
    merge = DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), f"t.{key} = s.{key}")
    if update_when is not None:
        merge = merge.whenMatchedUpdateAll(condition=update_when)
    merge.whenNotMatchedInsertAll().execute()


def upsert_newer(spark: SparkSession, updates: DataFrame, path: str, key: str) -> None:
    """MERGE by key; an existing row is replaced only by a higher `_v`, so replays change nothing."""
    _merge_by_key(spark, updates, path, key, update_when="s._v > t._v")


def insert_new(spark: SparkSession, rows: DataFrame, path: str, key: str) -> None:
    """MERGE by key, inserting only keys not stored yet (quarantined records are written once). `rows` must
    hold each key once: an insert-only MERGE inserts every source row it does not match."""
    _merge_by_key(spark, rows, path, key, update_when=None)


def replace_by_key(spark: SparkSession, rows: DataFrame, path: str, key: str) -> None:
    """MERGE by key: a stored row is replaced by the new one, a new key inserted, other rows kept."""
    _merge_by_key(spark, rows, path, key, update_when="true")


def rename_products(spark: SparkSession, categories: DataFrame, products_path: str) -> None:
    """Give products the (new) name of categories that arrived or changed after them."""
    if not exists(spark, products_path):
        return
    (
        DeltaTable.forPath(spark, products_path)
        .alias("t")
        .merge(categories.alias("c"), "t.category_id = c.id")
        .whenMatchedUpdate(
            condition="t.category_name IS NULL OR t.category_name <> c.category_name",
            set={"category_name": "c.category_name"},
        )
        .execute()
    )


def overwrite(frame: DataFrame, path: str) -> None:
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
