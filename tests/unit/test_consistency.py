from __future__ import annotations

from spark_jobs.consistency import Check, category_names_check, compare_sets, gold_refresh_check, report


def test_equal_key_sets_agree() -> None:
    check = compare_sets("silver = MongoDB", ["a", "b"], ["b", "a"])
    assert check.ok and check.line() == "ok        silver = MongoDB: 2 vs 2"


def test_a_divergence_names_the_keys_on_each_side() -> None:
    check = compare_sets("silver = MongoDB", ["a", "b", "c"], ["a", "d"])
    assert not check.ok
    assert check.differing == ["only left: b", "only left: c", "only right: d"]
    assert check.line().startswith("DIVERGED  silver = MongoDB: 3 vs 2  e.g. only left: b")


def test_equal_counts_with_different_keys_still_diverge() -> None:
    assert not compare_sets("x", ["a"], ["b"]).ok
    assert not Check("gold = silver", 10, 9).ok


def test_missing_tables_are_reported_as_empty_and_do_not_fail_the_check() -> None:
    lines, exit_code = report([Check("silver = MongoDB", 0, 0)], ["silver/categories", "gold/summary"])
    assert lines == [
        "missing   silver/categories: no Delta table yet, read as empty",
        "missing   gold/summary: no Delta table yet, read as empty",
        "ok        silver = MongoDB: 0 vs 0",
        "1 of 1 checks agree",
    ]
    assert exit_code == 0


def test_a_divergence_exits_1() -> None:
    lines, exit_code = report([Check("a", 1, 1), Check("gold = silver", 10, 9)], [])
    assert lines[-1] == "1 of 2 checks agree: DIVERGENCE"
    assert exit_code == 1


def test_a_key_missing_from_mongodb_is_fine_only_when_the_sink_refused_its_current_version() -> None:
    from spark_jobs.consistency import expected_served

    silver = {1: "v1", 2: "v2", 3: "v3", 4: "v4", 5: "v5"}
    # 2 refused now and not served; 3 refused now but served in an older version; 4 simply missing (a divergence
    # to report); 5 refused in an older version only, so its current one should be served (a divergence too).
    refused = {("2", "v2"), ("3", "v3"), ("5", "v0")}
    assert expected_served(silver, refused, [1, 3]) == {1, 3, 4, 5}


def test_a_price_history_version_missing_from_mongodb_is_fine_only_when_the_sink_refused_it() -> None:
    from spark_jobs.consistency import served_ids

    assert served_ids(["a", "b", "c"], {"b", "c"}, ["a", "c"]) == {"a", "c"}


def test_versions_agree_on_the_keys_both_hold() -> None:
    from spark_jobs.consistency import compare_versions

    # "only-silver" and "only-mongo" are the key checks' to report; here only shared keys count.
    check = compare_versions(
        "v", {"a": "1", "b": "2", "only-silver": "1"}, {"a": "1", "b": "2", "only-mongo": "9"}, set()
    )
    assert check.ok and check.line() == "ok        v: 2 vs 2"


def test_a_version_mongodb_serves_that_silver_does_not_hold_diverges_and_is_named() -> None:
    from spark_jobs.consistency import compare_versions

    check = compare_versions("v", {"a": "1", "b": "2", 3: "3"}, {"a": "1", "b": "5", 3: None}, set())
    assert not check.ok
    assert check.differing == ["3: silver 3, MongoDB None", "b: silver 2, MongoDB 5"]


def test_a_key_whose_current_version_the_sink_refused_may_keep_an_older_version() -> None:
    from spark_jobs.consistency import compare_versions

    # The quarantine keeps keys as text: category 7 refused in its current version, MongoDB serves the older one.
    assert compare_versions("v", {7: "2", 8: "1"}, {7: "1", 8: "1"}, {("7", "2")}).ok


def test_a_key_refused_once_is_still_version_checked_once_a_newer_version_is_current() -> None:
    from spark_jobs.consistency import compare_versions

    # Product "p" was refused at version 1 (say, by price_history, or as too large to publish); silver holds 2
    # now, and MongoDB serving 1 is a divergence, not a refusal.
    check = compare_versions("v", {"p": "2"}, {"p": "1"}, {("p", "1")})
    assert not check.ok and check.differing == ["p: silver 2, MongoDB 1"]


def test_a_refusal_names_the_version_the_job_gave_the_record(spark) -> None:
    from datetime import UTC, datetime

    from spark_jobs import transforms
    from spark_jobs.consistency import refused_key_versions
    from spark_jobs.pipeline import QUARANTINE_SCHEMA
    from spark_jobs.serving_writer import quarantine_row

    record = {
        "_id": "B0REFUSED",
        "_topic": "ingest-product",
        "_partition": 2,
        "_offset": 42,
        "_kafka_ts": datetime(2026, 12, 1, 8, 0, 0, 123_000, tzinfo=UTC),
    }
    silver_row = spark.createDataFrame([record]).transform(transforms.with_version).first()
    quarantine = spark.createDataFrame(
        [
            quarantine_row(record, "B0REFUSED", "sink: the document is too large"),
            {**quarantine_row(record, "B0OTHER", "price: must be finite"), "_id": "contract-refusal"},
        ],
        QUARANTINE_SCHEMA,
    )
    assert refused_key_versions(quarantine, "ingest-product") == {("B0REFUSED", silver_row["_v"])}
    assert refused_key_versions(quarantine, "ingest-category") == set()


def test_gold_is_current_only_when_its_last_refresh_names_silvers_newest_versions() -> None:
    silver = {"silver_products_version": 7, "silver_categories_version": 3}
    assert gold_refresh_check(silver, silver | {"_id": "gold_refresh"}).ok
    behind = gold_refresh_check(silver, {"silver_products_version": 6, "silver_categories_version": 3})
    assert not behind.ok and behind.differing == [
        "silver_products_version: silver 7, gold built from 6 (wait for the job's next refresh)"
    ]
    assert not gold_refresh_check(silver, {}).ok  # never refreshed
    no_products = {"silver_products_version": None, "silver_categories_version": 3}
    assert gold_refresh_check(no_products, {}).ok  # no gold before silver has a product


def test_a_product_named_after_another_version_of_its_category_diverges_and_is_named(spark) -> None:
    categories = spark.createDataFrame([(7, "New")], "id long, category_name string")
    products = spark.createDataFrame(
        [("B1", 7, "New"), ("B2", 7, "Old"), ("B3", 8, None), ("B4", 8, "Gone")],
        "asin string, category_id long, category_name string",
    )

    check = category_names_check(products, categories)

    assert (check.left, check.right, check.ok) == (4, 2, False)
    assert sorted(check.differing) == ["B2: 'Old', not 'New'", "B4: 'Gone', not None"]
    assert category_names_check(products.where("asin IN ('B1', 'B3')"), categories).ok
