"""The serving side of the pipeline: silver and gold DataFrames -> MongoDB's collections (through
mongo_sink.MongoSink) and the processed-product topic.

What a destination refuses comes back as quarantine rows (`quarantine_row`), for the pipeline to quarantine:
this module writes to the serving side only, never to the lakehouse.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakehouse import catalog
from lakehouse.settings import Settings
from spark_jobs import transforms
from spark_jobs.mongo_sink import MongoSink, Rejected

# Kafka's default limits a record to 1 MiB (producer max.request.size, topic max.message.bytes), with overhead.
MAX_PUBLISHED_BYTES = 1_000_000
TOO_LARGE_TO_PUBLISH = f"sink: processed-product value over Kafka's {MAX_PUBLISHED_BYTES:,}-byte record limit"

QuarantineRow = dict[str, Any]


def product_documents(enriched: DataFrame) -> DataFrame:
    """Silver products -> catalog.PRODUCTS documents (`_id` the asin)."""
    return enriched.select(F.col("asin").alias("_id"), *catalog.PRODUCTS.fields)


def category_documents(categories: DataFrame) -> DataFrame:
    """Silver categories -> catalog.CATEGORIES documents (`_id` the id)."""
    return categories.select(F.col("id").alias("_id"), *catalog.CATEGORIES.fields)


def rows_as_dicts(frame: DataFrame) -> list[dict[str, Any]]:
    """A micro-batch's rows for MongoDB; bounded by STREAM_MAX_OFFSETS_PER_TRIGGER (and a gold table's size)."""
    return [row.asDict(recursive=True) for row in frame.collect()]


def quarantine_row(document: Mapping[str, Any], key: Any, reason: str) -> QuarantineRow:
    """A quarantine row (transforms.quarantined's columns) for a silver row a sink refused (MongoDB, or the
    processed-product topic); its raw value is the row as JSON (non-finite numbers written as NaN/Infinity),
    cut like the job's (RAW_VALUE_CHARACTERS)."""
    raw = json.dumps({k: v for k, v in document.items() if k != "_id"}, default=str, ensure_ascii=False)
    millis = int(document["_kafka_ts"].timestamp() * 1000)
    return {
        "_id": f"{document['_topic']}:{document['_partition']}:{document['_offset']}@{millis}",
        **{name: document[name] for name in catalog.KAFKA_COLUMNS},
        "key": str(key),
        "reason": reason,
        "raw_value": raw[: transforms.RAW_VALUE_CHARACTERS],
        "raw_length": len(raw),
    }


def price_history_rejection(row: Mapping[str, Any], reason: str) -> QuarantineRow:
    """The quarantine row of a price-history version (`row`: silver/price_history's, with its product record's
    Kafka coordinates) MongoDB refused: its product record, with a reason naming the collection."""
    served_as = f"sink: {catalog.PRICE_HISTORY.name}: {reason.removeprefix('sink: ')}"
    return quarantine_row(row, row["asin"], served_as)


def _rejections(rejected: list[Rejected]) -> list[QuarantineRow]:
    return [quarantine_row(r.document, r.key, r.reason) for r in rejected]


def processed_records(current: DataFrame) -> DataFrame:
    """Silver products -> processed-product records (`key` the asin, `value` the product as JSON with its `_v`)."""
    return current.select(
        F.col("asin").alias("key"), F.to_json(F.struct("asin", *catalog.PRODUCTS.fields)).alias("value")
    )


def fits_in_kafka() -> Column:
    """A processed-product record whose value fits in a Kafka record."""
    return F.octet_length("value") <= MAX_PUBLISHED_BYTES


