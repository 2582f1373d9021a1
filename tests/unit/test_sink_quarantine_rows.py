"""The quarantine row the job writes for a silver row a sink refused (serving_writer.quarantine_row)."""

from __future__ import annotations


def test_a_refused_category_or_product_gets_a_quarantine_row_with_its_coordinates() -> None:
    from datetime import datetime

    from lakehouse import catalog
    from spark_jobs.serving_writer import quarantine_row

    assert {"_topic", "_partition", "_offset", "_kafka_ts"} <= set(catalog.CATEGORIES.fields)
    when = datetime(2026, 1, 1)
    category = {"_id": 7, "id": 7, "category_name": "Toys", "_topic": "c", "_partition": 1, "_offset": 5}
    row = quarantine_row(category | {"_kafka_ts": when, "_v": "x"}, 7, "sink: reason")
    assert (row["_id"], row["key"], row["reason"]) == (f"c:1:5@{int(when.timestamp() * 1000)}", "7", "sink: reason")
    assert row["raw_length"] == len(row["raw_value"])


def test_a_price_history_version_the_sink_refuses_is_quarantined_as_its_product_record() -> None:
    from datetime import datetime

    from spark_jobs.serving_writer import price_history_rejection

    when = datetime(2026, 1, 1)
    version = {"_id": "B000000001@v", "asin": "B000000001", "price": 1.0, "_v": "v"}
    row = version | {"_topic": "p", "_partition": 0, "_offset": 9, "_kafka_ts": when}

    quarantined = price_history_rejection(row, "sink: price is NaN")

    millis = int(when.timestamp() * 1000)
    assert (quarantined["_id"], quarantined["key"]) == (f"p:0:9@{millis}", "B000000001")
    assert quarantined["reason"] == "sink: price_history: price is NaN"
