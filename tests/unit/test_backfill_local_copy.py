"""backfill.local_copy: a backfill slice computed once, so that a Delta MERGE of it reads the values the slice
was written to bronze with instead of computing it again, and its blocks released after it."""

from __future__ import annotations

import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import backfill, lake


def stamped_rows(spark: SparkSession) -> DataFrame:
    """Rows stamped with current_timestamp, which every new plan over them computes again (as the CSV
    backfill stamped its rows before backfill.as_bronze took one time for the whole read)."""
    return spark.range(3).select("id", F.current_timestamp().alias("_kafka_ts"))


def merged_stamps(spark: SparkSession, table: Path, source: DataFrame) -> set[object]:
    """`source` MERGEd by id into a new, empty Delta table at `table` (lake.insert_new); the stored stamps,
    once every row was stored with one."""
    source.limit(0).write.format("delta").save(str(table))
    time.sleep(0.01)
    lake.insert_new(spark, source, str(table), "id")
    stored = spark.read.format("delta").load(str(table)).select("_kafka_ts").collect()
    assert len(stored) == 3 and all(row[0] is not None for row in stored), stored
    return {row[0] for row in stored}


def persisted(spark: SparkSession, copy: DataFrame) -> bool:
    """Whether the RDD under a local copy still holds its blocks."""
    rdd_id = copy._jdf.queryExecution().analyzed().rdd().id()
    return spark.sparkContext._jsc.getPersistentRDDs().containsKey(rdd_id)


def test_a_merge_stores_the_stamps_of_a_local_copy(spark: SparkSession, tmp_path: Path) -> None:
    with backfill.local_copy(stamped_rows(spark)) as copy:
        written = {row["_kafka_ts"] for row in copy.collect()}
        assert merged_stamps(spark, tmp_path / "copied", copy) == written


def test_a_merge_of_a_persisted_source_stamps_it_again(spark: SparkSession, tmp_path: Path) -> None:
    """The design before local_copy, and why it was replaced: Delta's MERGE plans its source again instead of
    reading the persisted rows (delta-io/delta#2011). Should a Delta release fix that, this test fails and
    local_copy's reason is gone."""
    persisted = stamped_rows(spark).persist()
    try:
        written = {row["_kafka_ts"] for row in persisted.collect()}
        assert merged_stamps(spark, tmp_path / "persisted", persisted) != written
    finally:
        persisted.unpersist()


def test_a_local_copy_is_released_on_exit(spark: SparkSession) -> None:
    with backfill.local_copy(stamped_rows(spark)) as copy:
        assert persisted(spark, copy)
    assert not persisted(spark, copy)
