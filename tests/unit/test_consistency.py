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
