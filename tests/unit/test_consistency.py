from __future__ import annotations

from spark_jobs.consistency import Check, compare_sets


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
