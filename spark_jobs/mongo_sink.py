"""The MongoDB serving collections' writer: version-guarded bulk upserts by `_id`.

The write model is the one the MongoDB Kafka sink connector and quix-streams' MongoDB sink use: a bulk of
`ReplaceOne(filter, document, upsert=True)`, unordered, keyed by `_id`. The filter carries the version
guard `{_id: key, _v: {$lte: version}}`:

- the stored document is older or the same version: it is replaced (a replayed micro-batch rewrites the
  same document, so replays change nothing);
- no document has that key: the upsert inserts it;
- the stored document is newer: the filter matches nothing, the upsert tries to insert a second document
  with that `_id` and the server refuses it with a duplicate-key error (11000). That is a stale write: it
  is counted, not raised, and the newer document stays.

The job hands this class documents (`_id` already set) and names, never MongoDB filters. Every other write
error is raised, so the micro-batch fails and is replayed from its checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pymongo import ASCENDING, ReplaceOne, UpdateMany
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from lakehouse.mongo import serving_db
from lakehouse.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# Documents per bulk_write (Settings.mongo_bulk_size): large enough to amortise the round trip, small enough
# to stay far below the 48 MB message limit with 4 KB titles (1,000 x ~10 KB).
BULK_CHUNK = 1_000

# What the read API's and the dashboard's queries filter and sort by (checked with explain in the tests):
# products of a category a page at a time in asin order, and the newest quarantined records.
INDEXES: dict[str, list[tuple[str, ...]]] = {
    "products": [("category_id", "_id")],
    "quarantine": [("_kafka_ts",), ("reason",)],
}


DERIVED_COLLECTIONS = ("products", "categories", "quarantine")


@dataclass
class WriteStats:
    """What one call wrote: documents inserted or replaced, and stale ones refused by the version guard."""

    written: int = 0
    stale: int = 0
    stale_keys: list[Any] = field(default_factory=list, compare=False)  # a few examples, for the log

    def add(self, other: WriteStats) -> None:
        self.written += other.written
        self.stale += other.stale
        self.stale_keys = (self.stale_keys + other.stale_keys)[:5]


def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def guarded_replace(document: dict[str, Any]) -> ReplaceOne:
    """Replace the stored document unless it carries a newer `_v`; insert when there is none."""
    return ReplaceOne({"_id": document["_id"], "_v": {"$lte": document["_v"]}}, document, upsert=True)


def replace_by_id(document: dict[str, Any]) -> ReplaceOne:
    """For documents that carry no version: what the batch computed replaces what is stored."""
    return ReplaceOne({"_id": document["_id"]}, document, upsert=True)


def _bulk(collection: Collection, operations: Sequence[Any]) -> WriteStats:
    try:
        result = collection.bulk_write(list(operations), ordered=False)
        return WriteStats(written=result.upserted_count + result.matched_count)
    except BulkWriteError as error:
        details = error.details
        if details["writeConcernErrors"] or any(e["code"] != DUPLICATE_KEY for e in details["writeErrors"]):
            raise
        stale = [e["op"]["q"]["_id"] for e in details["writeErrors"]]
        return WriteStats(written=details["nUpserted"] + details["nMatched"], stale=len(stale), stale_keys=stale[:5])


class MongoSink:
    """Owns the serving database's client and the whole write strategy of the streaming job and backfill."""

    def __init__(self, db: Database, chunk_size: int = BULK_CHUNK) -> None:
        self.db = db
        self.chunk_size = chunk_size

    @classmethod
    def connect(cls, config: Settings) -> MongoSink:
        """The sink for MONGO_URI / MONGO_DB."""
        return cls(serving_db(config, app_name="amazon-lakehouse-job"), config.mongo_bulk_size)

    def setup(self) -> None:
        """Ping the server (fail fast with the URI's error) and create the indexes the readers need.
        Creating them on an empty collection is cheap; on one already indexed it is a no-op."""
        self.db.command("ping")
        for collection, keys in INDEXES.items():
            for fields in keys:
                self.db[collection].create_index([(field, ASCENDING) for field in fields])

    def _write(
        self, collection: Collection, documents: Iterable[dict[str, Any]], operation: Callable[..., ReplaceOne]
    ) -> WriteStats:
        stats = WriteStats()
        for chunk in chunks(documents, self.chunk_size):
            stats.add(_bulk(collection, [operation(d) for d in chunk]))
        return stats

    def _upsert_versioned(self, collection: Collection, documents: Iterable[dict[str, Any]]) -> WriteStats:
        stats = self._write(collection, documents, guarded_replace)
        if stats.stale:
            # The job writes silver's current rows, so MongoDB holding newer versions means it is ahead of
            # silver (silver or the checkpoint was reset while MongoDB was kept): worth an operator's look.
            log.warning(
                "%s: %d write(s) refused by the version guard, MongoDB holds newer versions (e.g. %s)",
                collection.name,
                stats.stale,
                ", ".join(map(str, stats.stale_keys)),
            )
        return stats

    def upsert_products(self, documents: Iterable[dict[str, Any]]) -> WriteStats:
        return self._upsert_versioned(self.db.products, documents)

    def upsert_categories(self, documents: list[dict[str, Any]]) -> WriteStats:
        """Categories, and the name of every product of a category whose served name this changes. The
        products are renamed first: the category document, written last, marks the rename as done, so a
        batch replayed after a crash between the two renames them again."""
        stored = {
            d["_id"]: d.get("category_name")
            for d in self.db.categories.find({"_id": {"$in": [d["_id"] for d in documents]}}, {"category_name": 1})
        }
        renamed = {d["_id"]: d["category_name"] for d in documents if stored.get(d["_id"]) != d["category_name"]}
        self._rename_products(renamed)
        return self._upsert_versioned(self.db.categories, documents)

    def _rename_products(self, names: dict[int, str]) -> None:
        operations = [
            UpdateMany({"category_id": category_id, "category_name": {"$ne": name}}, {"$set": {"category_name": name}})
            for category_id, name in names.items()
        ]
        if operations:
            self.db.products.bulk_write(operations, ordered=False)

    def insert_quarantined(self, documents: Iterable[dict[str, Any]]) -> WriteStats:
        """A quarantined record never changes (its `_id` is its Kafka coordinates): a replay rewrites it."""
        return self._write(self.db.quarantine, documents, replace_by_id)

    def replace_gold(self, name: str, documents: list[dict[str, Any]]) -> None:
        """A small derived collection (`gold_<name>`) whose new contents replace the old ones."""
        collection = self.db[f"gold_{name}"]
        self._write(collection, documents, replace_by_id)
        collection.delete_many({"_id": {"$nin": [d["_id"] for d in documents]}})

    def drop_derived(self) -> None:
        """Before a rebuild from bronze: drop every collection the lakehouse derives, then re-create the
        indexes (on empty collections, where building them costs nothing)."""
        for name in self.db.list_collection_names():
            if name in DERIVED_COLLECTIONS or name.startswith("gold_"):
                self.db.drop_collection(name)
        self.setup()

    def write_status(self, document: dict[str, Any]) -> None:
        """The job's one `pipeline_status` document (its `_id` names the job)."""
        self.db.pipeline_status.replace_one({"_id": document["_id"]}, document, upsert=True)