class ServingWriter:
    """Writes the pipeline's DataFrames and rows to the serving side. `sink` owns the MongoDB client; the
    processed-product topic is reached through Spark's Kafka writer at `config`'s brokers."""

    def __init__(self, sink: MongoSink, config: Settings) -> None:
        self.sink = sink
        self.config = config

    @classmethod
    def connect(cls, config: Settings) -> ServingWriter:
        """The writer for MONGO_URI / MONGO_DB, its indexes created. Raises PyMongoError when MongoDB does not
        answer."""
        sink = MongoSink.connect(config)
        sink.setup()
        return cls(sink, config)

    def categories(self, current: DataFrame) -> list[QuarantineRow]:
        """Silver's current rows of the batch's categories -> MongoDB (renaming their served products); returns
        the quarantine rows of those MongoDB refused."""
        return _rejections(self.sink.upsert_categories(rows_as_dicts(category_documents(current))).rejected)

    def products(self, current: DataFrame) -> list[QuarantineRow]:
        """Silver's current rows of the touched products -> MongoDB, version-guarded; returns the quarantine rows
        of those MongoDB refused. MongoDB keeps serving a refused key's previous version, if it had one."""
        return _rejections(self.sink.upsert_products(rows_as_dicts(product_documents(current))).rejected)

    def price_history(self, rows: list[dict[str, Any]]) -> list[QuarantineRow]:
        """silver/price_history rows -> MongoDB price_history (replaced by `_id`); returns the quarantine rows of
        the versions MongoDB refused (`price_history_rejection`)."""
        fields = ("_id", *catalog.PRICE_HISTORY.fields)
        stats = self.sink.replace_by_ids(catalog.PRICE_HISTORY, [{f: row[f] for f in fields} for row in rows])
        by_id = {row["_id"]: row for row in rows}
        return [price_history_rejection(by_id[r.key], r.reason) for r in stats.rejected]

    def unpublishable(self, current: DataFrame) -> list[QuarantineRow]:
        """The quarantine rows of the products of `current` too large for a Kafka record, which `publish`
        leaves out."""
        too_large = processed_records(current).where(~fits_in_kafka()).select(F.col("key").alias("asin"))
        rows = rows_as_dicts(current.join(too_large, "asin", how="left_semi"))
        return [quarantine_row(row, row["asin"], TOO_LARGE_TO_PUBLISH) for row in rows]

    def publish(self, current: DataFrame) -> None:
        """Silver products to the processed-product topic, keyed by asin, but those `unpublishable` names: at
        least once, and each value carries its `_v`, so a consumer keeping the highest `_v` (compared as text)
        per asin ends with silver's state."""
        (
            processed_records(current)
            .where(fits_in_kafka())
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.config.kafka_bootstrap_servers)
            .option("kafka.acks", "all")
            .option("topic", self.config.kafka_topic_processed)
            .save()
        )

    def quarantine(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Quarantine rows -> MongoDB's quarantine (one the sink cannot store whole is stored reduced)."""
        self.sink.insert_quarantined(rows)

    def gold(self, served: catalog.ServingCollection, rows: list[Mapping[str, Any]]) -> None:
        """A gold table's rows replace the contents of the collection `served`."""
        self.sink.replace_gold(served, rows)

    def gold_refreshed(self, built_from: Mapping[str, int | None], steps: Mapping[str, float]) -> None:
        """The `pipeline_status` document of the last gold refresh, written when it is done: the silver
        versions (`built_from`) it was built from, when (`refreshed_at`, UTC) and its steps' seconds."""
        document = {"_id": catalog.GOLD_REFRESH_STATUS_ID, **built_from, "refreshed_at": datetime.now(UTC)}
        self.sink.write_status(document | {"steps": dict(steps), "seconds": sum(steps.values())})

    def category_points(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The current trends bucket's category points, each replacing the stored one with its `_id`."""
        self.sink.replace_by_ids(catalog.GOLD_CATEGORY_HISTORY, rows)

    def event(self, document: Mapping[str, Any]) -> None:
        """A batch's pipeline_events document (events.event_document), keeping the listener's `lag` on it."""
        self.sink.set_by_ids(catalog.PIPELINE_EVENTS, [document])
