"""The quarantine row the job writes for a silver row a sink refused (streaming_job.quarantine_row)."""

from __future__ import annotations


def test_a_refused_category_or_product_gets_a_quarantine_row_with_its_coordinates() -> None:
    from datetime import datetime

    from spark_jobs.streaming_job import CATEGORY_DOCUMENT_FIELDS, quarantine_row

    assert {"_topic", "_partition", "_offset", "_kafka_ts"} <= set(CATEGORY_DOCUMENT_FIELDS)
    when = datetime(2026, 1, 1)
    category = {"_id": 7, "id": 7, "category_name": "Toys", "_topic": "c", "_partition": 1, "_offset": 5}
    row = quarantine_row(category | {"_kafka_ts": when, "_v": "x"}, 7, "sink: reason")
    assert (row["_id"], row["key"], row["reason"]) == (f"c:1:5@{int(when.timestamp() * 1000)}", "7", "sink: reason")
    assert row["raw_length"] == len(row["raw_value"])
