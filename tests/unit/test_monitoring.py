from __future__ import annotations

from types import SimpleNamespace

from spark_jobs.monitoring import lag_from_offsets, lag_from_sources


def test_lag_is_latest_minus_end_offset_per_topic() -> None:
    end = '{"products": {"0": 5, "1": 3}, "categories": {"0": 9}}'
    latest = '{"products": {"0": 7, "1": 3, "2": 4}, "categories": {"0": 9}}'
    assert lag_from_offsets(end, latest) == {"products": 6, "categories": 0}


def test_no_latest_offset_yet_means_no_lag_known() -> None:
    assert lag_from_offsets(None, None) == {}


def test_sources_add_up() -> None:
    sources = [
        SimpleNamespace(endOffset='{"a": {"0": 1}}', latestOffset='{"a": {"0": 4}}'),
        SimpleNamespace(endOffset='{"a": {"1": 0}}', latestOffset='{"a": {"1": 2}}'),
    ]
    assert lag_from_sources(sources) == {"a": 5}


def test_offsets_that_are_not_json_count_as_none() -> None:
    from spark_jobs.monitoring import lag_from_offsets

    assert lag_from_offsets("None", '{"t": {"0": 5}}') == {"t": 5}
    assert lag_from_offsets('{"t": {"0": 2}}', "null") == {}
