from __future__ import annotations

from spark_jobs.consistency import Check, compare_sets, report


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


def test_a_key_missing_from_mongodb_is_fine_only_when_the_sink_refused_it() -> None:
    from spark_jobs.consistency import served_keys

    # 2 refused and not served; 3 refused once but served later; 4 simply missing (a divergence to report).
    assert served_keys([1, 2, 3, 4], {"2", "3"}, [1, 3]) == {1, 3, 4}


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


def test_a_key_the_sink_refused_may_keep_an_older_version() -> None:
    from spark_jobs.consistency import compare_versions

    # The quarantine keeps keys as text: category 7 refused in a newer version, MongoDB serves the older one.
    assert compare_versions("v", {7: "2", 8: "1"}, {7: "1", 8: "1"}, {"7"}).ok
