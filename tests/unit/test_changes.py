"""changes.renamed_category_ids: the categories whose products a batch rewrites and publishes again."""

from __future__ import annotations

from spark_jobs.changes import renamed_category_ids

SCHEMA = "id long, category_name string, _v string"


def test_new_renamed_and_replayed_categories_rewrite_their_products(spark) -> None:
    silver = spark.createDataFrame(
        [(1, "Same", "0001"), (2, "Old", "0001"), (3, "Replayed", "0005")],
        SCHEMA,
    )
    batch = spark.createDataFrame(
        [(1, "Same", "0002"), (2, "New", "0002"), (3, "Replayed", "0005"), (4, "Brand new", "0002")],
        SCHEMA,
    )

    # 1 re-sent unchanged: nothing to rewrite. 3: silver holds this very version, so this batch ran before and
    # may have renamed its products in silver without publishing them.
    assert sorted(renamed_category_ids(batch, silver)) == [2, 3, 4]
    assert sorted(renamed_category_ids(batch, None)) == [1, 2, 3, 4]
