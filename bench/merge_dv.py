"""Silver's MERGE (`lake.upsert_newer`) of 1,000 newer versions into a Delta table of N narrow rows (asin,
`_v`, price, title, category_id): copy-on-write, as silver is written today, against the same table with
deletion vectors, interleaved twice in one run (issue #9, target 3).

    flock /tmp/lakehouse-stack.lock .venv/bin/python -m bench.merge_dv [ROWS]      (default 350,000)

Prints each MERGE's seconds, the table's files and bytes, and the last MERGE's files rewritten, added and
deletion vectors added (Delta's operation metrics). Tables in var/bench/merge_dv/, removed first.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from bench.runs import BENCH_DIR
from lakehouse.versions import VERSION_FORMAT
from spark_jobs import lake
from spark_jobs.session import build_spark

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 350_000
ROUNDS = 3
ROOT = BENCH_DIR / "merge_dv"


def table(spark: SparkSession, rows: int) -> DataFrame:
    return spark.range(rows).select(
        F.format_string("B%09d", "id").alias("asin"),
        F.format_string(VERSION_FORMAT, F.lit(1), "id", F.lit(0)).alias("_v"),
        (F.rand(1) * 100).alias("price"),
        F.concat(F.lit("a product title of some length "), F.col("id").cast("string")).alias("title"),
        (F.col("id") % 248).alias("category_id"),
    )


def main() -> None:
    spark = build_spark("merge-dv")
    shutil.rmtree(ROOT, ignore_errors=True)
    for dv in (False, True, False, True):
        path = str(ROOT / f"silver-dv-{dv}-{time.monotonic_ns()}")
        table(spark, ROWS).repartition(2).write.format("delta").save(path)
        if dv:
            spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = true)")
        seconds = []
        for round_ in range(ROUNDS):  # the first MERGE of a table also warms up
            ids = spark.range(ROWS).orderBy(F.rand(round_)).limit(1000)
            updates = table(spark, ROWS).join(ids, F.col("asin") == F.format_string("B%09d", "id"), "left_semi")
            updates = updates.withColumn("_v", F.format_string(VERSION_FORMAT, F.lit(2 + round_), F.lit(0), F.lit(0)))
            updates = updates.persist()
            updates.count()
            started = time.monotonic()
            lake.upsert_newer(spark, updates, path, "asin")
            seconds.append(time.monotonic() - started)
            updates.unpersist()
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("numFiles", "sizeInBytes").first()
        last = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operationMetrics").first()[0]
        print(
            f"rows {ROWS:,} deletion vectors {dv}: MERGE seconds {', '.join(f'{s:.2f}' for s in seconds)} "
            f"(median {statistics.median(seconds):.2f}); files {detail[0]}, bytes {detail[1]:,}; "
            f"last: rewritten {last.get('numTargetFilesRemoved')}, added {last.get('numTargetFilesAdded')}, "
            f"dv {last.get('numTargetDeletionVectorsAdded')}",
            flush=True,
        )
    spark.stop()


if __name__ == "__main__":
    main()
